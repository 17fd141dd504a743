package duckdb

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tributary-health/tributary/agent"
	"github.com/tributary-health/tributary/agent/aggregate"
	"github.com/tributary-health/tributary/agent/config"
	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/procstat"
	"github.com/tributary-health/tributary/internal/synthgen"
	"github.com/tributary-health/tributary/internal/testenv"
	"github.com/tributary-health/tributary/plugins/host"
)

// The months both sides count: the generator's default span, 2015-01 to 2024-12.
var benchFrom, benchTo = formats.MonthFor(2015, 1), formats.MonthFor(2024, 12)

// BenchmarkAgentVsDuckDB runs, in one process and one run, the same work two ways on the same
// generated Synthea-style practices (internal/synthgen, England's rates):
//
//   - agent: each practice's whole agent run (agent.Open and RunOnce, as run --once does): the
//     real synthea plugin binary through plugins/host, aggregation, disclosure control and its
//     audit, the signed submission, the spool and the upload to a file:// directory store;
//   - duckdb: DuckDB reading each practice's patients.csv and encounters.csv and counting
//     encounters by month × encounter class × age band × sex (countQuery), with the rules the
//     agent applies so that its counts are the agent's (TestDuckDBCountsMatchAgent).
//
// It reports wall and CPU seconds (the agent's include the plugin processes), peak RSS (the
// agent's: the larger of the agent process and a plugin process) and the ratios agent/DuckDB,
// and prints them as a table. Run it alone on a quiet machine:
//
//	cd bench/duckdb && go test -run '^$' -bench AgentVsDuckDB -benchtime 1x -timeout 1h .
//
// TRIBUTARY_BENCH_PRACTICES (default 2) and TRIBUTARY_BENCH_PATIENTS (default 10000, a
// median English practice) set the federation generated.
func BenchmarkAgentVsDuckDB(b *testing.B) {
	ctx := context.Background()
	n := testenv.EnvInt(b, "TRIBUTARY_BENCH_PRACTICES", 2)
	patients := testenv.EnvInt(b, "TRIBUTARY_BENCH_PATIENTS", 10000)
	plugin := testenv.Binary(b, "github.com/tributary-health/tributary/plugins/synthea")
	data, stats := federation(b, n, patients)
	var encounters int64
	var bytes int64
	for _, s := range stats {
		encounters += int64(s.Encounters)
		bytes += s.Bytes
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	var ag, dk measured
	var pluginCPU float64 // of ag.cpu
	for range b.N {
		work := b.TempDir()
		ag.add(measure(func() float64 {
			var pluginPeak float64
			for i := 1; i <= n; i++ {
				rep, use := runAgent(ctx, b, plugin, filepath.Join(data, synthgen.PracticeDir(i)), work, synthgen.PracticeDir(i), nil)
				pluginPeak = max(pluginPeak, use.peak)
				pluginCPU += use.cpu
				if rep.Plugins[0].Events == 0 {
					b.Fatal("the agent counted no events")
				}
			}
			return pluginPeak
		}))
		dk.add(measure(func() float64 {
			for i := 1; i <= n; i++ {
				if counts := duckCounts(ctx, b, db, filepath.Join(data, synthgen.PracticeDir(i))); len(counts) == 0 {
					b.Fatal("DuckDB counted no encounters")
				}
			}
			return 0
		}))
	}
	ag.div(b.N)
	dk.div(b.N)
	b.ReportMetric(float64(encounters), "encounters")
	b.ReportMetric(ag.wall, "agent-s")
	b.ReportMetric(dk.wall, "duckdb-s")
	b.ReportMetric(ag.wall/dk.wall, "agent/duckdb-wall")
	b.ReportMetric(ag.cpu, "agent-cpu-s")
	b.ReportMetric(dk.cpu, "duckdb-cpu-s")
	b.ReportMetric(ag.cpu/dk.cpu, "agent/duckdb-cpu")
	b.ReportMetric(pluginCPU/float64(b.N), "plugin-cpu-s")
	b.ReportMetric(ag.peak/(1<<20), "agent-peak-MiB")
	b.ReportMetric(dk.peak/(1<<20), "duckdb-peak-MiB")
	b.Logf("%d practices of %d patients, %d encounters, %.0f MB of CSV, %s to %s:", n, patients, encounters, float64(bytes)/1e6, benchFrom, benchTo)
	b.Logf("%-8s %10s %10s %14s", "", "wall s", "CPU s", "peak RSS MiB")
	b.Logf("%-8s %10.2f %10.2f %14.0f", "agent", ag.wall, ag.cpu, ag.peak/(1<<20))
	b.Logf("%-8s %10.2f %10.2f %14.0f", "duckdb", dk.wall, dk.cpu, dk.peak/(1<<20))
	b.Logf("%-8s %10.2f %10.2f %14.2f", "ratio", ag.wall/dk.wall, ag.cpu/dk.cpu, ag.peak/dk.peak)
	b.Logf("of the agent's CPU, %.2f s in the plugin processes", pluginCPU/float64(b.N))
}

// measured is one side's figures: wall and CPU seconds, peak RSS in bytes.
type measured struct{ wall, cpu, peak float64 }

func (m *measured) add(o measured) {
	m.wall += o.wall
	m.cpu += o.cpu
	m.peak = max(m.peak, o.peak)
}

func (m *measured) div(n int) {
	m.wall /= float64(n)
	m.cpu /= float64(n)
}

// measure times fn: wall, this process's CPU and that of its children waited for in the
// meantime (plugin processes), and the peak RSS of this process or of what fn returns (a
// child's peak), whichever is larger.
func measure(fn func() float64) measured {
	pid := os.Getpid()
	procstat.ResetPeak(pid)
	cpu0 := procstat.CPUSeconds(pid) + procstat.ChildCPUSeconds(pid)
	t0 := time.Now()
	child := fn()
	return measured{
		wall: time.Since(t0).Seconds(),
		cpu:  procstat.CPUSeconds(pid) + procstat.ChildCPUSeconds(pid) - cpu0,
		peak: max(float64(procstat.PeakRSS(pid)), child),
	}
}

// federation returns a generated federation of n practices of patients patients, cached in
// the temporary folder between runs (generating is not what is measured).
func federation(b *testing.B, n, patients int) (string, []synthgen.Stats) {
	cfg := synthgen.Config{Seed: 13, Patients: patients, Rates: synthgen.EnglandRates}
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("tributary-bench-duckdb-%d-%d-v1", n, patients))
	if _, err := os.Stat(dir); err != nil {
		if _, err := synthgen.WriteFederation(dir+".tmp", n, cfg); err != nil {
			b.Fatal(err)
		}
		if err := os.Rename(dir+".tmp", dir); err != nil {
			b.Fatal(err)
		}
	}
	// The stats again, cheaply: the files are a pure function of the config.
	stats := make([]synthgen.Stats, n)
	for i := range stats {
		for _, f := range []string{"patients.csv", "encounters.csv"} {
			fi, err := os.Stat(filepath.Join(dir, synthgen.PracticeDir(i+1), f))
			if err != nil {
				b.Fatal(err)
			}
			stats[i].Bytes += fi.Size()
		}
		lines, err := countLines(filepath.Join(dir, synthgen.PracticeDir(i+1), "encounters.csv"))
		if err != nil {
			b.Fatal(err)
		}
		stats[i].Encounters = lines - 1
	}
	return dir, stats
}

func countLines(path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strings.Count(string(data), "\n"), nil
}

// runAgent runs one practice's agent once, as run --once does, with the synthea plugin over
// data, into the file:// store under work. It returns the report and the plugin process's
// peak RSS and CPU seconds. inspect, when set, sees the run's true counts.
func runAgent(ctx context.Context, tb testing.TB, plugin, data, work, practice string, inspect func(*aggregate.Result)) (*agent.RunReport, measured) {
	tb.Helper()
	sum, err := host.FileSHA256(plugin)
	if err != nil {
		tb.Fatal(err)
	}
	dir := filepath.Join(work, "agents", practice)
	priv, _, err := agent.InitKeys(filepath.Join(dir, "keys"))
	if err != nil {
		tb.Fatal(err)
	}
	cfg := &config.Config{
		Practice: practice,
		KeyFile:  priv,
		Store:    "file://" + filepath.ToSlash(filepath.Join(work, "store")),
		Spool:    filepath.Join(dir, "spool"),
		Policy:   formats.DefaultPolicy.Name,
		Months:   config.Months{From: benchFrom.String(), To: benchTo.String()},
		Plugins:  []config.Plugin{{Name: "synthea", Path: plugin, SHA256: sum, Config: map[string]string{"dir": data}}},
	}
	cfg.PluginStartTimeout.Duration = time.Minute
	cfg.PluginRunTimeout.Duration = 30 * time.Minute
	cfg.Listen = config.ListenOff
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		tb.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	launch := agent.HostLauncher(cfg, log)
	var use measured
	a, err := agent.Open(ctx, cfg, func(ctx context.Context, p config.Plugin) (agent.Source, error) {
		s, err := launch(ctx, p)
		if err != nil {
			return nil, err
		}
		return &peakSource{Source: s, exe: plugin, use: &use}, nil
	}, log)
	if err != nil {
		tb.Fatal(err)
	}
	a.Inspect = inspect
	rep, err := a.RunOnce(ctx)
	if err != nil || rep.Failed() || rep.UploadErr != nil {
		tb.Fatalf("agent run of %s: %v %+v %v", practice, err, rep.Plugins, rep.UploadErr)
	}
	return rep, use
}
