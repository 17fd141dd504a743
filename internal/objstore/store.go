// Package objstore is the object storage that agents and the coordinator meet in: a local
// directory (the embedded default) or any S3 endpoint through minio-go, chosen by URL.
//
// # Which objects are replaced, and how
//
// Almost every object is written once and never changed: a practice's run files and signed
// manifest, the combined outputs (named by the combine's id) and the per-practice tables
// (named by their content's digest). Writing one again puts the same bytes, which Put
// allows, so an interrupted upload can simply be repeated.
//
// A few small objects are pointers that are replaced in place: the federation registry
// (federation/registry.json), the name of the newest combined output
// (federation/current.json) and the list of published outputs (federation/history.json).
// Two writers can race to replace one (a 'registry add' beside a 'registry revoke', or the
// service's combine beside a manual one), so they are replaced with PutIf only: read the
// object, remember its SHA-256 (or that it was absent), decide, and PutIf with that SHA-256.
// If another writer replaced it meanwhile, PutIf writes nothing and returns ErrConflict, and
// the caller reads again and decides again (or says why it stops). S3 checks the condition
// in the server (If-Match on the ETag the object had when its SHA-256 was checked, or
// If-None-Match: * for an absent one); the directory store holds a lock file beside the
// object (.<name>.tmp-lock) while it compares and swaps, which excludes other processes too.
// Put does not take part: a pointer written with plain Put can overwrite a concurrent PutIf.
//
// Every write, Put or PutIf, is atomic: a reader sees the old object or the new one.
package objstore

import (
	"context"
	"errors"
	"time"
)

// Kinds of failure callers branch on with errors.Is.
var (
	ErrNotFound     = errors.New("object not found")
	ErrTooLarge     = errors.New("object is larger than the caller allows")
	ErrAccessDenied = errors.New("access denied by the store")
	// ErrUnavailable: the store could not be reached or failed transiently; the same call may
	// succeed later, so callers that must not lose data retry it.
	ErrUnavailable = errors.New("store unavailable")
	ErrChecksum    = errors.New("stored object does not match the data sent")
	ErrBadKey      = errors.New("invalid object key")
	// ErrNotRegular: in a directory store, the key names a symbolic link, a named pipe, a
	// device or a folder where an object belongs. Such a thing was put there behind the
	// store's back; it is never followed or read.
	ErrNotRegular = errors.New("not a regular file")
	// ErrConfig: the store URL, credentials or bucket are wrong, or the store refused the
	// request as malformed; retrying will not help until someone changes the configuration.
	ErrConfig = errors.New("store is misconfigured")
	// ErrConflict: PutIf found another object than the one the caller read (another writer
	// replaced it meanwhile); nothing was written.
	ErrConflict = errors.New("the object changed since it was read")
)

// Absent is the SHA-256 to pass to PutIf to write an object only where there is none.
const Absent = ""

// Info describes a stored object.
type Info struct {
	Key      string
	Size     int64
	SHA256   string // lower-case hex of the content
	Modified time.Time
	// Problem, in a listing of a directory store, says why the entry at Key is not an object
	// though it stands where one could (a symbolic link, a named pipe, a device): the store
	// never reads it, and a caller reports it rather than pass over it in silence.
	Problem string
}

// Store is a flat key space of immutable-once-written objects. Keys are slash-separated
// paths without a leading slash, "..", or empty segments; anything else is ErrBadKey.
//
// Every method returns nil or an error wrapping one of the Err kinds above (plus the
// operation and key in its text). Implementations are safe for concurrent use.
type Store interface {
	// Put stores data at key atomically (readers see the old object or the new one, never
	// part of one), then checks that what the store holds has data's SHA-256 and size,
	// returning ErrChecksum if not. Putting the same bytes again is harmless.
	Put(ctx context.Context, key string, data []byte) (Info, error)
	// PutIf is Put on a condition, for the objects that are replaced in place (see the
	// package comment): it stores data only if the object at key is still the one the
	// caller read, named by its SHA-256 (lower-case hex, as Info gives it), or, when
	// ifSHA256 is Absent, only if there is no object at key. Otherwise it writes nothing and
	// returns ErrConflict. The condition is on content: an object replaced by the same bytes
	// still matches.
	PutIf(ctx context.Context, key string, data []byte, ifSHA256 string) (Info, error)
	// Get returns the object's content, refusing with ErrTooLarge (without reading it all)
	// if it is larger than maxBytes.
	Get(ctx context.Context, key string, maxBytes int64) ([]byte, Info, error)
	// Stat describes the object without reading it, SHA256 included.
	Stat(ctx context.Context, key string) (Info, error)
	// List returns every object whose key starts with prefix, sorted by key. SHA256 may be
	// empty in listings.
	List(ctx context.Context, prefix string) ([]Info, error)
	// Delete removes the object; deleting a missing object is not an error.
	Delete(ctx context.Context, key string) error
}
