package holder

import (
	"context"
	"crypto/ed25519"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tributary-health/tributary/coordinator/combine"
	"github.com/tributary-health/tributary/coordinator/internal/fedgen"
	"github.com/tributary-health/tributary/coordinator/secure"
	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/objstore"
	"github.com/tributary-health/tributary/secagg"
)

var (
	benchPractices = flag.Int("secagg.practices", 1000, "practices in BenchmarkSecureAggregation")
	benchMonths    = flag.Int("secagg.months", 12, "months of each practice's run in BenchmarkSecureAggregation")
)

// BenchmarkSecureAggregation is the cost of secure aggregation for a federation of
// -secagg.practices practices × -secagg.months months (default 1,000 × 12), against plain
// combine of the same runs in the same process:
//
//	go test ./coordinator/holder -run '^$' -bench SecureAggregation -benchtime 1x -timeout 60m
//
// It prints the agent's sharding time and bytes per practice-month (each practice's months
// sharded and encrypted in one goroutine, as its agent does), then both holders' preparation,
// verification and aggregation, and publication times for one round over every report
// (both holders in this process, on the machine's CPUs, through a local directory store),
// and plain combine's time over the same store.
func BenchmarkSecureAggregation(b *testing.B) {
	n, months := *benchPractices, *benchMonths
	ctx := context.Background()
	for range b.N {
		st, err := objstore.NewDir(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		fed := fedgen.New(fedgen.Params{Practices: n, Months: months, Start: formats.MonthFor(2024, 1), Seed: 3, Realistic: true})
		l, _ := secagg.GenerateHolder("federation", secagg.RoleLeader)
		h, _ := secagg.GenerateHolder("icb", secagg.RoleHelper)
		to := [2]secagg.Recipient{l.Public().Recipient(), h.Public().Recipient()}
		reg, err := formats.SignRegistry(fed.Registry(), fed.Coordinator)
		if err != nil {
			b.Fatal(err)
		}
		hf, err := secure.SignHolders(l.Public(), h.Public(), fed.Coordinator, time.Now())
		if err != nil {
			b.Fatal(err)
		}
		for key, data := range map[string][]byte{formats.RegistryKey: reg, secure.HoldersKey: hf} {
			if _, err := st.Put(ctx, key, data); err != nil {
				b.Fatal(err)
			}
		}

		// The agents: each practice's months sharded in one goroutine, practices in parallel.
		var shardNanos, leaderBytes, helperBytes atomic.Int64
		jobs := make(chan int)
		errs := make(chan error, runtime.GOMAXPROCS(0))
		var wg sync.WaitGroup
		start, cpu0 := time.Now(), cpuTime()
		for range runtime.GOMAXPROCS(0) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range jobs {
					t0 := time.Now()
					shares, err := fed.SecureShares(i, to)
					shardNanos.Add(int64(time.Since(t0)))
					if err == nil {
						leaderBytes.Add(int64(len(shares[l.ID])))
						helperBytes.Add(int64(len(shares[h.ID])))
						err = fed.WriteSecureRun(ctx, st, i, to, shares)
					}
					if err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		for i := range n {
			jobs <- i
		}
		close(jobs)
		wg.Wait()
		close(errs)
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
		agents, agentsCPU := time.Since(start), cpuTime()-cpu0
		pm := float64(n * months)

		// The holders: one round over every report.
		dir := b.TempDir()
		mk := func(k *secagg.HolderKey, peer *secagg.HolderKey) *Holder {
			state, err := OpenState(filepath.Join(dir, k.ID), k.ID)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { state.Close() })
			return &Holder{Key: k, Peer: peer.Public(), Coordinator: fed.Coordinator.Public().(ed25519.PublicKey), Store: st, State: state,
				Poll: 50 * time.Millisecond, Wait: time.Hour, Workers: runtime.GOMAXPROCS(0), Log: slog.New(slog.DiscardHandler)}
		}
		leader, helper := mk(l, h), mk(h, l)
		round := formats.NewRunID(time.Now())
		var help *Result
		var herr error
		start, cpu0 = time.Now(), cpuTime()
		wg.Add(1)
		go func() {
			defer wg.Done()
			help, herr = helper.Help(ctx, HelpOptions{Round: round})
		}()
		lead, lerr := leader.Lead(ctx, LeadOptions{Round: round})
		wg.Wait()
		holders, holdersCPU := time.Since(start), cpuTime()-cpu0
		if lerr != nil || herr != nil {
			b.Fatalf("round: %v; %v", lerr, herr)
		}
		if lead.Reports != n*months || len(lead.Rejected) != 0 || len(lead.Months) != months {
			b.Fatalf("the round prepared %d reports of %d, rejected %d, published %d months", lead.Reports, n*months, len(lead.Rejected), len(lead.Months))
		}

		// Plain combine of the same runs.
		start, cpu0 = time.Now(), cpuTime()
		if _, err := combine.Run(ctx, st, fed.Coordinator.Public().(ed25519.PublicKey), combine.Options{Policy: formats.DefaultPolicy}); err != nil {
			b.Fatal(err)
		}
		plain, plainCPU := time.Since(start), cpuTime()-cpu0

		shard := time.Duration(float64(shardNanos.Load()) / pm)
		shardCPU := time.Duration(float64(agentsCPU) / pm)
		w := os.Stdout
		fmt.Fprintf(w, "\nsecure aggregation, %d practices × %d months (%d reports), %d CPUs; CPU is this process's user+system time\n", n, months, n*months, runtime.GOMAXPROCS(0))
		fmt.Fprintf(w, "agent, per practice-month:  sharding and encryption %s CPU (%s wall); shares %.0f bytes (leader %.0f, helper %.0f)\n",
			shardCPU.Round(10*time.Microsecond), shard.Round(10*time.Microsecond), float64(leaderBytes.Load()+helperBytes.Load())/pm, float64(leaderBytes.Load())/pm, float64(helperBytes.Load())/pm)
		fmt.Fprintf(w, "agent, a practice's %d months: %s CPU, %.1f MB of shares\n", months, (shardCPU * time.Duration(months)).Round(time.Millisecond), float64(leaderBytes.Load()+helperBytes.Load())/float64(n)/1e6)
		fmt.Fprintf(w, "leader:  preparation %s, verification and aggregation %s, combination, disclosure control and publication %s (wall)\n",
			lead.Prepare.Round(time.Millisecond), lead.Aggregate.Round(time.Millisecond), lead.Publish.Round(time.Millisecond))
		fmt.Fprintf(w, "helper:  preparation %s, verification and aggregation %s (wall)\n", help.Prepare.Round(time.Millisecond), help.Aggregate.Round(time.Millisecond))
		fmt.Fprintf(w, "round, both holders in one process: %s CPU (%s wall); each holder about half\n", holdersCPU.Round(time.Millisecond), holders.Round(time.Millisecond))
		fmt.Fprintf(w, "plain combine of the same runs:     %s CPU (%s wall): the round costs %.1f× its CPU\n", plainCPU.Round(time.Millisecond), plain.Round(time.Millisecond), float64(holdersCPU)/float64(plainCPU))
		_ = agents
		b.ReportMetric(float64(shardCPU.Microseconds())/1000, "shard-cpu-ms/practice-month")
		b.ReportMetric(float64(leaderBytes.Load()+helperBytes.Load())/pm, "bytes/practice-month")
		b.ReportMetric(holdersCPU.Seconds(), "round-cpu-s")
		b.ReportMetric(plainCPU.Seconds(), "combine-cpu-s")
	}
}
