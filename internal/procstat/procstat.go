// Package procstat reads a process's peak memory and CPU time from /proc, for benchmarks that
// report figures which do not depend on how busy the machine is. Where /proc is absent
// (Windows, macOS) every figure is 0.
package procstat

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// PeakRSS is the process's peak resident memory (VmHWM) in bytes.
func PeakRSS(pid int) int64 { return statusKB(pid, "VmHWM:") << 10 }

// RSS is the process's resident memory now (VmRSS) in bytes.
func RSS(pid int) int64 { return statusKB(pid, "VmRSS:") << 10 }

// statusKB reads one "kB" field of /proc/<pid>/status.
func statusKB(pid int, field string) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb
		}
	}
	return 0
}

// ResetPeak restarts the process's VmHWM from its current RSS (Linux's clear_refs "5"), so
// one measurement is not the lifetime peak of everything the process did before.
func ResetPeak(pid int) {
	_ = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

// CPUSeconds is the user and system CPU time the process has used (USER_HZ ticks of 1/100 s).
func CPUSeconds(pid int) float64 {
	f := statFields(pid)
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return float64(utime+stime) / 100
}

// ChildCPUSeconds is the CPU time of the process's children that have exited and been
// waited for (cutime + cstime), such as plugin processes.
func ChildCPUSeconds(pid int) float64 {
	f := statFields(pid)
	if len(f) < 15 {
		return 0
	}
	cu, _ := strconv.ParseInt(f[13], 10, 64)
	cs, _ := strconv.ParseInt(f[14], 10, 64)
	return float64(cu+cs) / 100
}

// statFields returns the fields of /proc/<pid>/stat after the command name: f[0] is the
// state, f[1] the parent's pid.
func statFields(pid int) []string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	s := string(data)
	return strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
}

// Child returns the pid of a running child of process parent whose executable is exe, or 0.
func Child(parent int, exe string) int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	want := strconv.Itoa(parent)
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if link, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err != nil || link != exe {
			continue
		}
		if f := statFields(pid); len(f) > 1 && f[1] == want {
			return pid
		}
	}
	return 0
}
