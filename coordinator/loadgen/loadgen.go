// Package loadgen writes a synthetic federation of any size into a store, for capacity
// planning (the coordinator's `loadgen` command, like pgbench's initialisation) and for the
// scale benchmarks: a signed registry and one signed run per practice whose values went
// through the agent's own disclosure control (agent/disclosure.Apply: every value through
// the federation's policy on its own), so the store looks, object for object and value for
// value, like one real agents filled. The agent's disclosure audit, which may also withhold
// margins, is not run: on a generated large practice's year it did not finish in ten
// minutes, and what it withholds changes statuses, not the cost of combining.
//
// Counts are drawn, not extracted: each practice has a list of 2,000 to 20,000 patients with
// England's age structure and activity at England's rates per patient-year
// (synthgen.EnglandRates, scaled by age), each practice at its own level (0.7 to 1.5 times
// the average). Everything is a pure function of Options.Seed, so the same options give the
// same keys and byte-identical objects.
package loadgen

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tributary-health/tributary/agent/disclosure"
	"github.com/tributary-health/tributary/coordinator/registry"
	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/objstore"
	"github.com/tributary-health/tributary/internal/synthgen"
)

// Key files, laid out as tributary-demo lays them out under its --workdir.
const (
	CoordinatorKeyFile = "coordinator/coordinator.key"
	CoordinatorPubFile = "coordinator/coordinator.pub"
	practiceKeyFile    = "practice.key" // agent.PrivateKeyFile; the coordinator links no agent
	practicePubFile    = "practice.pub" // agent.PublicKeyFile
)

// Extractor is the extractor name the generated runs record.
const Extractor = "loadgen@1"

// Options size the federation.
type Options struct {
	Practices int
	Months    int           // months of every practice's run, ending with Last
	Last      formats.Month // the last month; zero means 2025-12
	Seed      uint64
	Policy    formats.Policy // zero means formats.DefaultPolicy
	// Workdir receives the keys: Workdir/coordinator/coordinator.key and .pub, and each
	// practice's Workdir/agents/<id>/keys/practice.key and .pub. Empty writes none.
	Workdir string
	Workers int // practices generated, signed and written at once; zero means GOMAXPROCS
	// Progress, if set, is called after each practice's run is stored with the number done.
	Progress func(done int)
}

// Generator is a federation's keys and parameters; nothing is written until Write.
type Generator struct {
	o           Options
	first       formats.Month
	coordinator ed25519.PrivateKey
}

// New checks the options and derives the federation's keys.
func New(o Options) (*Generator, error) {
	if o.Practices < 1 || o.Practices > 99999 {
		return nil, fmt.Errorf("loadgen: practices must be 1 to 99,999, not %d", o.Practices)
	}
	if o.Months < 1 || o.Months > 1200 {
		return nil, fmt.Errorf("loadgen: months must be 1 to 1,200, not %d", o.Months)
	}
	if o.Last == 0 {
		o.Last = formats.MonthFor(2025, time.December)
	}
	if o.Policy.Name == "" {
		o.Policy = formats.DefaultPolicy
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	return &Generator{o: o, first: o.Last - formats.Month(o.Months) + 1, coordinator: key(o.Seed, 0xc0)}, nil
}

// Coordinator is the federation's coordinator key, which signs the registry.
func (g *Generator) Coordinator() ed25519.PrivateKey { return g.coordinator }

// Span is the months every practice's first run covers.
func (g *Generator) Span() (from, to formats.Month) { return g.first, g.o.Last }

// PracticeID is practice i's id.
func PracticeID(i int) string { return fmt.Sprintf("P%05d", i) }

// PracticeKey is practice i's signing key.
func (g *Generator) PracticeKey(i int) ed25519.PrivateKey { return key(g.o.Seed, uint64(i)+1) }

// Size is practice i's list size at the first month: 2,000 to 20,000 patients.
func (g *Generator) Size(i int) int { return 2000 + int(mix(g.o.Seed, uint64(i), 0x512e)%18001) }

// level is practice i's activity relative to England's: 0.7 to 1.5.
func (g *Generator) level(i int) float64 {
	return 0.7 + 0.8*float64(mix(g.o.Seed, uint64(i), 0x1e7e1)%1001)/1000
}

// Stats say what Write wrote.
type Stats struct {
	Practices, Months int
	Objects           int   // registry, run files and manifests
	Bytes             int64 // their total size
	Protected         int   // published values the policy suppressed, over all runs
	Elapsed           time.Duration
}

// Write stores the signed registry and every practice's first run, and writes the keys under
// Options.Workdir. A store that already holds a registry signed by another coordinator key is
// refused: loadgen fills an empty store, or re-fills its own.
func (g *Generator) Write(ctx context.Context, st objstore.Store) (Stats, error) {
	start := time.Now()
	s := Stats{Practices: g.o.Practices, Months: g.o.Months}
	pub := g.coordinator.Public().(ed25519.PublicKey)
	if _, err := registry.Load(ctx, st, pub); err != nil && !errors.Is(err, registry.ErrNoRegistry) {
		return s, fmt.Errorf("loadgen: the store already holds another federation's registry (use an empty store): %w", err)
	}
	if err := g.writeCoordinatorKey(); err != nil {
		return s, err
	}
	reg := &formats.Registry{FormatVersion: formats.RegistryVersion, Updated: created}
	for i := range g.o.Practices {
		e, err := formats.NewRegistryEntry(PracticeID(i), "Practice "+PracticeID(i), g.PracticeKey(i).Public().(ed25519.PublicKey), created)
		if err != nil {
			return s, err
		}
		reg.Practices = append(reg.Practices, e)
	}
	data, err := formats.SignRegistry(reg, g.coordinator)
	if err != nil {
		return s, err
	}
	if _, err := st.Put(ctx, formats.RegistryKey, data); err != nil {
		return s, err
	}
	s.Objects, s.Bytes = 1, int64(len(data))

	var objects, withheld, done atomic.Int64
	var size atomic.Int64
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan int)
	var once sync.Once
	var firstErr error
	var wg sync.WaitGroup
	for range g.o.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				r, err := g.writePractice(ctx, st, i)
				if err != nil {
					once.Do(func() { firstErr = err; cancel() })
					continue
				}
				objects.Add(2)
				size.Add(r.bytes)
				withheld.Add(int64(r.protected))
				n := done.Add(1)
				if g.o.Progress != nil {
					g.o.Progress(int(n))
				}
			}
		}()
	}
feed:
	for i := range g.o.Practices {
		select {
		case jobs <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	s.Objects += int(objects.Load())
	s.Bytes += size.Load()
	s.Protected = int(withheld.Load())
	s.Elapsed = time.Since(start)
	return s, firstErr
}

// created is when every first run was made; a later run n is made n hours after.
var created = time.Date(2026, 1, 5, 2, 0, 0, 0, time.UTC)

type written struct {
	bytes     int64
	protected int
}

func (g *Generator) writePractice(ctx context.Context, st objstore.Store, i int) (written, error) {
	if err := g.writePracticeKeys(i); err != nil {
		return written{}, err
	}
	return g.writeRun(ctx, st, i, 0)
}

// writeRun stores practice i's run number n: n = 0 is the first run, over all the months;
// each later n is a new run over the last twelve months (or all, if fewer), made n hours
// after the first, whose counts differ as a re-extraction's would (late-coded activity).
// The run's file goes first and its signed manifest last, as an agent commits a run.
func (g *Generator) writeRun(ctx context.Context, st objstore.Store, i, n int) (written, error) {
	from, to := g.first, g.o.Last
	if n > 0 {
		from = max(from, to-11)
	}
	t := g.Truth(i, n, from, to)
	pub := disclosure.Apply(t, g.o.Policy)
	when := created.Add(time.Duration(n) * time.Hour)
	id, runID := PracticeID(i), g.RunID(i, n)
	sub := &formats.Submission{Practice: id, RunID: runID, From: from, To: to, Extractors: []string{Extractor}, Policy: g.o.Policy.Name,
		Cells: make([]formats.Cell, 0, len(pub.Values))}
	for pi, p := range pub.Periods {
		for mi, measure := range t.Measures {
			for shape := range formats.NumShapes {
				band, sex := formats.ShapeLabels(shape)
				sub.Cells = append(sub.Cells, formats.Cell{Period: p, Measure: measure, AgeBand: band, Sex: sex, Protected: pub.Value(mi, pi, shape)})
			}
		}
	}
	data, err := formats.MarshalSubmission(sub)
	if err != nil {
		return written{}, err
	}
	m := &formats.Manifest{FormatVersion: formats.FormatVersion, Practice: id, RunID: runID, Created: when,
		Extractors: sub.Extractors, Policy: sub.Policy, From: from.String(), To: to.String(),
		Files: []formats.FileEntry{formats.Entry(id, runID, data)}}
	env, err := formats.SignManifest(m, g.PracticeKey(i))
	if err != nil {
		return written{}, err
	}
	if _, err := st.Put(ctx, formats.SubmissionKey(id, runID), data); err != nil {
		return written{}, err
	}
	if _, err := st.Put(ctx, m.Key(), env); err != nil {
		return written{}, err
	}
	return written{bytes: int64(len(data) + len(env)), protected: pub.Stats.Protected}, nil
}

// RunID is the id of practice i's run number n (see WriteNewRun).
func (g *Generator) RunID(i, n int) string {
	when := created.Add(time.Duration(n) * time.Hour)
	return fmt.Sprintf("%sZ-%08x", when.Format("20060102T150405"), uint32(mix(g.o.Seed, uint64(i), uint64(n), 7)))
}

// WriteNewRun stores a new run of practice i (numbered n, from 1), as the agent's next
// scheduled run would: for the incremental re-combine.
func (g *Generator) WriteNewRun(ctx context.Context, st objstore.Store, i, n int) error {
	if n < 1 {
		return fmt.Errorf("loadgen: a new run is numbered from 1, not %d", n)
	}
	_, err := g.writeRun(ctx, st, i, n)
	return err
}

// measures are the nine catalogue measures, all supplied.
var measures = formats.Measures

// pyramid is the share of a list in each age band (England, ONS mid-2021 estimates, rounded).
var pyramid = [formats.NumBands]float64{5.4, 6.0, 6.0, 5.6, 6.0, 6.6, 7.0, 6.8, 6.4, 6.4, 6.9, 6.8, 5.9, 5.1, 5.0, 3.6, 2.4, 1.5, 0.8}

// hospitalAge scales hospital use by age band: infants and the old use more.
var hospitalAge = [formats.NumBands]float64{1.3, 0.5, 0.45, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 1.0, 1.1, 1.3, 1.6, 2.0, 2.6, 3.2, 3.8, 4.2}

// Mean lengths of stay behind bed days: NHS Digital HES 2022-23, about 6 days for an emergency
// admission and 3 for an elective one that is not a day case.
const emergencyStay, electiveStay = 6.0, 3.0

// yearly is each measure's mean per patient-year over a list with England's age structure.
func yearly() map[string]float64 {
	r := synthgen.EnglandRates
	emergency := r.Inpatient * r.EmergencyAdmissionShare
	elective := r.Inpatient - emergency
	return map[string]float64{
		formats.Consultations:         r.Ambulatory + r.Wellness + r.Virtual + r.UrgentCare,
		formats.OutpatientAttendances: r.Outpatient,
		formats.AEAttendances:         r.Emergency,
		formats.AdmissionsEmergency:   emergency,
		formats.AdmissionsElective:    elective,
		formats.BedDays:               emergency*emergencyStay + elective*(1-r.DayCaseShare)*electiveStay,
	}
}

// ageFactor is each band's use relative to the list's mean, so that a list with England's
// structure meets the yearly rates on average.
var ageFactor = func() (f [2][formats.NumBands]float64) {
	for k := range 2 {
		var mean float64
		for b := range formats.NumBands {
			f[k][b] = hospitalAge[b]
			if k == 0 { // primary care varies less with age
				f[k][b] = 0.6 + 0.4*hospitalAge[b]
			}
			mean += f[k][b] * pyramid[b] / 100
		}
		for b := range f[k] {
			f[k][b] /= mean
		}
	}
	return f
}()

var sexShare = [formats.NumSexes]float64{0.505, 0.49, 0.005}

// Truth is practice i's true counts in run n over from..to. Emergency and elective admissions
// add up to admissions, and distinct patients admitted in an emergency are at most the
// emergency admissions, as in real data.
func (g *Generator) Truth(i, n int, from, to formats.Month) *disclosure.Table {
	t := disclosure.NewTable(from, to, measures)
	rates := yearly()
	level := g.level(i)
	size := float64(g.Size(i))
	mi := map[string]int{}
	for k, m := range measures {
		mi[m] = k
	}
	for month := from; month <= to; month++ {
		// Months are drawn from their own stream, so a later run's month differs only by
		// its late-coded extra.
		h := mix(g.o.Seed, uint64(i), uint64(month))
		r := rand.New(rand.NewPCG(h, h^0x9e3779b97f4a7c15))
		growth := 1 + 0.0008*float64(month-g.first) // lists grow about 1% a year
		for b := range formats.NumBands {
			for x := range formats.NumSexes {
				fine := formats.FineShape(b, x)
				pop := size * growth * pyramid[b] / 100 * sexShare[x]
				set := func(m string, v int64) { t.Set(mi[m], month, fine, v) }
				set(formats.RegisteredPatients, int64(pop+0.5))
				draw := func(m string, k int) int64 {
					return poisson(r, pop*rates[m]/12*ageFactor[k][b]*level)
				}
				set(formats.Consultations, draw(formats.Consultations, 0))
				set(formats.OutpatientAttendances, draw(formats.OutpatientAttendances, 1))
				set(formats.AEAttendances, draw(formats.AEAttendances, 1))
				em, el := draw(formats.AdmissionsEmergency, 1), draw(formats.AdmissionsElective, 1)
				if n > 0 && month > to-3 { // a re-run finds late-coded admissions in its last quarter
					em += poisson(r, 0.05*float64(em))
				}
				set(formats.AdmissionsEmergency, em)
				set(formats.AdmissionsElective, el)
				set(formats.Admissions, em+el)
				set(formats.BedDays, draw(formats.BedDays, 1))
				var pts int64 // about one emergency admission in ten is a patient's second that month
				for range em {
					if r.Float64() < 0.9 {
						pts++
					}
				}
				set(formats.PatientsAdmittedEmergency, max(pts, min(em, 1)))
			}
		}
	}
	return t
}

// poisson draws a Poisson count of mean lambda (by its normal approximation above 40).
func poisson(r *rand.Rand, lambda float64) int64 {
	if lambda <= 0 {
		return 0
	}
	if lambda > 40 {
		return max(0, int64(lambda+math.Sqrt(lambda)*r.NormFloat64()+0.5))
	}
	l, k, p := math.Exp(-lambda), int64(0), 1.0
	for {
		p *= r.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

// writeCoordinatorKey writes the coordinator's key pair under Workdir, refusing to replace a
// different key already there.
func (g *Generator) writeCoordinatorKey() error {
	if g.o.Workdir == "" {
		return nil
	}
	priv, err := formats.MarshalPrivateKey(g.coordinator)
	if err != nil {
		return err
	}
	pub, err := formats.MarshalPublicKey(g.coordinator.Public().(ed25519.PublicKey))
	if err != nil {
		return err
	}
	path := filepath.Join(g.o.Workdir, filepath.FromSlash(CoordinatorKeyFile))
	if old, err := os.ReadFile(path); err == nil && !bytes.Equal(old, priv) {
		return fmt.Errorf("loadgen: %s already holds another coordinator key; give a fresh --workdir (or the --seed that made it)", path)
	}
	return writeKeyPair(filepath.Dir(path), "coordinator.key", priv, "coordinator.pub", pub)
}

func (g *Generator) writePracticeKeys(i int) error {
	if g.o.Workdir == "" {
		return nil
	}
	k := g.PracticeKey(i)
	priv, err := formats.MarshalPrivateKey(k)
	if err != nil {
		return err
	}
	pub, err := formats.MarshalPublicKey(k.Public().(ed25519.PublicKey))
	if err != nil {
		return err
	}
	return writeKeyPair(filepath.Join(g.o.Workdir, "agents", PracticeID(i), "keys"), practiceKeyFile, priv, practicePubFile, pub)
}

func writeKeyPair(dir, privName string, priv []byte, pubName string, pub []byte) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, privName), priv, 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, pubName), pub, 0o644)
}

func key(seed, n uint64) ed25519.PrivateKey {
	var s [ed25519.SeedSize]byte
	for i := range 4 {
		binary.LittleEndian.PutUint64(s[i*8:], mix(seed, n, uint64(i), 0x10ad))
	}
	return ed25519.NewKeyFromSeed(s[:])
}

// mix is splitmix64 over its arguments: a cheap, well-spread pure function.
func mix(xs ...uint64) uint64 {
	var h uint64 = 0x9e3779b97f4a7c15
	for _, x := range xs {
		h ^= x + 0x9e3779b97f4a7c15 + (h << 6) + (h >> 2)
		z := h
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		h = z ^ (z >> 31)
	}
	return h
}
