package formats

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/tributary-health/tributary/internal/fault"
)

// Kinds of failure a caller can branch on with errors.Is. Every error this package returns
// wraps exactly one of them, and its text says what went wrong and what to do; none carries a
// patient-level value.
var (
	ErrFormatVersion    = errors.New("unsupported format version")
	ErrSchema           = errors.New("schema does not match the contract")
	ErrValue            = errors.New("invalid value")
	ErrPracticeMismatch = errors.New("practice does not match its location")
	ErrSize             = errors.New("size mismatch")
	ErrChecksum         = errors.New("checksum mismatch")
	ErrSignature        = errors.New("signature does not verify")
	ErrUnknownKey       = errors.New("signing key is not registered")
	ErrRevoked          = errors.New("signing key has been revoked")
	ErrCorrupt          = errors.New("file is corrupt or not in the expected format")
	ErrTooLarge         = errors.New("object is larger than allowed")
	ErrKey              = errors.New("invalid object key")
)

// Error is a failure with the operation and the object it concerns (its Subject): the one
// error-with-kind type of internal/fault. Kind is one of the Err values above; Detail is a
// sentence for people.
type Error = fault.Error

// clean makes text from elsewhere safe for one log line: control characters become '?',
// invalid UTF-8 is replaced, and it is cut after most bytes.
func clean(s string, most int) string { return fault.Clean(s, most) }

func errorf(op string, kind error, format string, args ...any) *Error {
	return &Error{Op: op, Kind: kind, Detail: fmt.Sprintf(format, args...)}
}

// WithObject returns err with its Subject set to the object, when err is an *Error without one.
func WithObject(err error, object string) error {
	var fe *Error
	if errors.As(err, &fe) && fe.Subject == "" {
		c := *fe
		c.Subject = object
		return &c
	}
	return err
}

// at returns err, an *Error, with where prefixed to its detail and op as its operation, so a
// row or cell number reaches the reader without a second "invalid value" in the sentence.
func at(op, where string, err error) error {
	var fe *Error
	if !errors.As(err, &fe) {
		return &Error{Op: op, Kind: ErrValue, Detail: where, Err: err}
	}
	c := *fe
	c.Op = op
	c.Detail = where + ": " + fe.Detail
	return &c
}

// shown renders a value read from outside for an error message: as it is when it is short and
// plain, otherwise quoted and cut, so that no file can put control characters, megabytes or
// a fake second log line into a message.
func shown(s string) string {
	const most = 100
	plain := s != "" && len(s) <= most
	for i := 0; plain && i < len(s); i++ {
		plain = s[i] > ' ' && s[i] <= '~' && s[i] != '"' && s[i] != '\\'
	}
	if plain {
		return s
	}
	if len(s) > most {
		cut := most
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return strconv.Quote(s[:cut]) + "…"
	}
	return strconv.Quote(strings.ToValidUTF8(s, "\uFFFD"))
}
