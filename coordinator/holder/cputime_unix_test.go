//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package holder

import (
	"syscall"
	"time"
)

// cpuTime is this process's user and system CPU time so far: on a shared machine it measures
// the work, where wall time measures the queue for a CPU too.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
