package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"hash"
)

// index finds a position by FHIR id. Ids that are lower-case UUIDs (Synthea's, and most
// servers') are kept as 16 bytes in a map without pointers, which is small and not scanned
// by the garbage collector; any other id goes to a map of strings.
type index struct {
	uuids map[[16]byte]int32
	other map[string]int32
}

func newIndex() index { return index{uuids: map[[16]byte]int32{}, other: map[string]int32{}} }

func (x index) lookup(id []byte) (int32, bool) {
	if u, ok := parseUUID(id); ok {
		i, ok := x.uuids[u]
		return i, ok
	}
	i, ok := x.other[string(id)]
	return i, ok
}

func (x index) add(id []byte, i int32) {
	if u, ok := parseUUID(id); ok {
		x.uuids[u] = i
	} else {
		x.other[string(id)] = i
	}
}

// parseUUID reads a lower-case 8-4-4-4-12 hex id.
func parseUUID(s []byte) (u [16]byte, ok bool) {
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return u, false
	}
	j := 0
	for i := 0; i < 36; i += 2 {
		if s[i] == '-' {
			i--
			continue
		}
		hi, ok1 := unhex(s[i])
		lo, ok2 := unhex(s[i+1])
		if !ok1 || !ok2 {
			return u, false
		}
		u[j] = hi<<4 | lo
		j++
	}
	return u, j == 16
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// refID is the logical id a reference names, for a reference to a resource of type typ (or
// to any type when typ is empty): "Patient/123", "urn:uuid:123",
// "https://server/fhir/Patient/123/_history/2" and a bare "123" all name 123. ok is false for
// an empty reference, a contained one ("#p1"), a conditional one ("Patient?identifier=..."),
// or one to another type.
func refID(ref []byte, typ string) ([]byte, bool) {
	if len(ref) == 0 || ref[0] == '#' || bytes.IndexByte(ref, '?') >= 0 {
		return nil, false
	}
	if id, ok := bytes.CutPrefix(ref, []byte("urn:uuid:")); ok {
		return id, len(id) > 0
	}
	if i := bytes.Index(ref, []byte("/_history/")); i >= 0 {
		ref = ref[:i]
	}
	slash := bytes.LastIndexByte(ref, '/')
	if slash < 0 {
		return ref, true
	}
	id, rest := ref[slash+1:], ref[:slash]
	t := rest[bytes.LastIndexByte(rest, '/')+1:]
	if typ != "" && string(t) != typ {
		return nil, false
	}
	return id, len(id) > 0
}

// keyer makes the pseudonymous key of a patient id: HMAC-SHA256 keyed with the practice's
// salt, cut to 128 bits and base64url-encoded (22 characters).
type keyer struct{ mac hash.Hash }

func newKeyer(salt []byte) keyer { return keyer{hmac.New(sha256.New, salt)} }

func (k keyer) key(id []byte) string {
	k.mac.Reset()
	k.mac.Write([]byte("fhir patient\x00"))
	k.mac.Write(id)
	var sum [sha256.Size]byte
	return base64.RawURLEncoding.EncodeToString(k.mac.Sum(sum[:0])[:16])
}
