package main

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"math/bits"
)

// scanner walks one JSON value held in memory (an NDJSON line, or one entry of a Bundle)
// without building it: the extractor asks for the few fields it maps and every other value is
// skipped over, which is several times faster than encoding/json and allocates nothing for
// the parts it skips. It checks the structure it walks (brackets, strings, commas and colons);
// the scalars it skips are checked only for their first character.
//
// A method called after an error does nothing; the first error stays in err, and loops over
// keys or elements end.
type scanner struct {
	b   []byte
	i   int
	err error
}

var errSyntax = errors.New("not valid JSON")

func (s *scanner) reset(b []byte) { s.b, s.i, s.err = b, 0, nil }

func (s *scanner) fail() {
	if s.err == nil {
		s.err = errSyntax
	}
	s.i = len(s.b)
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek returns the next non-space byte, 0 at the end.
func (s *scanner) peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// open consumes c ('{' or '['), reporting false (without an error) when the value is
// something else, which the caller then skips.
func (s *scanner) open(c byte) bool {
	if s.err != nil || s.peek() != c {
		return false
	}
	s.i++
	return true
}

// key reads the next key of the object being walked, and the ':' after it; ok is false at
// the closing '}' (consumed) or on an error. first is true for the first call after open.
// The key's bytes are the raw text between the quotes.
func (s *scanner) key(first bool) (k []byte, ok bool) {
	if s.err != nil {
		return nil, false
	}
	c := s.peek()
	if c == '}' {
		s.i++
		return nil, false
	}
	if !first {
		if c != ',' {
			s.fail()
			return nil, false
		}
		s.i++
		c = s.peek()
	}
	if c != '"' {
		s.fail()
		return nil, false
	}
	k, _ = s.rawString()
	if s.peek() != ':' {
		s.fail()
		return nil, false
	}
	s.i++
	return k, s.err == nil
}

// elem reports whether another element of the array being walked follows, consuming the ','
// before it, or the closing ']' when there is none. first is true for the first call.
func (s *scanner) elem(first bool) bool {
	if s.err != nil {
		return false
	}
	c := s.peek()
	if c == ']' {
		s.i++
		return false
	}
	if !first {
		if c != ',' {
			s.fail()
			return false
		}
		s.i++
		if s.peek() == ']' { // a trailing comma
			s.fail()
			return false
		}
	}
	if s.i >= len(s.b) {
		s.fail()
		return false
	}
	return true
}

// rawString reads a string at s.i (its opening quote) and returns the bytes between the
// quotes, escapes left as they are, and whether it holds an escape; a control character in
// it is an error. Looking eight bytes at a time for the closing quote, a backslash or a
// control character is what makes skipping fast.
func (s *scanner) rawString() (raw []byte, escaped bool) {
	b := s.b
	start := s.i + 1
	j := start
	for {
		for j+8 <= len(b) {
			x := binary.LittleEndian.Uint64(b[j:])
			if m := zeroBytes(x^quotes) | zeroBytes(x^backslashes) | lessThan20(x); m != 0 {
				j += bits.TrailingZeros64(m) >> 3
				break
			}
			j += 8
		}
		for j < len(b) && b[j] != '"' && b[j] != '\\' && b[j] >= 0x20 {
			j++
		}
		switch {
		case j >= len(b) || b[j] < 0x20:
			s.fail()
			return nil, false
		case b[j] == '"':
			s.i = j + 1
			return b[start:j], escaped
		}
		escaped = true
		j += 2 // a backslash and the character it escapes
	}
}

const (
	lows        = 0x0101010101010101
	highs       = 0x8080808080808080
	quotes      = '"' * lows
	backslashes = '\\' * lows
)

// lessThan20 has the high bit set in (at least) the lowest byte of x below 0x20, and in no
// byte below it.
func lessThan20(x uint64) uint64 { return (x - 0x20*lows) &^ x & highs }

// zeroBytes has the high bit set in (at least) the lowest zero byte of x, and in no byte below
// it; zero when x has no zero byte.
func zeroBytes(x uint64) uint64 { return (x - lows) &^ x & highs }

// str reads a string value. A value that is not a string is skipped and gives ok false. The
// bytes point into the input unless the string holds an escape.
func (s *scanner) str() (v []byte, ok bool) {
	if s.err != nil {
		return nil, false
	}
	if s.peek() != '"' {
		s.skip()
		return nil, false
	}
	start := s.i
	raw, escaped := s.rawString()
	if s.err != nil {
		return nil, false
	}
	if !escaped {
		return raw, true
	}
	var out string
	if err := json.Unmarshal(s.b[start:s.i], &out); err != nil {
		s.fail()
		return nil, false
	}
	return []byte(out), true
}

// skip passes over one value of any kind.
func (s *scanner) skip() {
	if s.err != nil {
		return
	}
	switch c := s.peek(); c {
	case '"':
		s.rawString()
	case '{', '[':
		s.skipNested()
	case 0:
		s.fail()
	default:
		// A number, true, false or null: up to the next delimiter.
		if !(c == '-' || c >= '0' && c <= '9' || c == 't' || c == 'f' || c == 'n') {
			s.fail()
			return
		}
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return
			case '"', '{', '[', ':':
				s.fail()
				return
			}
			s.i++
		}
	}
}

// structural marks the bytes skipNested stops at.
var structural = [256]bool{'"': true, '{': true, '}': true, '[': true, ']': true}

// skipNested passes over an object or array, checking that its brackets match and its
// strings end (a bounded stack: deeper than maxDepth is refused).
func (s *scanner) skipNested() {
	const maxDepth = 256
	var stack [maxDepth]byte
	depth := 0
	b := s.b
	i := s.i
	for {
		for i < len(b) && !structural[b[i]] {
			i++
		}
		if i >= len(b) {
			break
		}
		switch c := b[i]; c {
		case '"':
			s.i = i
			if s.rawString(); s.err != nil {
				return
			}
			i = s.i
			continue
		case '{', '[':
			if depth == maxDepth {
				s.fail()
				return
			}
			stack[depth] = c
			depth++
		default: // '}', ']'
			if depth == 0 || (c == '}') != (stack[depth-1] == '{') {
				s.fail()
				return
			}
			depth--
			if depth == 0 {
				s.i = i + 1
				return
			}
		}
		i++
	}
	s.fail()
}

// end checks that nothing but spaces follows the value.
func (s *scanner) end() {
	if s.err == nil && s.peek() != 0 {
		s.fail()
	}
}
