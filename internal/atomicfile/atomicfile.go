// Package atomicfile replaces files so that a crash, a power cut or a full disk at any moment
// leaves the old content or the new, never part of either, and cleans up what an interrupted
// write left behind.
//
// Write puts the content in a temporary file in the same folder (the rename below must not
// cross file systems), syncs it to disk, renames it over the file and syncs the folder, so
// the rename itself survives a crash. The temporary file is named
//
//	.<name>.tmp-<16 hex digits>
//
// beside <name>: hidden, recognisable by IsTemp, and never a name Write is asked to replace.
// A process that dies between creating and renaming it leaves it behind; Clean and CleanDir
// remove such leftovers, and are meant to be called when the file's owner opens it again.
package atomicfile

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// tempMark separates a file's name from the random part of its temporary file's name.
const tempMark = ".tmp-"

var tempPattern = regexp.MustCompile(`^\..+\.tmp-[0-9a-f]{16}$`)

// IsTemp reports whether name (a base name, not a path) is one of Write's temporary files.
func IsTemp(name string) bool { return tempPattern.MatchString(name) }

// tempName returns a fresh temporary file name for the file named base.
func tempName(base string) string {
	var rnd [8]byte
	_, _ = rand.Read(rnd[:]) // crypto/rand does not fail on supported platforms
	return "." + base + tempMark + hex.EncodeToString(rnd[:])
}

// hook, when set by a test, runs at each step of Write; an error it returns fails Write
// there, as a full disk or a failing device would.
var hook func(step string, f *os.File) error

func runHook(step string, f *os.File) error {
	if hook == nil {
		return nil
	}
	return hook(step, f)
}

// Write replaces the file at path with data, creating it with permission perm (before the
// umask) if it does not exist; an existing file's permission is replaced by perm too. The
// folder must exist.
//
// When Write returns an error the file holds its old content (or still does not exist) and
// no temporary file is left, with one exception: when only the final sync of the folder
// failed, the new content is in place but may not survive a crash, and the error says so.
// A crash during Write leaves the old content or the new, and possibly a temporary file that
// Clean removes.
func Write(path string, data []byte, perm fs.FileMode) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	if base == "" || IsTemp(base) {
		return &fs.PathError{Op: "write", Path: path, Err: fs.ErrInvalid}
	}
	tmp := filepath.Join(dir, tempName(base))
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	renamed := false
	defer func() {
		if !renamed {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := runHook("write", f); err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := runHook("sync", f); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := runHook("close", f); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := runHook("rename", nil); err != nil {
		return err
	}
	if err := Rename(tmp, path); err != nil {
		return err
	}
	renamed = true
	if err := SyncDir(dir); err != nil {
		return fmt.Errorf("%s was replaced, but syncing its folder failed, so the change may not survive a crash: %w", path, err)
	}
	return nil
}

// Clean removes the temporary files that interrupted Writes of path left beside it, if they
// were last modified at least minAge ago: a file with a single owner passes 0 when it opens
// the file, a file that several processes may be writing passes a margin longer than any
// write takes. Names starting with one of legacy (temporary files of earlier versions of the
// caller, e.g. "state.json.tmp-") are removed too. A missing folder is not an error.
func Clean(path string, minAge time.Duration, legacy ...string) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	prefix := "." + base + tempMark
	_, err := clean(dir, minAge, func(name string) bool {
		if strings.HasPrefix(name, prefix) && IsTemp(name) {
			return true
		}
		return hasAnyPrefix(name, legacy)
	})
	return err
}

// CleanDir removes every temporary file that interrupted Writes left in dir (not in its
// subfolders), and files whose names start with one of legacy, if they were last modified
// at least minAge ago (see Clean). It returns how many it removed.
func CleanDir(dir string, minAge time.Duration, legacy ...string) (int, error) {
	return clean(dir, minAge, func(name string) bool { return IsTemp(name) || hasAnyPrefix(name, legacy) })
}

func hasAnyPrefix(name string, prefixes []string) bool {
	for _, p := range prefixes {
		if p != "" && strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

func clean(dir string, minAge time.Duration, match func(string) bool) (int, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	cutoff := time.Now().Add(-minAge)
	removed, removedAny := 0, false
	var errs []error
	for _, e := range entries {
		if !e.Type().IsRegular() || !match(e.Name()) {
			continue
		}
		if minAge > 0 {
			fi, err := e.Info()
			if err != nil || fi.ModTime().After(cutoff) {
				continue // gone already, or perhaps still being written
			}
		}
		err := os.Remove(filepath.Join(dir, e.Name()))
		switch {
		case err == nil:
			removed++
			removedAny = true
		case !errors.Is(err, fs.ErrNotExist):
			errs = append(errs, err)
		}
	}
	if removedAny {
		if err := SyncDir(dir); err != nil {
			errs = append(errs, err)
		}
	}
	return removed, errors.Join(errs...)
}
