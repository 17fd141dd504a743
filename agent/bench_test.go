package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tributary-health/tributary/agent/config"
	"github.com/tributary-health/tributary/agent/spool"
	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/objstore"
	"github.com/tributary-health/tributary/internal/procstat"
	"github.com/tributary-health/tributary/internal/synthgen"
	"github.com/tributary-health/tributary/internal/testenv"
	"github.com/tributary-health/tributary/plugins/host"
)

// BenchmarkAgentRun is one whole agent run over a generated Synthea practice: the real
// plugin binary through the host, aggregation, disclosure control and audit, the run's one
// submission (120 months, 40 quarters, 10 years) signed and uploaded to a directory store. It reports wall and CPU seconds per million events and
// the agent process's peak RSS, at two sizes, so that memory can be seen not to follow the
// number of events. Run it alone (the peak is the process's):
//
//	go test -run '^$' -bench BenchmarkAgentRun -benchtime 1x -timeout 30m ./agent/
func BenchmarkAgentRun(b *testing.B) {
	plugin := testenv.Binary(b, "./plugins/synthea")
	for _, patients := range []int{17000, 50000} {
		b.Run(fmt.Sprintf("patients=%d", patients), func(b *testing.B) {
			data := generated(b, patients)
			sum, err := host.FileSHA256(plugin)
			if err != nil {
				b.Fatal(err)
			}
			var events int64
			var wall, cpu float64
			var peak int64
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				dir := b.TempDir()
				priv, _, err := InitKeys(filepath.Join(dir, "keys"))
				if err != nil {
					b.Fatal(err)
				}
				key, _ := readKey(priv)
				cfg := &config.Config{Practice: "BENCH", KeyFile: priv, Store: "file://" + dir + "/store", Spool: filepath.Join(dir, "spool"),
					Policy: formats.PolicyUK.Name, Months: config.Months{From: "2015-01", To: "2024-12"},
					Plugins: []config.Plugin{{Name: "synthea", Path: plugin, SHA256: sum, Config: map[string]string{"dir": data}}}}
				cfg.PluginRunTimeout.Duration = 30 * time.Minute
				cfg.PluginStartTimeout.Duration = time.Minute
				sp, _, _ := spool.Open(cfg.Spool)
				st, _ := objstore.NewDir(filepath.Join(dir, "store"))
				a := &Agent{Config: cfg, Key: key, Spool: sp, Uploader: &Uploader{Spool: sp, Store: st, StoreURL: cfg.Store}}
				a.Launch = HostLauncher(cfg, a.log())
				procstat.ResetPeak(os.Getpid())
				cpu0 := procstat.CPUSeconds(os.Getpid())
				t0 := time.Now()
				b.StartTimer()
				rep, err := a.RunOnce(context.Background())
				b.StopTimer()
				wall += time.Since(t0).Seconds()
				cpu += procstat.CPUSeconds(os.Getpid()) - cpu0
				peak = max(peak, procstat.PeakRSS(os.Getpid()))
				if err != nil || rep.Failed() || rep.UploadErr != nil {
					b.Fatalf("run: %v %+v %v", err, rep.Plugins, rep.UploadErr)
				}
				events += rep.Plugins[0].Events
			}
			mev := float64(events) / 1e6
			b.ReportMetric(float64(events)/float64(b.N), "events")
			b.ReportMetric(wall/mev, "s/Mevents")
			b.ReportMetric(cpu/mev, "agent-cpu-s/Mevents")
			b.ReportMetric(float64(peak)/(1<<20), "agent-peak-MiB")
		})
	}
}

// generated returns a cached generated practice of n patients over 2015-2024.
func generated(b *testing.B, n int) string {
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("tributary-bench-agent-%d-v1", n))
	if _, err := os.Stat(filepath.Join(dir, "encounters.csv")); err == nil {
		return dir
	}
	if _, err := synthgen.Write(dir+".tmp", synthgen.Config{Seed: 42, Patients: n}); err != nil {
		b.Fatal(err)
	}
	if err := os.Rename(dir+".tmp", dir); err != nil {
		b.Fatal(err)
	}
	return dir
}
