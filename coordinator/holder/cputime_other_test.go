//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package holder

import "time"

// cpuTime is not measured here: the benchmark's CPU figures read zero.
func cpuTime() time.Duration { return 0 }
