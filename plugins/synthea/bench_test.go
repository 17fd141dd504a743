package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/synthgen"
	"github.com/tributary-health/tributary/internal/testenv"
	"github.com/tributary-health/tributary/plugins/host"
	"github.com/tributary-health/tributary/plugins/sdk"
)

// The benchmark streams generated practices of several sizes through the extractor, twice:
// through the real host (plugin binary, go-plugin, gRPC, the host's contract checks) and
// in-process through sdk.Run. It reports events/s and the peak RSS (VmHWM) of the plugin
// process and of the test process, to show that memory does not grow with the input.
//
//	go test -run '^$' -bench BenchmarkSyntheaExtract -benchtime 1x -timeout 30m ./plugins/synthea/
//
// TRIBUTARY_BENCH_SIZES sets the sizes as encounters:patients pairs (default
// "1000000:17241,5000000:17241,5000000:86206": 1M and 5M encounters over the same patients, then
// 5M at synthgen's default rate). The extractor holds a small struct per patient and streams
// encounters, so peak RSS should stay flat across the first two and grow only with patients.
// The generated exports are kept in $TMPDIR/tributary-synthea-bench between runs (about 330
// bytes per encounter); delete the folder to free the space.

// benchEncountersPerPatient is about what synthgen's default rate gives over ten years.
const benchEncountersPerPatient = 58

type benchSize struct{ encounters, patients int }

func benchSizes(b *testing.B) []benchSize {
	s := os.Getenv("TRIBUTARY_BENCH_SIZES")
	if s == "" {
		s = "1000000:17241,5000000:17241,5000000:86206"
	}
	var out []benchSize
	for _, f := range strings.Split(s, ",") {
		e, p, _ := strings.Cut(strings.TrimSpace(f), ":")
		n, err1 := strconv.Atoi(e)
		m, err2 := strconv.Atoi(p)
		if err1 != nil || err2 != nil || n < 1000 || m < 1 {
			b.Fatalf("TRIBUTARY_BENCH_SIZES: %q is not encounters:patients, e.g. 1000000:17241", f)
		}
		out = append(out, benchSize{n, m})
	}
	return out
}

// benchData returns a generated export of about size.encounters encounters over
// size.patients patients, generating it on first use.
func benchData(b *testing.B, size benchSize) (string, synthgen.Stats) {
	b.Helper()
	dir := filepath.Join(os.TempDir(), "tributary-synthea-bench", fmt.Sprintf("e%d-p%d-seed1", size.encounters, size.patients))
	done := filepath.Join(dir, "stats.json")
	var st synthgen.Stats
	if data, err := os.ReadFile(done); err == nil && json.Unmarshal(data, &st) == nil {
		return dir, st
	}
	start := time.Now()
	rate := 6 * float64(size.encounters) / float64(size.patients*benchEncountersPerPatient)
	st, err := synthgen.Write(dir, synthgen.Config{Seed: 1, Patients: size.patients, EncountersPerPatientYear: rate})
	if err != nil {
		b.Fatal(err)
	}
	data, _ := json.Marshal(st)
	if err := os.WriteFile(done, data, 0o644); err != nil {
		b.Fatal(err)
	}
	b.Logf("generated %d patients, %d encounters (%.0f MB) in %s into %s",
		st.Patients, st.Encounters, float64(st.Bytes)/1e6, time.Since(start).Round(time.Millisecond), dir)
	return dir, st
}

func BenchmarkSyntheaExtract(b *testing.B) {
	req := sdk.Request{From: formats.MonthFor(2015, 1), To: formats.MonthFor(2025, 1)}
	for _, n := range benchSizes(b) {
		name := fmt.Sprintf("encounters=%d/patients=%d", n.encounters, n.patients)
		b.Run("host/"+name, func(b *testing.B) {
			dir, st := benchData(b, n)
			bin := testenv.Binary(b, "./plugins/synthea")
			sum, err := host.FileSHA256(bin)
			if err != nil {
				b.Fatal(err)
			}
			resetPeak(os.Getpid())
			var rows int64
			var pluginPeak int64
			var pluginCPU float64
			b.ResetTimer()
			for b.Loop() {
				p, err := host.Launch(context.Background(), host.Options{Path: bin, SHA256: sum})
				if err != nil {
					b.Fatal(err)
				}
				r := req
				r.Config = map[string]string{"dir": dir}
				got, err := p.Extract(context.Background(), r, func(string, arrow.Record) error { return nil })
				if err != nil {
					p.Close()
					b.Fatal(err)
				}
				rows = got.Rows[formats.RowEvents]
				if pid := childPid(bin); pid > 0 {
					pluginPeak = max(pluginPeak, peakRSS(pid))
					pluginCPU += cpuSeconds(pid)
				}
				p.Close()
			}
			report(b, st, rows)
			if pluginPeak > 0 {
				b.ReportMetric(float64(pluginPeak)/(1<<20), "plugin-peak-RSS-MiB")
				b.ReportMetric(float64(rows)*float64(b.N)/pluginCPU, "events/plugin-CPU-s")
			}
			b.ReportMetric(float64(peakRSS(os.Getpid()))/(1<<20), "host-peak-RSS-MiB")
		})
		b.Run("inprocess/"+name, func(b *testing.B) {
			dir, st := benchData(b, n)
			runtime.GC()
			resetPeak(os.Getpid())
			var rows int64
			cpu0 := cpuSeconds(os.Getpid())
			b.ResetTimer()
			for b.Loop() {
				r := req
				r.Config = map[string]string{"dir": dir}
				got, err := sdk.Run(context.Background(), Extractor{}, r, func(string, arrow.Record) error { return nil })
				if err != nil {
					b.Fatal(err)
				}
				rows = got.Rows[formats.RowEvents]
			}
			report(b, st, rows)
			if cpu := cpuSeconds(os.Getpid()) - cpu0; cpu > 0 {
				b.ReportMetric(float64(rows)*float64(b.N)/cpu, "events/CPU-s")
			}
			b.ReportMetric(float64(peakRSS(os.Getpid()))/(1<<20), "peak-RSS-MiB")
		})
	}
}

func report(b *testing.B, st synthgen.Stats, events int64) {
	sec := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(float64(events)/sec, "events/s")
	b.ReportMetric(float64(st.Encounters)/sec, "encounters/s")
	b.ReportMetric(float64(st.Bytes)/1e6/sec, "MB/s")
	b.ReportMetric(float64(st.Encounters), "encounters")
}

// peakRSS is VmHWM of process pid in bytes, or 0 where /proc is not available.
func peakRSS(pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// cpuSeconds is the user and system CPU time process pid has used, from /proc/<pid>/stat
// (in clock ticks of 1/100 s, Linux's USER_HZ), or 0 where /proc is not available. Unlike
// wall-clock figures it does not depend on how busy the machine is.
func cpuSeconds(pid int) float64 {
	f := procStat(pid)
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return float64(utime+stime) / 100
}

// procStat returns the fields of /proc/<pid>/stat after the command name, so f[0] is the
// state and f[1] the parent's pid; nil where /proc is not available.
func procStat(pid int) []string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	// pid (comm) state ppid ...: comm may hold spaces and parentheses, so cut after the last ')'.
	s := string(data)
	return strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
}

// resetPeak resets VmHWM of pid to the current RSS (Linux: "5" to clear_refs), so each size is
// measured on its own; where that is not possible the figure is the process's lifetime peak.
func resetPeak(pid int) {
	_ = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

// childPid finds the running child of this process whose executable is bin, or 0.
func childPid(bin string) int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	self := strconv.Itoa(os.Getpid())
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err != nil || exe != bin {
			continue
		}
		if f := procStat(pid); len(f) > 1 && f[1] == self {
			return pid
		}
	}
	return 0
}
