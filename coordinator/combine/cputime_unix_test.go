//go:build unix

package combine_test

import (
	"syscall"
	"time"
)

// cpuTime is the user and system CPU time this process has used: unlike wall time it does
// not depend on what else the machine is running.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
