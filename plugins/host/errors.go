package host

import (
	"errors"

	"github.com/tributary-health/tributary/internal/fault"
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

// Error is a failure of one plugin: the one error-with-kind type of internal/fault, with the
// plugin binary's path as its Subject, "plugin launch" or "plugin extract" as its Op, its kind
// and a sentence saying what to do. It never carries a patient-level value: row errors name
// the row kind, field and row number only.
type Error = fault.Error

// silent wraps a kind for errors.Is without repeating its text, for a plugin's own failure
// whose message already says it.
type silent struct{ kind error }

func (silent) Error() string   { return "" }
func (s silent) Unwrap() error { return s.kind }
