//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly || windows)

package holder

import "os"

// lockFile does nothing on systems without a portable file lock here.
func lockFile(*os.File) error { return nil }
