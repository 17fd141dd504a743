package objstore

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// notRegular says what a path holds instead of a regular file.
type notRegular struct{ what string }

func (e *notRegular) Error() string { return e.what + ", not a regular file" }

func errNotRegular(what string) error { return &notRegular{what} }

// describe names what a file mode is, for a reason a person reads.
func describe(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	case m.IsDir():
		return "a folder"
	}
	return "not a regular file"
}

// openRegularWalk is openRegular without openat2: it refuses a path any of whose parts is a
// symbolic link, then opens the file without following one and checks what it opened. A
// part replaced by a link between the check and the open is caught on the last part only,
// which is the object itself; the store's own writes never make links.
func openRegularWalk(root, rel string) (*os.File, error) {
	p := root
	parts := strings.Split(rel, string(filepath.Separator))
	for i, part := range parts {
		p = filepath.Join(p, part)
		fi, err := os.Lstat(p)
		if err != nil {
			return nil, err
		}
		if fi.Mode()&fs.ModeSymlink != 0 || (i < len(parts)-1 && !fi.IsDir()) || (i == len(parts)-1 && !fi.Mode().IsRegular() && !fi.IsDir()) {
			if i < len(parts)-1 && !fi.IsDir() && fi.Mode()&fs.ModeSymlink == 0 {
				return nil, &os.PathError{Op: "open", Path: p, Err: syscallNotDir}
			}
			return nil, errNotRegular(describe(fi.Mode()))
		}
	}
	return os.Open(p)
}
