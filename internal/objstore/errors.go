package objstore

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/tributary-health/tributary/internal/fault"
)

// Error is a failed store operation: the one error-with-kind type of internal/fault. Its text
// names the operation ("store get", "store list", ...) and the key (or list prefix, or store
// URL) as its Subject and says what to do; it never carries object contents. Kind is one of
// the Err values in store.go, so errors.Is(err, ErrNotFound) works; Err is the underlying
// cause, if any, so errors.Is(err, context.Canceled) works too.
type Error = fault.Error

func newError(op, key string, kind error, cause error, format string, args ...any) *Error {
	return &Error{Op: "store " + op, Subject: key, Kind: kind, Err: cause, Detail: fmt.Sprintf(format, args...)}
}

// MaxKeyLen is the longest key accepted, in bytes (S3's limit).
const MaxKeyLen = 1024

// CheckKey returns nil if key is a valid object key, else an ErrBadKey error saying why.
// A valid key is non-empty UTF-8 of slash-separated segments, none of them empty, "." or
// "..", with no backslash, colon, NUL or other control character, so that no key can name
// a file outside a directory store's root on any platform.
func CheckKey(key string) error {
	if why := keyProblem(key, false); why != "" {
		return &Error{Op: "store check key", Subject: quoteKey(key), Kind: ErrBadKey, Detail: why}
	}
	return nil
}

// checkPrefix accepts what CheckKey accepts, plus the empty prefix and a prefix ending in a
// slash or in part of a segment.
func checkPrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	if why := keyProblem(prefix, true); why != "" {
		return &Error{Op: "store list", Subject: quoteKey(prefix), Kind: ErrBadKey, Detail: why}
	}
	return nil
}

func keyProblem(key string, isPrefix bool) string {
	switch {
	case key == "":
		return "the key is empty"
	case len(key) > MaxKeyLen:
		return fmt.Sprintf("the key is longer than %d bytes", MaxKeyLen)
	case !utf8.ValidString(key):
		return "the key is not valid UTF-8"
	case key[0] == '/':
		return "the key starts with '/'; keys are relative, like practices/A81001/..."
	}
	for _, r := range key {
		switch {
		case r == '\\':
			return "the key contains a backslash; use '/' between segments"
		case r == ':':
			return "the key contains ':'"
		case r < 0x20 || r == 0x7f:
			return "the key contains a control character"
		}
	}
	segs := strings.Split(key, "/")
	if isPrefix {
		// The last segment of a prefix may be partial or empty ("practices/A81001/").
		segs = segs[:len(segs)-1]
	}
	for _, s := range segs {
		switch s {
		case "":
			return "the key has an empty segment ('//' or a trailing '/')"
		case ".", "..":
			return "the key has a '.' or '..' segment"
		}
		if reserved(s) {
			return "the key has a segment starting with '.' and holding '.tmp-', which is reserved for files being written"
		}
	}
	return ""
}

// quoteKey makes a rejected key safe to print: it may hold control characters.
func quoteKey(key string) string {
	if len(key) > 200 {
		key = key[:200] + "..."
	}
	return fmt.Sprintf("%q", key)
}

// reserved reports whether a key segment is reserved for a directory store's own files: the
// temporary files of atomicfile.Write (".<name>.tmp-<hex>"), those of earlier versions
// (legacyTempPrefix) and lock files (".<name>.tmp-lock"). No key may hold one, and listings
// skip them.
func reserved(segment string) bool {
	return strings.HasPrefix(segment, ".") && strings.Contains(segment, ".tmp-")
}

// legacyTempPrefix started the temporary files of earlier versions of the directory store.
const legacyTempPrefix = ".tmp-objstore-"
