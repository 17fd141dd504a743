// Package fault is the one error type that carries a kind: the store, the contract, the plugin
// host and the plugin SDK each return it, under their own name, with their own kinds.
//
// An error says what was being done (Op), to what (Subject: an object key, a file, a plugin
// binary), which kind of failure it was (Kind, for errors.Is), and a sentence for people
// (Detail) saying what to do. Its text is one line of bounded length whatever was read from
// outside: control characters become '?' and long parts are cut, so no file, object or plugin
// can put a fake log line or megabytes into a message. It never carries a patient-level value;
// the code that makes one is responsible for that, and names rows by number, never by value.
package fault

import (
	"errors"
	"strings"
	"unicode/utf8"
)

// Error is a failure of one operation. Kind is one of the package's Err values, so
// errors.Is(err, objstore.ErrNotFound) works; Err is the underlying cause, if any, so
// errors.Is(err, context.Canceled) works too.
type Error struct {
	Op      string // what was being done: "read submission", "store get", "extract"
	Subject string // what it concerns: an object key, a file, a plugin binary; may be empty
	Kind    error
	Detail  string
	Err     error
}

// most is the longest subject and cause shown, in bytes: both may come from outside.
const most = 300

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Op)
	if e.Subject != "" {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(Clean(e.Subject, most))
	}
	if e.Kind != nil {
		if b.Len() > 0 {
			b.WriteString(": ")
		}
		b.WriteString(e.Kind.Error())
	}
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	if e.Err != nil {
		// The cause is often a library's own text (Arrow, JSON, S3), which may quote input.
		if s := e.Err.Error(); s != "" {
			b.WriteString(": ")
			b.WriteString(Clean(s, most))
		}
	}
	return b.String()
}

// Is reports whether target is the error's kind.
func (e *Error) Is(target error) bool { return e.Kind != nil && target == e.Kind }

func (e *Error) Unwrap() error { return e.Err }

// Of returns the *Error in err's chain, or nil.
func Of(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}

// Clean makes text from elsewhere safe for one log line: control characters become '?',
// invalid UTF-8 is replaced, and it is cut after at most max bytes (on a rune boundary).
func Clean(s string, max int) string {
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f || r == utf8.RuneError {
			return '?'
		}
		return r
	}, strings.ToValidUTF8(s, "?"))
}
