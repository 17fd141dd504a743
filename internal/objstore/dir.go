package objstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/tributary-health/tributary/internal/atomicfile"
)

// syscallNotDir is what opening a/b/c gives when a/b is a file: no such object either.
var syscallNotDir = syscall.ENOTDIR

// Dir is a Store in a local directory: the key a/b/c is the file <root>/a/b/c. It is the
// embedded default, so the whole flow runs on one machine with no server. Writes are atomic
// (a temporary file in the same directory, synced, then renamed over the old one), and
// several processes may share one directory.
type Dir struct {
	root string
}

// staleAfter is how old a temporary file must be before NewDir removes it as left by a
// crash: far longer than any write takes, since another process may be writing it now.
const staleAfter = time.Hour

// NewDir returns a store rooted at the directory path, creating it if missing, and removes
// the temporary files that writes interrupted by a crash left in it more than an hour ago.
func NewDir(path string) (*Dir, error) {
	if path == "" {
		return nil, newError("open", "", ErrConfig, nil, "no directory given for the store")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, newError("open", path, ErrConfig, err, "cannot resolve the store directory")
	}
	if err := os.MkdirAll(abs, 0o750); err != nil {
		return nil, dirError("open", abs, err, "cannot create the store directory")
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, dirError("open", abs, err, "cannot read the store directory")
	}
	if !fi.IsDir() {
		return nil, newError("open", abs, ErrConfig, nil, "the store path is a file, not a directory")
	}
	d := &Dir{root: abs}
	d.clean()
	return d, nil
}

// clean removes stale temporary files throughout the store. It is best effort: a directory
// it cannot read keeps its leftovers, which listings skip anyway, and the calls that need
// that directory report the problem.
func (d *Dir) clean() {
	_ = filepath.WalkDir(d.root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if e != nil && e.IsDir() && p != d.root {
				return fs.SkipDir
			}
			return nil
		}
		if e.IsDir() {
			_, _ = atomicfile.CleanDir(p, staleAfter, legacyTempPrefix)
		}
		return nil
	})
}

// Root is the store's directory.
func (d *Dir) Root() string { return d.root }

func (d *Dir) path(key string) string {
	return filepath.Join(d.root, filepath.FromSlash(key))
}

// Put writes data with atomicfile.Write (a temporary file beside the object, synced, renamed
// into place, the directory synced), so a crash leaves the old object or the new one.
func (d *Dir) Put(ctx context.Context, key string, data []byte) (Info, error) {
	const op = "put"
	if err := start(ctx, op, key); err != nil {
		return Info{}, err
	}
	p, err := d.prepare(op, key)
	if err != nil {
		return Info{}, err
	}
	return d.write(op, key, p, data)
}

// prepare makes the directory of key's file and returns the file's path.
func (d *Dir) prepare(op, key string) (string, error) {
	p := d.path(key)
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		if errors.Is(err, fs.ErrExist) || errors.Is(err, syscallNotDir) {
			return "", newError(op, key, ErrBadKey, err, "a directory store cannot hold an object whose key is a prefix of another's key")
		}
		return "", dirError(op, key, err, "cannot create the object's directory")
	}
	if fi, err := os.Stat(p); err == nil && fi.IsDir() {
		return "", newError(op, key, ErrBadKey, nil, "a directory store cannot hold an object whose key is a prefix of another's key")
	}
	return p, nil
}

// PutIf compares and swaps under a lock file beside the object (.<name>.tmp-lock), which
// other processes sharing the directory take too; the lock file stays for the next writer.
func (d *Dir) PutIf(ctx context.Context, key string, data []byte, ifSHA256 string) (Info, error) {
	const op = "put"
	if err := start(ctx, op, key); err != nil {
		return Info{}, err
	}
	p, err := d.prepare(op, key)
	if err != nil {
		return Info{}, err
	}
	unlock, err := lockFile(ctx, filepath.Join(filepath.Dir(p), "."+filepath.Base(p)+".tmp-lock"))
	if err != nil {
		if ctx.Err() != nil {
			return Info{}, newError(op, key, ErrUnavailable, err, "the operation was cancelled or timed out while waiting for another writer of the object")
		}
		return Info{}, dirError(op, key, err, "cannot lock the object for a conditional write")
	}
	defer unlock()
	cur, err := d.hash(op, key)
	switch {
	case errors.Is(err, ErrNotFound):
		if ifSHA256 != Absent {
			return Info{}, newError(op, key, ErrConflict, nil, "the object was removed since it was read")
		}
	case err != nil:
		return Info{}, err
	case ifSHA256 == Absent:
		return Info{}, newError(op, key, ErrConflict, nil, "another writer created the object meanwhile")
	case cur.SHA256 != ifSHA256:
		return Info{}, newError(op, key, ErrConflict, nil, "another writer replaced the object meanwhile")
	}
	return d.write(op, key, p, data)
}

// lockFile takes an exclusive lock on the file at path, creating it if missing, waiting for
// another holder until ctx is done. unlock releases it.
func lockFile(ctx context.Context, path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	for wait := time.Millisecond; ; wait = min(2*wait, 50*time.Millisecond) {
		busy, err := tryLock(f)
		if err != nil {
			f.Close()
			return nil, err
		}
		if !busy {
			return func() { f.Close() }, nil // closing the file releases the lock
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
}

// write replaces the file p and checks what it then holds.
func (d *Dir) write(op, key, p string, data []byte) (Info, error) {
	if err := atomicfile.Write(p, data, 0o600); err != nil {
		return Info{}, dirError(op, key, err, "cannot write the object")
	}
	want := sha256.Sum256(data)
	got, info, err := d.read(op, key, int64(len(data)))
	if err != nil {
		if errors.Is(err, ErrTooLarge) {
			return Info{}, newError(op, key, ErrChecksum, nil, "the stored file is larger than the data sent; another writer may have replaced it")
		}
		return Info{}, err
	}
	if !bytes.Equal(got, data) {
		return Info{}, newError(op, key, ErrChecksum, nil, "the stored file (%d bytes, sha256 %s) differs from the data sent (%d bytes, sha256 %s); check the disk, then put it again",
			info.Size, info.SHA256, len(data), hex.EncodeToString(want[:]))
	}
	return info, nil
}

// Get reads the object, refusing with ErrTooLarge before reading if it is larger than maxBytes.
func (d *Dir) Get(ctx context.Context, key string, maxBytes int64) ([]byte, Info, error) {
	if err := start(ctx, "get", key); err != nil {
		return nil, Info{}, err
	}
	return d.read("get", key, maxBytes)
}

func (d *Dir) read(op, key string, maxBytes int64) ([]byte, Info, error) {
	f, fi, err := d.open(op, key)
	if err != nil {
		return nil, Info{}, err
	}
	defer f.Close()
	if fi.Size() > maxBytes {
		return nil, Info{}, tooLarge(op, key, fi.Size(), maxBytes)
	}
	// The size can only change if someone writes the file behind the store's back; the
	// limit keeps that from costing more memory than the caller allowed.
	data, err := io.ReadAll(io.LimitReader(f, maxBytes+1))
	if err != nil {
		return nil, Info{}, dirError(op, key, err, "cannot read the object")
	}
	if int64(len(data)) > maxBytes {
		return nil, Info{}, tooLarge(op, key, int64(len(data)), maxBytes)
	}
	sum := sha256.Sum256(data)
	return data, Info{Key: key, Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:]), Modified: fi.ModTime().UTC()}, nil
}

func (d *Dir) open(op, key string) (*os.File, fs.FileInfo, error) {
	f, err := openRegular(d.root, filepath.FromSlash(key))
	if err != nil {
		var nr *notRegular
		if errors.As(err, &nr) {
			return nil, nil, newError(op, key, ErrNotRegular, nil, "%s stands where the object belongs; the store does not follow or read it: remove it", nr.what)
		}
		if errors.Is(err, syscallNotDir) {
			err = fs.ErrNotExist
		}
		return nil, nil, dirError(op, key, err, "cannot open the object")
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, dirError(op, key, err, "cannot read the object's attributes")
	}
	switch {
	case fi.IsDir():
		// A directory is a prefix of other keys, not an object.
		f.Close()
		return nil, nil, dirError(op, key, fs.ErrNotExist, "cannot open the object")
	case !fi.Mode().IsRegular():
		f.Close()
		return nil, nil, newError(op, key, ErrNotRegular, nil, "%s stands where the object belongs; the store does not read it: remove it", describe(fi.Mode()))
	}
	return f, fi, nil
}

// Stat hashes the file: objects here are small, and a stored hash could go stale.
func (d *Dir) Stat(ctx context.Context, key string) (Info, error) {
	const op = "stat"
	if err := start(ctx, op, key); err != nil {
		return Info{}, err
	}
	return d.hash(op, key)
}

func (d *Dir) hash(op, key string) (Info, error) {
	f, fi, err := d.open(op, key)
	if err != nil {
		return Info{}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return Info{}, dirError(op, key, err, "cannot read the object")
	}
	return Info{Key: key, Size: n, SHA256: hex.EncodeToString(h.Sum(nil)), Modified: fi.ModTime().UTC()}, nil
}

// List walks the directory that holds every key with the prefix, skipping files being written.
func (d *Dir) List(ctx context.Context, prefix string) ([]Info, error) {
	const op = "list"
	if err := ctx.Err(); err != nil {
		return nil, newError(op, prefix, ErrUnavailable, err, "the operation was cancelled or timed out")
	}
	if err := checkPrefix(prefix); err != nil {
		return nil, err
	}
	base := d.root
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		base = d.path(prefix[:i])
	}
	var out []Info
	err := filepath.WalkDir(base, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if p == base && (errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscallNotDir)) {
				return fs.SkipAll
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if reserved(e.Name()) {
			if e.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		rel, err := filepath.Rel(d.root, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if !e.Type().IsRegular() {
			// Not an object; but a link, pipe or device where keys live was put there behind
			// the store's back: name it, so it is reported rather than passed over. A folder
			// is a prefix of keys, unless it bears an object's name.
			if strings.HasPrefix(key, prefix) && p != base && (!e.IsDir() || objectLike(e.Name())) {
				out = append(out, Info{Key: key, Problem: describe(e.Type())})
				if e.IsDir() {
					return fs.SkipDir
				}
			}
			return nil
		}
		if !strings.HasPrefix(key, prefix) {
			return nil
		}
		fi, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // deleted while listing
		} else if err != nil {
			return err
		}
		out = append(out, Info{Key: key, Size: fi.Size(), Modified: fi.ModTime().UTC()})
		return nil
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, newError(op, prefix, ErrUnavailable, err, "the operation was cancelled or timed out")
		}
		return nil, dirError(op, prefix, err, "cannot list the directory")
	}
	// Walk order is not key order: "a/b" comes after "a.b" in a string sort.
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// objectLike reports whether a folder's name is one only objects bear (a folder named like a
// manifest or a run's file is one put there behind the store's back).
func objectLike(name string) bool {
	return strings.HasSuffix(name, ".json") || strings.HasSuffix(name, ".arrow") || strings.HasSuffix(name, ".parquet") || strings.HasSuffix(name, ".bin")
}

// Delete removes the file; a missing file is not an error. Emptied directories stay.
func (d *Dir) Delete(ctx context.Context, key string) error {
	const op = "delete"
	if err := start(ctx, op, key); err != nil {
		return err
	}
	p := d.path(key)
	if fi, err := os.Lstat(p); err == nil && fi.IsDir() {
		return nil // a prefix of other keys, not an object
	}
	err := os.Remove(p)
	if err == nil {
		if err := atomicfile.SyncDir(filepath.Dir(p)); err != nil {
			return dirError(op, key, err, "cannot sync the object's directory")
		}
		return nil
	}
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscallNotDir) {
		return nil
	}
	return dirError(op, key, err, "cannot remove the object")
}

// start checks what every keyed operation checks first.
func start(ctx context.Context, op, key string) error {
	if err := CheckKey(key); err != nil {
		var e *Error
		if errors.As(err, &e) {
			e.Op = op
		}
		return err
	}
	if err := ctx.Err(); err != nil {
		return newError(op, key, ErrUnavailable, err, "the operation was cancelled or timed out")
	}
	return nil
}

func tooLarge(op, key string, size, limit int64) error {
	return newError(op, key, ErrTooLarge, nil, "the object is %d bytes and the limit is %d; if the object is genuine, raise the limit", size, limit)
}

// dirError gives a file system error its kind.
func dirError(op, key string, err error, what string) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return newError(op, key, ErrNotFound, nil, "no such object")
	case errors.Is(err, fs.ErrPermission):
		return newError(op, key, ErrAccessDenied, err, "%s; check the permissions of the store directory", what)
	default:
		// A full disk or a dropped network share: the same call may succeed later.
		return newError(op, key, ErrUnavailable, err, "%s", what)
	}
}

var _ Store = (*Dir)(nil)

// String is the store's URL.
func (d *Dir) String() string {
	p := filepath.ToSlash(d.root)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p // file:///C:/store on Windows
	}
	return fmt.Sprintf("file://%s", p)
}
