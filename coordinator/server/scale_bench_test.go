package server

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tributary-health/tributary/coordinator/combine"
	"github.com/tributary-health/tributary/coordinator/internal/ordered"
	"github.com/tributary-health/tributary/coordinator/loadgen"
	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/miniotest"
	"github.com/tributary-health/tributary/internal/objstore"
	"github.com/tributary-health/tributary/internal/procstat"
	"github.com/tributary-health/tributary/internal/testenv"
)

// BenchmarkScale is the national-scale benchmark (issue 13): loadgen fills a directory store,
// then, in one process and one after another, it measures
//
//   - the floor: reading and SHA-256-hashing every byte of the store with 2 workers, the
//     least any combine that verifies everything must do;
//
//   - a cold combine (combine.Run with an empty cache, as `tributary-coordinator combine`
//     runs): wall time, CPU time and peak RSS, and its ratio to the floor;
//
//   - the incremental re-combine after one practice's new run, with the cache the cold
//     combine filled (as `serve` re-combines);
//
//   - serve: the combined figures loaded as `serve` holds them, the dashboard's requests from
//     8 concurrent clients over loopback with the answer cache off (every answer computed
//     afresh): p50, p99 and resident memory.
//
//     TRIBUTARY_SCALE_PRACTICES=1000 TRIBUTARY_SCALE_MONTHS=60 go test -run '^$' -bench BenchmarkScale -benchtime 1x -timeout 3h ./coordinator/server/
//
// The size defaults to 200 × 24. The store is kept, named by its size, under
// TRIBUTARY_SCALE_DIR (default the temp directory), so only the first run at a size pays for
// loadgen; outputs of earlier runs and the extra run are deleted first. The machine's load
// average is printed beside the figures. TRIBUTARY_SCALE_CPUPROFILE=FILE writes a CPU profile
// of the cold combine alone; TRIBUTARY_SCALE_SERVE=off stops after the re-combine.
// TRIBUTARY_SCALE_STORE=minio copies the federation into a real MinIO server on loopback (the
// project's pinned build, as the integration tests use) and measures everything, the floor
// included, through S3.
func BenchmarkScale(b *testing.B) {
	practices, months := testenv.EnvInt(b, "TRIBUTARY_SCALE_PRACTICES", 200), testenv.EnvInt(b, "TRIBUTARY_SCALE_MONTHS", 24)
	clients, total := 8, testenv.EnvInt(b, "TRIBUTARY_SCALE_REQUESTS", 2000)
	root := os.Getenv("TRIBUTARY_SCALE_DIR")
	if root == "" {
		root = os.TempDir()
	}
	dir := filepath.Join(root, fmt.Sprintf("tributary-scale-p%d-m%d", practices, months))
	storeDir := filepath.Join(dir, "store")
	ctx := context.Background()
	g, err := loadgen.New(loadgen.Options{Practices: practices, Months: months, Seed: 1, Workdir: dir})
	if err != nil {
		b.Fatal(err)
	}
	pid := os.Getpid()
	var rows [][2]string
	row := func(k, v string) {
		rows = append(rows, [2]string{k, v})
		b.Logf("%s: %s", k, v)
	}
	row("size", fmt.Sprintf("%d practices × %d months (%d practice-months); %d CPUs; %s", practices, months, practices*months, runtime.NumCPU(), runtime.Version()))
	if _, err := os.Stat(filepath.Join(dir, "complete")); err != nil {
		if err := os.RemoveAll(dir); err != nil {
			b.Fatal(err)
		}
		st, err := objstore.NewDir(storeDir)
		if err != nil {
			b.Fatal(err)
		}
		load := loadavg()
		c0 := procstat.CPUSeconds(pid)
		s, err := g.Write(ctx, st)
		if err != nil {
			b.Fatal(err)
		}
		row("loadgen", fmt.Sprintf("%.1f s wall, %.1f s CPU, %d objects, %.0f MiB (load %s)", s.Elapsed.Seconds(), procstat.CPUSeconds(pid)-c0, s.Objects, float64(s.Bytes)/(1<<20), load))
		if err := os.WriteFile(filepath.Join(dir, "complete"), nil, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	var st objstore.Store
	st, err = objstore.NewDir(storeDir)
	if err != nil {
		b.Fatal(err)
	}
	var floorFiles func(workers int) (int, int64) = func(workers int) (int, int64) { return hashAll(b, storeDir, workers) }
	if os.Getenv("TRIBUTARY_SCALE_STORE") == "minio" {
		// The same federation, copied into a real MinIO server on loopback: every figure
		// below then goes through S3, the floor included (each object fetched and hashed).
		srv := miniotest.Start(b)
		s3 := srv.Store(b, miniotest.Bucket(b))
		load, start := loadavg(), time.Now()
		n, size := copyStore(b, st, s3, 8)
		row("copy into MinIO", fmt.Sprintf("%.1f s wall, %d objects, %.0f MiB (load %s)", time.Since(start).Seconds(), n, float64(size)/(1<<20), load))
		st = s3
		floorFiles = func(workers int) (int, int64) { return hashStore(b, s3, workers) }
	}
	// Start from the inputs alone: no outputs of earlier runs, no extra run.
	for _, prefix := range []string{combine.PracticeTablesPrefix, combine.CombinedPrefix} {
		deleteUnder(b, st, prefix)
	}
	extra := g.RunID(0, 1)
	for _, k := range []string{formats.SubmissionKey(loadgen.PracticeID(0), extra), formats.ManifestKey(loadgen.PracticeID(0), extra)} {
		if err := st.Delete(ctx, k); err != nil && !errors.Is(err, objstore.ErrNotFound) {
			b.Fatal(err)
		}
	}

	// The floor.
	load := loadavg()
	start, c0 := time.Now(), procstat.CPUSeconds(pid)
	files, bytes := floorFiles(2)
	floor := time.Since(start)
	row("floor: read and SHA-256 every byte, 2 workers", fmt.Sprintf("%.2f s wall, %.2f s CPU, %d files, %.0f MiB (load %s)", floor.Seconds(), procstat.CPUSeconds(pid)-c0, files, float64(bytes)/(1<<20), load))

	// The cold combine.
	pub := g.Coordinator().Public().(ed25519.PublicKey)
	cache := combine.NewCache()
	runtime.GC()
	debug.FreeOSMemory()
	procstat.ResetPeak(pid)
	load = loadavg()
	stopProfile := cpuProfile(b, os.Getenv("TRIBUTARY_SCALE_CPUPROFILE"))
	b.ResetTimer()
	start, c0 = time.Now(), procstat.CPUSeconds(pid)
	res, err := combine.Run(ctx, st, pub, combine.Options{Cache: cache})
	if err != nil {
		b.Fatal(err)
	}
	cold, coldCPU := time.Since(start), procstat.CPUSeconds(pid)-c0
	b.StopTimer()
	stopProfile()
	if rep := res.Report; rep.FilesCombined != practices || rep.MonthsCombined != practices*months || len(rep.Quarantined) != 0 {
		b.Fatalf("combined %d files (%d practice-months), want %d (%d); %d quarantined", rep.FilesCombined, rep.MonthsCombined, practices, practices*months, len(rep.Quarantined))
	}
	row("cold combine", fmt.Sprintf("%.2f s wall, %.2f s CPU, peak RSS %d MiB (load %s)", cold.Seconds(), coldCPU, procstat.PeakRSS(pid)>>20, load))
	row("cold combine / floor", fmt.Sprintf("%.2f× wall", cold.Seconds()/floor.Seconds()))
	b.ReportMetric(cold.Seconds(), "s/cold-combine")
	b.ReportMetric(coldCPU, "cpu-s/cold-combine")
	b.ReportMetric(float64(procstat.PeakRSS(pid)>>20), "combine-peak-RSS-MiB")
	b.ReportMetric(cold.Seconds()/floor.Seconds(), "combine/floor")

	// One practice's new run, then the re-combine with the cache the cold one filled.
	if err := g.WriteNewRun(ctx, st, 0, 1); err != nil {
		b.Fatal(err)
	}
	procstat.ResetPeak(pid)
	load = loadavg()
	start, c0 = time.Now(), procstat.CPUSeconds(pid)
	res, err = combine.Run(ctx, st, pub, combine.Options{Cache: cache})
	if err != nil {
		b.Fatal(err)
	}
	inc, incCPU := time.Since(start), procstat.CPUSeconds(pid)-c0
	if rep := res.Report; rep.FilesCombined != practices+1 || len(rep.Quarantined) != 0 {
		b.Fatalf("re-combine: %d files, want %d; %d quarantined", rep.FilesCombined, practices+1, len(rep.Quarantined))
	}
	row("incremental re-combine after one new run", fmt.Sprintf("%.2f s wall, %.2f s CPU, peak RSS %d MiB (%d files read, %d from the cache; load %s)",
		inc.Seconds(), incCPU, procstat.PeakRSS(pid)>>20, res.Report.FilesCombined-cache.Hits(), cache.Hits(), load))
	b.ReportMetric(inc.Seconds(), "s/re-combine")
	cache, res = nil, nil // drop the combine's memory before serving

	if os.Getenv("TRIBUTARY_SCALE_SERVE") == "off" {
		printRows(rows)
		return
	}
	// Serve what the re-combine published, answer cache off.
	runtime.GC()
	debug.FreeOSMemory()
	procstat.ResetPeak(pid)
	rss0 := procstat.RSS(pid)
	toks, err := OpenTokens(filepath.Join(b.TempDir(), "tokens.json"))
	if err != nil {
		b.Fatal(err)
	}
	lead, _, err := toks.Add("bench", RoleLead, "", time.Now())
	if err != nil {
		b.Fatal(err)
	}
	srv, err := New(Options{Store: st, Coordinator: pub, Tokens: toks, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	srv.responses = newRespCache(0, 0)
	start = time.Now()
	if err := srv.LoadCurrent(ctx); err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	rssLoaded := procstat.RSS(pid)
	row("serve: load the combined figures", fmt.Sprintf("%.2f s; RSS %d MiB before, %d MiB loaded", time.Since(start).Seconds(), rss0>>20, rssLoaded>>20))
	load = loadavg()
	p50, p99, n, rate := serveLoad(b, srv, lead, clients, total)
	row("serve: 8 clients, answer cache off", fmt.Sprintf("p50 %s, p99 %s over %d requests (%.0f/s); RSS %d MiB after, peak %d MiB (load %s)",
		p50, p99, n, rate, procstat.RSS(pid)>>20, procstat.PeakRSS(pid)>>20, load))
	b.ReportMetric(float64(p50.Microseconds())/1000, "serve-p50-ms")
	b.ReportMetric(float64(p99.Microseconds())/1000, "serve-p99-ms")
	b.ReportMetric(float64(procstat.RSS(pid)>>20), "serve-RSS-MiB")

	printRows(rows)
}

func printRows(rows [][2]string) {
	fmt.Printf("\nBenchmarkScale\n")
	for _, r := range rows {
		fmt.Printf("  %-45s %s\n", r[0], r[1])
	}
	fmt.Println()
}

// serveLoad sends the dashboard's requests from clients goroutines until total are done or a
// minute has passed, and returns the latency percentiles over all of them.
func serveLoad(b *testing.B, srv *Server, token string, clients, total int) (p50, p99 time.Duration, n int, perSecond float64) {
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	snap := srv.snap.Load()
	first, last := snap.months[0], snap.months[len(snap.months)-1]
	year := max(first, last-11)
	p1, p2 := snap.ids[len(snap.ids)/3], snap.ids[2*len(snap.ids)/3]
	paths := []string{
		fmt.Sprintf("/api/figures?from=%s&to=%s", first, last),
		fmt.Sprintf("/api/figures?from=%s&to=%s&sex=female&age_band=65-69,70-74,75-79,80-84,85-89,90%%2B", first, last),
		fmt.Sprintf("/api/figures?from=%s&to=%s&practice=%s,%s", first, last, p1, p2),
		fmt.Sprintf("/api/compare?measure=admissions_emergency&from=%s&to=%s", year, last),
		fmt.Sprintf("/api/completeness?from=%s&to=%s", year, last),
		fmt.Sprintf("/api/figures?measure=admissions&from=%s&to=%s&by=practice&format=csv", last, last),
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	var mu sync.Mutex
	var lat []time.Duration
	var next, failed atomic.Int64
	deadline := time.Now().Add(time.Minute)
	start := time.Now()
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= total || time.Now().After(deadline) {
					return
				}
				req, _ := http.NewRequest("GET", hs.URL+paths[i%len(paths)], nil)
				req.Header.Set("Authorization", "Bearer "+token)
				t0 := time.Now()
				resp, err := client.Do(req)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				d := time.Since(t0)
				if err != nil {
					failed.Add(1)
					continue
				}
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if failed.Load() > 0 {
		b.Fatalf("%d requests failed", failed.Load())
	}
	p50, p99, _ = percentiles(lat)
	return p50, p99, len(lat), float64(len(lat)) / time.Since(start).Seconds()
}

// hashAll reads and SHA-256-hashes every file under dir with workers goroutines, as
// `find dir -type f | xargs -P workers sha256sum` would.
// copyStore copies every object of from into to with workers at once.
func copyStore(b *testing.B, from, to objstore.Store, workers int) (files int, bytes int64) {
	ctx := context.Background()
	infos, err := from.List(ctx, "")
	if err != nil {
		b.Fatal(err)
	}
	// The inputs only: a combine's outputs left from an earlier run at this size stay behind.
	infos = slices.DeleteFunc(infos, func(in objstore.Info) bool {
		return strings.HasPrefix(in.Key, combine.PracticeTablesPrefix) || strings.HasPrefix(in.Key, combine.CombinedPrefix)
	})
	var size atomic.Int64
	err = ordered.Run(ctx, len(infos), workers, func(ctx context.Context, i int) ([]byte, error) {
		data, _, err := from.Get(ctx, infos[i].Key, infos[i].Size)
		if err != nil {
			return nil, err
		}
		if _, err := to.Put(ctx, infos[i].Key, data); err != nil {
			return nil, err
		}
		size.Add(int64(len(data)))
		return nil, nil
	}, func(int, []byte) error { return nil })
	if err != nil {
		b.Fatal(err)
	}
	return len(infos), size.Load()
}

// hashStore is the floor through a store: list, fetch and SHA-256 every object, workers at
// once.
func hashStore(b *testing.B, st objstore.Store, workers int) (files int, bytes int64) {
	ctx := context.Background()
	infos, err := st.List(ctx, "")
	if err != nil {
		b.Fatal(err)
	}
	var size atomic.Int64
	err = ordered.Run(ctx, len(infos), workers, func(ctx context.Context, i int) ([]byte, error) {
		data, _, err := st.Get(ctx, infos[i].Key, infos[i].Size)
		if err != nil {
			return nil, err
		}
		_ = sha256.Sum256(data)
		size.Add(int64(len(data)))
		return nil, nil
	}, func(int, []byte) error { return nil })
	if err != nil {
		b.Fatal(err)
	}
	return len(infos), size.Load()
}

func hashAll(b *testing.B, dir string, workers int) (files int, bytes int64) {
	paths := make(chan string, 1024)
	var n, size atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			buf := make([]byte, 1<<20)
			for p := range paths {
				f, err := os.Open(p)
				if err != nil {
					b.Error(err)
					continue
				}
				h := sha256.New()
				m, err := io.CopyBuffer(h, f, buf)
				f.Close()
				if err != nil {
					b.Error(err)
				}
				_ = h.Sum(nil)
				n.Add(1)
				size.Add(m)
			}
		})
	}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			paths <- p
		}
		return err
	})
	close(paths)
	wg.Wait()
	if err != nil {
		b.Fatal(err)
	}
	return int(n.Load()), size.Load()
}

func deleteUnder(b *testing.B, st objstore.Store, prefix string) {
	ctx := context.Background()
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

// loadavg is the machine's 1-minute load average, the other engineers' work included.
func loadavg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Fields(string(data))[0]
}

// cpuProfile starts a CPU profile into path (nothing when path is empty) and returns what
// stops it.
func cpuProfile(b *testing.B, path string) func() {
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			b.Error(err)
		}
	}
}
