package atomicfile

import (
	"errors"
	"os"
	"syscall"
	"time"
)

// Windows errors a rename meets while another process briefly holds the target open without
// sharing deletion: a reader of the file (Go opens files so), a virus scanner, the indexer.
const (
	errAccessDenied     = syscall.Errno(5)
	errSharingViolation = syscall.Errno(32)
	errLockViolation    = syscall.Errno(33)
)

// renameWait is how long Rename keeps retrying a rename another process blocks.
const renameWait = 2 * time.Second

// Rename moves oldpath to newpath, replacing newpath if it exists (MoveFileEx with
// MOVEFILE_REPLACE_EXISTING, which NTFS performs as one journaled step). While another
// process holds newpath open, Windows refuses the replacement; Rename retries for up to
// two seconds before giving up, as such holds are brief.
func Rename(oldpath, newpath string) error {
	deadline := time.Now().Add(renameWait)
	for delay := time.Millisecond; ; delay = min(2*delay, 100*time.Millisecond) {
		err := os.Rename(oldpath, newpath)
		if err == nil || !transient(err) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(delay)
	}
}

func transient(err error) bool {
	return errors.Is(err, errAccessDenied) || errors.Is(err, errSharingViolation) || errors.Is(err, errLockViolation)
}

// SyncDir does nothing on Windows, where a folder cannot be opened for syncing; NTFS
// journals renames and removals itself.
func SyncDir(string) error { return nil }
