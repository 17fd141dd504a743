package combine_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"testing"
	"time"

	"github.com/tributary-health/tributary/internal/procstat"
	"github.com/tributary-health/tributary/internal/testenv"

	"github.com/tributary-health/tributary/coordinator/combine"
	"github.com/tributary-health/tributary/coordinator/internal/fedgen"
	"github.com/tributary-health/tributary/internal/objstore"
)

// BenchmarkCombine combines a generated federation, by default 1,000 practices × 60 months
// (one run per practice: every period, measure and shape of 60 months, 1,000 files). The generated store is kept
// in the temp directory, named by its parameters, so only the first run pays for it:
//
//	go test -run '^$' -bench BenchmarkCombine -benchtime 1x ./coordinator/combine/
//
// TRIBUTARY_BENCH_PRACTICES and TRIBUTARY_BENCH_MONTHS change the size. Outputs of earlier
// runs are deleted first, so a 1x run measures a first combine, tables written included. Besides ns/op it
// reports seconds per combine (wall and CPU) and the process's peak resident memory (VmHWM), reset after the
// store is generated so it measures the combine alone.
func BenchmarkCombine(b *testing.B) {
	params := fedgen.Params{Practices: testenv.EnvInt(b, "TRIBUTARY_BENCH_PRACTICES", 1000), Months: testenv.EnvInt(b, "TRIBUTARY_BENCH_MONTHS", 60), Seed: 2024}
	fed := fedgen.New(params)
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("tributary-bench-combine-v%d-p%d-m%d-s%d", fedgen.Version, params.Practices, params.Months, params.Seed))
	marker := filepath.Join(dir, "complete")
	ctx := context.Background()
	if _, err := os.Stat(marker); err != nil {
		if err := os.RemoveAll(dir); err != nil {
			b.Fatal(err)
		}
		st, err := objstore.NewDir(filepath.Join(dir, "store"))
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if err := fed.Write(ctx, st, runtime.GOMAXPROCS(0)); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(marker, nil, 0o644); err != nil {
			b.Fatal(err)
		}
		b.Logf("generated %d practices × %d months in %s at %s", params.Practices, params.Months, time.Since(start).Round(time.Second), dir)
	}
	st, err := objstore.NewDir(filepath.Join(dir, "store"))
	if err != nil {
		b.Fatal(err)
	}
	// Start from a store without outputs, so the first combine writes every practice table
	// (later iterations find them stored under their digests and skip writing them).
	for _, prefix := range []string{combine.PracticeTablesPrefix, combine.CombinedPrefix} {
		infos, err := st.List(ctx, prefix)
		if err != nil {
			b.Fatal(err)
		}
		for _, in := range infos {
			if err := st.Delete(ctx, in.Key); err != nil {
				b.Fatal(err)
			}
		}
	}
	runtime.GC()
	debug.FreeOSMemory()
	procstat.ResetPeak(os.Getpid())
	pub := fed.Coordinator.Public().(ed25519.PublicKey)
	var res *combine.Result
	b.ResetTimer()
	start, cpuStart := time.Now(), cpuTime()
	for b.Loop() {
		res, err = combine.Run(ctx, st, pub, combine.Options{})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(time.Since(start).Seconds()/float64(b.N), "s/combine")
	b.ReportMetric((cpuTime()-cpuStart).Seconds()/float64(b.N), "cpu-s/combine")
	b.ReportMetric(float64(procstat.PeakRSS(os.Getpid()))/(1<<20), "peak-RSS-MiB")
	if res.Report.FilesCombined != params.Practices || res.Report.MonthsCombined != params.Practices*params.Months || len(res.Report.Quarantined) != 0 {
		b.Fatalf("combined %d files (%d practice-months), want %d (%d); %d quarantined", res.Report.FilesCombined, res.Report.MonthsCombined,
			params.Practices, params.Practices*params.Months, len(res.Report.Quarantined))
	}
	var sizes []string
	for _, name := range []string{combine.FederationArrow, combine.FederationParquet, combine.ReportJSON} {
		sizes = append(sizes, fmt.Sprintf("%s %.1f MiB", name, float64(res.Pointer.Objects[name].Size)/(1<<20)))
	}
	var tables int64
	for _, ref := range res.Pointer.PracticeTables {
		tables += ref.Size
	}
	sizes = append(sizes, fmt.Sprintf("%d practice tables %.1f MiB", len(res.Pointer.PracticeTables), float64(tables)/(1<<20)))
	b.Logf("outputs: %v; %d practice rows", sizes, res.Report.PracticeRows)
}
