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
	"github.com/tributary-health/tributary/internal/procstat"
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
			procstat.ResetPeak(os.Getpid())
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
				if pid := procstat.Child(os.Getpid(), bin); pid > 0 {
					pluginPeak = max(pluginPeak, procstat.PeakRSS(pid))
					pluginCPU += procstat.CPUSeconds(pid)
				}
				p.Close()
			}
			report(b, st, rows)
			if pluginPeak > 0 {
				b.ReportMetric(float64(pluginPeak)/(1<<20), "plugin-peak-RSS-MiB")
				b.ReportMetric(float64(rows)*float64(b.N)/pluginCPU, "events/plugin-CPU-s")
			}
			b.ReportMetric(float64(procstat.PeakRSS(os.Getpid()))/(1<<20), "host-peak-RSS-MiB")
		})
		b.Run("inprocess/"+name, func(b *testing.B) {
			dir, st := benchData(b, n)
			runtime.GC()
			procstat.ResetPeak(os.Getpid())
			var rows int64
			cpu0 := procstat.CPUSeconds(os.Getpid())
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
			if cpu := procstat.CPUSeconds(os.Getpid()) - cpu0; cpu > 0 {
				b.ReportMetric(float64(rows)*float64(b.N)/cpu, "events/CPU-s")
			}
			b.ReportMetric(float64(procstat.PeakRSS(os.Getpid()))/(1<<20), "peak-RSS-MiB")
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
