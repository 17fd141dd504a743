// Package fedgen generates a synthetic federation for tests and benchmarks: practices with
// deterministic keys, a signed registry, and one signed run per practice whose true counts
// are a pure function of the parameters, so a test can recompute the truth it must bound.
package fedgen

import (
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/objstore"
)

// Version changes whenever the generator's output does, so caches of generated stores can
// be keyed by it.
const Version = 2

// Params shape a federation. The same Params always give the same keys, counts and bytes.
type Params struct {
	Practices int
	Months    int
	Start     formats.Month  // first month; zero means 2020-01
	Seed      uint64         // varies keys and counts
	Policy    formats.Policy // zero means formats.DefaultPolicy
	// Realistic draws practices of 2,000 to 12,000 patients with an English age structure
	// and each measure at English rates by age (Poisson), each practice with its own level
	// (0.7 to 1.5 times the average), so figures and comparisons look like a real
	// federation's. Otherwise counts are uniform draws that exercise every status.
	Realistic bool
}

// Federation is a generated federation.
type Federation struct {
	Params
	Coordinator ed25519.PrivateKey
	Practices   []Practice
}

// Practice is one generated practice.
type Practice struct {
	ID      string
	Key     ed25519.PrivateKey
	RunID   string
	Created time.Time
}

// New makes the federation's keys and ids; nothing is written.
func New(p Params) *Federation {
	if p.Start == 0 {
		p.Start = formats.MonthFor(2020, time.January)
	}
	if p.Policy.Name == "" {
		p.Policy = formats.DefaultPolicy
	}
	f := &Federation{Params: p, Coordinator: key(p.Seed, 0xc0)}
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for i := range p.Practices {
		f.Practices = append(f.Practices, Practice{
			ID:      fmt.Sprintf("P%05d", i),
			Key:     key(p.Seed, uint64(i)+1),
			RunID:   fmt.Sprintf("%sZ-%08x", created.Format("20060102T150405"), uint32(mix(p.Seed, uint64(i), 7))),
			Created: created,
		})
	}
	return f
}

func key(seed, n uint64) ed25519.PrivateKey {
	var s [ed25519.SeedSize]byte
	for i := 0; i < 4; i++ {
		binary.LittleEndian.PutUint64(s[i*8:], mix(seed, n, uint64(i)))
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

// maxima bound each measure's true count per cell; small maxima exercise suppression.
var maxima = map[string]uint64{
	formats.RegisteredPatients:        400,
	formats.Consultations:             220,
	formats.OutpatientAttendances:     60,
	formats.AEAttendances:             25,
	formats.Admissions:                16,
	formats.AdmissionsEmergency:       10,
	formats.AdmissionsElective:        8,
	formats.BedDays:                   45,
	formats.PatientsAdmittedEmergency: 9,
}

// Supplies reports whether practice i supplies measure at all: every seventh practice's
// source has no bed days, which must be absent, not zero.
func (f *Federation) Supplies(i int, measure string) bool {
	return !(measure == formats.BedDays && i%7 == 3)
}

// True is practice i's true count for one cell.
func (f *Federation) True(i int, month formats.Month, measure string, band, sex int) int64 {
	if f.Realistic {
		return f.realistic(i, month, measure, band, sex)
	}
	h := mix(f.Seed, uint64(i), uint64(month), uint64(len(measure))*131+uint64(measure[0]), uint64(band), uint64(sex))
	v := h % (maxima[measure] + 1)
	if h>>60 == 0 { // one cell in sixteen is empty
		return 0
	}
	return int64(v)
}

// Submission is practice i's published run over every month of the federation: each
// period, measure and shape through the policy (without the agent's disclosure audit, which
// a generated federation does not need).
func (f *Federation) Submission(i int) *formats.Submission {
	p := f.Practices[i]
	var measures []string
	for _, m := range formats.Measures {
		if f.Supplies(i, m) {
			measures = append(measures, m)
		}
	}
	return Publish(f.Policy, p.ID, p.RunID, f.Start, f.Start+formats.Month(f.Months)-1, measures,
		func(month formats.Month, measure string, b, x int) int64 { return f.True(i, month, measure, b, x) })
}

// Publish builds the complete submission of a run over from..to: for every period of the
// run, every measure and every shape, the sum of truth over its months and cells through
// pol.
func Publish(pol formats.Policy, practice, runID string, from, to formats.Month, measures []string, truth func(month formats.Month, measure string, band, sex int) int64) *formats.Submission {
	s := &formats.Submission{Practice: practice, RunID: runID, From: from, To: to, Policy: pol.Name, Extractors: []string{"fedgen@1"}}
	for _, per := range formats.PeriodsOf(from, to) {
		for _, m := range measures {
			for shape := range formats.NumShapes {
				var n int64
				for month := per.Start; month <= per.End(); month++ {
					formats.ShapeCells(shape, func(fine int) {
						b, x := formats.ShapeDims(fine)
						n += truth(month, m, b, x)
					})
				}
				band, sex := formats.ShapeLabels(shape)
				s.Cells = append(s.Cells, formats.Cell{Period: per, Measure: m, AgeBand: band, Sex: sex, Protected: pol.Apply(n)})
			}
		}
	}
	return s
}

// Registry is the federation's registry, every practice with its key.
func (f *Federation) Registry() *formats.Registry {
	r := &formats.Registry{FormatVersion: formats.RegistryVersion, Updated: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	for _, p := range f.Practices {
		e, err := formats.NewRegistryEntry(p.ID, "Practice "+p.ID, p.Key.Public().(ed25519.PublicKey), r.Updated)
		if err != nil {
			panic(err) // generated ids are valid
		}
		r.Practices = append(r.Practices, e)
	}
	return r
}

// Write stores the signed registry and every practice's run, using up to workers goroutines.
func (f *Federation) Write(ctx context.Context, st objstore.Store, workers int) error {
	reg, err := formats.SignRegistry(f.Registry(), f.Coordinator)
	if err != nil {
		return err
	}
	if _, err := st.Put(ctx, formats.RegistryKey, reg); err != nil {
		return err
	}
	jobs := make(chan int)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range max(1, workers) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				if err := f.WriteRun(ctx, st, i); err != nil {
					errs <- err
					cancel()
					return
				}
			}
		}()
	}
feed:
	for i := range f.Practices {
		select {
		case jobs <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	return ctx.Err()
}

// WriteRun stores practice i's run: its file, then the signed manifest.
func (f *Federation) WriteRun(ctx context.Context, st objstore.Store, i int) error {
	p := f.Practices[i]
	_, err := WriteSubmission(ctx, st, p.Key, p.Created, f.Submission(i))
	return err
}

// WriteSubmission stores a hand-made submission as one run, then its manifest signed with
// key, and returns the manifest's key.
func WriteSubmission(ctx context.Context, st objstore.Store, key ed25519.PrivateKey, created time.Time, s *formats.Submission) (string, error) {
	return WriteSubmissionWith(ctx, st, key, created, s, nil)
}

// WriteSubmissionWith is WriteSubmission with the manifest recording the definition digest of
// each measure (nil: none, as from an agent before measures were data).
func WriteSubmissionWith(ctx context.Context, st objstore.Store, key ed25519.PrivateKey, created time.Time, s *formats.Submission, definitions map[string]string) (string, error) {
	data, err := formats.MarshalSubmission(s)
	if err != nil {
		return "", err
	}
	m := &formats.Manifest{FormatVersion: formats.FormatVersion, Practice: s.Practice, RunID: s.RunID,
		Created: created, Extractors: s.Extractors, Policy: s.Policy, From: s.From.String(), To: s.To.String(),
		Files: []formats.FileEntry{formats.Entry(s.Practice, s.RunID, data)}, Definitions: definitions}
	if _, err := st.Put(ctx, formats.SubmissionKey(s.Practice, s.RunID), data); err != nil {
		return "", err
	}
	env, err := formats.SignManifest(m, key)
	if err != nil {
		return "", err
	}
	_, err = st.Put(ctx, m.Key(), env)
	return m.Key(), err
}

// Size is practice i's list size under Params.Realistic.
func (f *Federation) Size(i int) float64 {
	return 2000 + float64(mix(f.Seed, uint64(i), 0x512e)%10001)
}

// Level is practice i's rate multiplier under Params.Realistic.
func (f *Federation) Level(i int) float64 {
	return 0.7 + 0.8*float64(mix(f.Seed, uint64(i), 0x1e7e1)%1001)/1000
}

// pyramid is the share of a list in each age band (England, ONS mid-2021 estimates, rounded).
var pyramid = [formats.NumBands]float64{5.4, 6.0, 6.0, 5.6, 6.0, 6.6, 7.0, 6.8, 6.4, 6.4, 6.9, 6.8, 5.9, 5.1, 5.0, 3.6, 2.4, 1.5, 0.8}

// yearly are rates per person-year (NHS Digital HES, A&E and outpatient activity, 2022-23,
// and GP appointments data, rounded), applied with ageFactor.
var yearly = map[string]float64{
	formats.Consultations: 5, formats.OutpatientAttendances: 1.6, formats.AEAttendances: 0.4, formats.Admissions: 0.29,
	formats.AdmissionsEmergency: 0.116, formats.AdmissionsElective: 0.17, formats.BedDays: 1.1, formats.PatientsAdmittedEmergency: 0.09,
}

// ageFactor scales hospital use by age band: children and the old use more.
func ageFactor(measure string, b int) float64 {
	f := [formats.NumBands]float64{1.3, 0.5, 0.45, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 1.0, 1.1, 1.3, 1.6, 2.0, 2.6, 3.2, 3.8, 4.2}[b]
	if measure == formats.Consultations {
		return 0.6 + 0.4*f
	}
	return f
}

func (f *Federation) realistic(i int, month formats.Month, measure string, b, x int) int64 {
	share := []float64{0.505, 0.49, 0.005}[x]
	pop := f.Size(i) * pyramid[b] / 100 * share
	if measure == formats.RegisteredPatients {
		return int64(pop + 0.5)
	}
	lambda := pop * yearly[measure] / 12 * ageFactor(measure, b) * f.Level(i)
	h := mix(f.Seed, uint64(i), uint64(month), uint64(len(measure))*131+uint64(measure[0])+uint64(measure[len(measure)-1])*7, uint64(b), uint64(x))
	return Poisson(rand.New(rand.NewPCG(h, h^0x9e3779b97f4a7c15)), lambda)
}

// Poisson draws a Poisson count of mean lambda (by its normal approximation above 40).
func Poisson(r *rand.Rand, lambda float64) int64 {
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
