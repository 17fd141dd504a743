package host

import (
	"errors"
	"fmt"
)

// Kinds of failure, for errors.Is. A failure reported by the plugin itself also matches the
// SDK's kind (sdk.ErrPanic, sdk.ErrBudget, sdk.ErrConfig, ...), which it wraps.
var (
	ErrNotPinned = errors.New("plugin is not pinned by a valid SHA-256")
	ErrChecksum  = errors.New("plugin binary does not match its pinned SHA-256")
	ErrProtocol  = errors.New("plugin speaks another protocol version")
	ErrStart     = errors.New("plugin did not start")
	ErrTimeout   = errors.New("plugin timed out")
	ErrCrashed   = errors.New("plugin exited unexpectedly")
	ErrContract  = errors.New("plugin output breaks the contract")
	ErrPlugin    = errors.New("plugin reported a failure")
	ErrClosed    = errors.New("plugin is closed")
)

// Error is a failure of one plugin: which one, doing what, of which kind, and a sentence
// saying what to do. It never carries a patient-level value: row errors name the row kind,
// field and row number only.
type Error struct {
	Op     string // e.g. "extract"
	Plugin string // the binary's path
	Kind   error
	Detail string
	Err    error
}

func (e *Error) Error() string {
	s := fmt.Sprintf("plugin %s: %s: %s", e.Plugin, e.Op, e.Kind)
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	if e.Err != nil && e.Err.Error() != "" {
		s += ": " + e.Err.Error()
	}
	return s
}

// silent wraps a kind for errors.Is without repeating its text, for a plugin's own failure
// whose message already says it.
type silent struct{ kind error }

func (silent) Error() string   { return "" }
func (s silent) Unwrap() error { return s.kind }

// Is reports whether target is the error's kind.
func (e *Error) Is(target error) bool { return target == e.Kind }

func (e *Error) Unwrap() error { return e.Err }
