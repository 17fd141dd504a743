// Package objstore is the object storage that agents and the coordinator meet in: a local
// directory (the embedded default) or any S3 endpoint through minio-go, chosen by URL.
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
	// ErrConfig: the store URL, credentials or bucket are wrong, or the store refused the
	// request as malformed; retrying will not help until someone changes the configuration.
	ErrConfig = errors.New("store is misconfigured")
)

// Info describes a stored object.
type Info struct {
	Key      string
	Size     int64
	SHA256   string // lower-case hex of the content
	Modified time.Time
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
