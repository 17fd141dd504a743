//go:build linux

package objstore

import (
	"errors"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// openRegular opens the file at rel (slash-free separators, relative to root) for reading
// without following any symbolic link on the way and without blocking: openat2 resolves it
// beneath root with no symlinks, and O_NONBLOCK makes a named pipe open at once (it is then
// refused as not a regular file). Kernels before 5.6 have no openat2; the portable walk is
// used then.
func openRegular(root, rel string) (*os.File, error) {
	rootFD, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: root, Err: err}
	}
	defer unix.Close(rootFD)
	fd, err := unix.Openat2(rootFD, rel, &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_NONBLOCK | unix.O_CLOEXEC | unix.O_NOFOLLOW,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	})
	switch {
	case errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM):
		// No openat2 (an old kernel, or a sandbox that filters it).
		return openRegularWalk(root, rel)
	case errors.Is(err, unix.ELOOP) || errors.Is(err, unix.EXDEV):
		return nil, errNotRegular("a symbolic link, or a path through one")
	case err != nil:
		return nil, &os.PathError{Op: "open", Path: filepath.Join(root, rel), Err: err}
	}
	return os.NewFile(uintptr(fd), filepath.Join(root, rel)), nil
}
