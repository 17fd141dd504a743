// Package pluginbench measures extractor plugins the way their benchmarks report them: events
// per CPU-second of the plugin process and its peak RSS, through the real host (plugin binary,
// go-plugin, gRPC, the host's contract checks on every batch) or in process (sdk.Run). The
// Synthea, FHIR and UK GP extractors' benchmarks use it, so their figures can stand side by side.
package pluginbench

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/procstat"
	"github.com/tributary-health/tributary/plugins/host"
	"github.com/tributary-health/tributary/plugins/sdk"
)

// Result is one measurement.
type Result struct {
	Name         string
	Events       int64   // events of one extraction
	EventsPerCPU float64 // events per CPU-second of the plugin (the test process in process)
	PeakRSS      int64   // bytes: VmHWM of the plugin process (of the test process in process)
	Bytes        int64   // input bytes, when the caller says
}

// Host runs bin over req once per b.Loop through host.Launch and reports events/s,
// events/plugin-CPU-s and the plugin's peak RSS. Each run is a new plugin process; the CPU
// figure is that of the run that used the least CPU (with -benchtime Nx, the best of N), since
// on a shared machine other jobs only ever add to a process's CPU time (cache and frequency
// effects), and the mean of the runs is reported beside it.
func Host(b *testing.B, name, bin string, req sdk.Request) Result {
	b.Helper()
	sum, err := host.FileSHA256(bin)
	if err != nil {
		b.Fatal(err)
	}
	var res Result
	var cpu, best float64
	b.ResetTimer()
	for b.Loop() {
		p, err := host.Launch(context.Background(), host.Options{Path: bin, SHA256: sum})
		if err != nil {
			b.Fatal(err)
		}
		got, err := p.Extract(context.Background(), req, func(string, arrow.Record) error { return nil })
		if err != nil {
			p.Close()
			b.Fatal(err)
		}
		res.Events = got.Rows[formats.RowEvents]
		if pid := procstat.Child(os.Getpid(), bin); pid > 0 {
			res.PeakRSS = max(res.PeakRSS, procstat.PeakRSS(pid))
			c := procstat.CPUSeconds(pid)
			cpu += c
			if best == 0 || c < best {
				best = c
			}
		}
		p.Close()
	}
	b.StopTimer()
	res.Name = name
	b.ReportMetric(float64(res.Events)/(b.Elapsed().Seconds()/float64(b.N)), "events/s")
	if best > 0 {
		res.EventsPerCPU = float64(res.Events) / best
		b.ReportMetric(res.EventsPerCPU, "events/plugin-CPU-s")
		b.ReportMetric(float64(res.Events)*float64(b.N)/cpu, "mean-events/plugin-CPU-s")
		b.ReportMetric(float64(res.PeakRSS)/(1<<20), "plugin-peak-RSS-MiB")
	}
	return res
}

// InProcess runs ex over req once per b.Loop through sdk.Run and reports events/s,
// events/CPU-s and the test process's peak RSS (after a reset).
func InProcess(b *testing.B, name string, ex sdk.Extractor, req sdk.Request) Result {
	b.Helper()
	runtime.GC()
	procstat.ResetPeak(os.Getpid())
	var res Result
	cpu0 := procstat.CPUSeconds(os.Getpid())
	b.ResetTimer()
	for b.Loop() {
		got, err := sdk.Run(context.Background(), ex, req, func(string, arrow.Record) error { return nil })
		if err != nil {
			b.Fatal(err)
		}
		res.Events = got.Rows[formats.RowEvents]
	}
	b.StopTimer()
	res.Name = name
	b.ReportMetric(float64(res.Events)/(b.Elapsed().Seconds()/float64(b.N)), "events/s")
	if cpu := procstat.CPUSeconds(os.Getpid()) - cpu0; cpu > 0 {
		res.EventsPerCPU = float64(res.Events) * float64(b.N) / cpu
		b.ReportMetric(res.EventsPerCPU, "events/CPU-s")
	}
	res.PeakRSS = procstat.PeakRSS(os.Getpid())
	b.ReportMetric(float64(res.PeakRSS)/(1<<20), "peak-RSS-MiB")
	return res
}

// Table collects results and prints them side by side, each against the first (the Synthea
// extractor's).
type Table struct {
	mu   sync.Mutex
	rows []Result
}

// Add records r.
func (t *Table) Add(r Result) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.rows = append(t.rows, r)
}

// String renders the table.
func (t *Table) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "%-34s %10s %22s %14s %16s\n", "extractor and input", "events", "events/plugin-CPU-s", "peak RSS MiB", "CPU per event ×")
	var base float64
	for i, r := range t.rows {
		if i == 0 {
			base = r.EventsPerCPU
		}
		ratio := "-"
		if base > 0 && r.EventsPerCPU > 0 {
			ratio = fmt.Sprintf("%.2f", base/r.EventsPerCPU)
		}
		fmt.Fprintf(&b, "%-34s %10d %22.0f %14.1f %16s\n", r.Name, r.Events, r.EventsPerCPU, float64(r.PeakRSS)/(1<<20), ratio)
	}
	return b.String()
}
