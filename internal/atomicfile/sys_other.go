//go:build !windows

package atomicfile

import "os"

// Rename moves oldpath to newpath, replacing newpath if it exists; on POSIX systems the
// replacement is atomic.
func Rename(oldpath, newpath string) error { return os.Rename(oldpath, newpath) }

// SyncDir makes the creations, renames and removals in dir durable.
func SyncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
