package server

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tributary-health/tributary/internal/procstat"
	"github.com/tributary-health/tributary/internal/testenv"

	"github.com/tributary-health/tributary/coordinator/internal/fedgen"
	"github.com/tributary-health/tributary/internal/objstore"
)

// BenchmarkServe loads a generated federation (by default 1,000 practices × 60 months, the
// store the combine benchmark keeps in the temp directory, generated on first use), then
// sends the dashboard's requests from concurrent clients over loopback and prints the
// latency percentiles of each kind of request and the process's resident memory:
//
//	go test -run '^$' -bench BenchmarkServe -benchtime 1x ./coordinator/server/
//
// TRIBUTARY_BENCH_CACHE=off switches the server's answer cache off, so every request is
// computed afresh; TRIBUTARY_BENCH_LOAD_ONLY=1 serves the store's last combine instead of
// combining (latency only). TRIBUTARY_BENCH_PRACTICES and TRIBUTARY_BENCH_MONTHS change the size,
// TRIBUTARY_BENCH_CLIENTS (default 8) the concurrency and TRIBUTARY_BENCH_REQUESTS (default
// 2,000) the number of requests; the load stops after a minute whatever the count. The
// server and the load generator share the process, so the memory figures include both (the
// generator's share is small).
func BenchmarkServe(b *testing.B) {
	practices, months := testenv.EnvInt(b, "TRIBUTARY_BENCH_PRACTICES", 1000), testenv.EnvInt(b, "TRIBUTARY_BENCH_MONTHS", 60)
	clients, total := testenv.EnvInt(b, "TRIBUTARY_BENCH_CLIENTS", 8), testenv.EnvInt(b, "TRIBUTARY_BENCH_REQUESTS", 2000)
	params := fedgen.Params{Practices: practices, Months: months, Seed: 2024}
	fed := fedgen.New(params)
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("tributary-bench-combine-v%d-p%d-m%d-s%d", fedgen.Version, params.Practices, params.Months, params.Seed))
	ctx := context.Background()
	if _, err := os.Stat(filepath.Join(dir, "complete")); err != nil {
		st, err := objstore.NewDir(filepath.Join(dir, "store"))
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if err := fed.Write(ctx, st, runtime.GOMAXPROCS(0)); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "complete"), nil, 0o644); err != nil {
			b.Fatal(err)
		}
		b.Logf("generated %d practices × %d months in %s", practices, months, time.Since(start).Round(time.Second))
	}
	st, err := objstore.NewDir(filepath.Join(dir, "store"))
	if err != nil {
		b.Fatal(err)
	}
	toks, err := OpenTokens(filepath.Join(b.TempDir(), "tokens.json"))
	if err != nil {
		b.Fatal(err)
	}
	lead, _, err := toks.Add("bench", RoleLead, "", time.Now())
	if err != nil {
		b.Fatal(err)
	}
	srv, err := New(Options{Store: st, Coordinator: fed.Coordinator.Public().(ed25519.PublicKey), Tokens: toks, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	if os.Getenv("TRIBUTARY_BENCH_CACHE") == "off" {
		srv.responses = newRespCache(0, 0) // every answer computed afresh
	}
	start := time.Now()
	if os.Getenv("TRIBUTARY_BENCH_LOAD_ONLY") != "" {
		// Latency only: serve what the last combine wrote, without combining.
		if err := srv.LoadCurrent(ctx); err != nil {
			b.Fatal(err)
		}
		b.Logf("loaded the last combine in %s", time.Since(start).Round(time.Millisecond))
	} else {
		combineTwice(b, srv)
	}
	runtime.GC()
	rssIdle := procstat.RSS(os.Getpid())

	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	snap := srv.snap.Load()
	first, last := snap.months[0], snap.months[len(snap.months)-1]
	year := max(first, last-11)
	p1, p2 := snap.ids[len(snap.ids)/3], snap.ids[2*len(snap.ids)/3]
	kinds := []struct{ name, path string }{
		{"trends: federation, every measure, all months", fmt.Sprintf("/api/figures?from=%s&to=%s", first, last)},
		{"trends: filtered (women 65+)", fmt.Sprintf("/api/figures?from=%s&to=%s&sex=female&age_band=65-69,70-74,75-79,80-84,85-89,90%%2B", first, last)},
		{"trends: two practice lines", fmt.Sprintf("/api/figures?from=%s&to=%s&practice=%s,%s", first, last, p1, p2)},
		{"funnel: every practice, 12 months", fmt.Sprintf("/api/compare?measure=admissions_emergency&from=%s&to=%s", year, last)},
		{"completeness: every practice, 12 months", fmt.Sprintf("/api/completeness?from=%s&to=%s", year, last)},
		{"by practice: one measure and month, CSV", fmt.Sprintf("/api/figures?measure=admissions&from=%s&to=%s&by=practice&format=csv", last, last)},
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	lat := make([][]time.Duration, len(kinds))
	var mu sync.Mutex
	var next atomic.Int64
	var failed atomic.Int64
	deadline := time.Now().Add(time.Minute)
	b.ResetTimer()
	loadStart := time.Now()
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= total || time.Now().After(deadline) {
					return
				}
				k := i % len(kinds)
				req, _ := http.NewRequest("GET", hs.URL+kinds[k].path, nil)
				req.Header.Set("Authorization", "Bearer "+lead)
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
				lat[k] = append(lat[k], d)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(loadStart)
	b.StopTimer()
	rss, hwm := procstat.RSS(os.Getpid()), procstat.PeakRSS(os.Getpid())
	if failed.Load() > 0 {
		b.Fatalf("%d requests failed", failed.Load())
	}
	var all []time.Duration
	cache := "on"
	if srv.responses.maxBytes == 0 {
		cache = "off"
	}
	fmt.Printf("\n%d practices × %d months; %d clients on loopback; answer cache %s; %s\n", len(snap.ids), len(snap.months), clients, cache, runtime.Version())
	fmt.Printf("%-45s %8s %10s %10s %10s\n", "request", "count", "p50", "p99", "max")
	for k, kd := range kinds {
		all = append(all, lat[k]...)
		p50, p99, mx := percentiles(lat[k])
		fmt.Printf("%-45s %8d %10s %10s %10s\n", kd.name, len(lat[k]), p50, p99, mx)
	}
	p50, p99, mx := percentiles(all)
	fmt.Printf("%-45s %8d %10s %10s %10s\n", "all", len(all), p50, p99, mx)
	fmt.Printf("throughput %.0f requests/s; RSS idle after load %d MiB, after the load %d MiB, peak %d MiB\n\n",
		float64(len(all))/elapsed.Seconds(), rssIdle>>20, rss>>20, hwm>>20)
	b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(rss>>20), "RSS-MiB")
	debug.FreeOSMemory()
}

// combineTwice combines from scratch, then again as if a submission had arrived, with every
// file from the cache, and logs how long each took.
func combineTwice(b *testing.B, srv *Server) {
	ctx := context.Background()
	start := time.Now()
	if err := srv.Refresh(ctx); err != nil {
		b.Fatal(err)
	}
	st0 := srv.Status()
	b.Logf("first combine and load: %s (%d files read and verified)", time.Since(start).Round(time.Millisecond), st0.FilesRead)
	start = time.Now()
	srv.fp = ""
	if err := srv.Refresh(ctx); err != nil {
		b.Fatal(err)
	}
	st1 := srv.Status()
	b.Logf("re-combine with nothing new: %s (%d files read, %d from the cache)", time.Since(start).Round(time.Millisecond), st1.FilesRead, st1.FilesCached)
}

func percentiles(d []time.Duration) (p50, p99, mx time.Duration) {
	if len(d) == 0 {
		return
	}
	s := slices.Clone(d)
	slices.Sort(s)
	at := func(q float64) time.Duration {
		return s[min(len(s)-1, int(q*float64(len(s))))].Round(10 * time.Microsecond)
	}
	return at(0.50), at(0.99), s[len(s)-1].Round(10 * time.Microsecond)
}
