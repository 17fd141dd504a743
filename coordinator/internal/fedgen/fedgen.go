// Package fedgen generates a synthetic federation for tests and benchmarks: practices with
// deterministic keys, a signed registry, and one signed run per practice whose true counts
// are a pure function of the parameters, so a test can recompute the truth it must bound.
package fedgen

import (
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"sync"
	"time"

	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/objstore"
)

// Version changes whenever the generator's output does, so caches of generated stores can
// be keyed by it.
const Version = 1

// Params shape a federation. The same Params always give the same keys, counts and bytes.
type Params struct {
	Practices int
	Months    int
	Start     formats.Month  // first month; zero means 2020-01
	Seed      uint64         // varies keys and counts
	Policy    formats.Policy // zero means formats.DefaultPolicy
	// Sparse leaves out zero cells, as an agent may, so readers must treat them as zero.
	Sparse bool
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
	h := mix(f.Seed, uint64(i), uint64(month), uint64(len(measure))*131+uint64(measure[0]), uint64(band), uint64(sex))
	v := h % (maxima[measure] + 1)
	if h>>60 == 0 { // one cell in sixteen is empty
		return 0
	}
	return int64(v)
}

// Submission is practice i's published submission for month, through the policy.
func (f *Federation) Submission(i int, month formats.Month) *formats.Submission {
	p := f.Practices[i]
	s := &formats.Submission{Practice: p.ID, Period: month, RunID: p.RunID, Policy: f.Policy.Name, Extractors: []string{"fedgen@1"}}
	for _, m := range formats.Measures {
		if !f.Supplies(i, m) {
			continue
		}
		for b, band := range formats.AgeBands {
			for x, sex := range formats.Sexes {
				n := f.True(i, month, m, b, x)
				if n == 0 && f.Sparse {
					continue
				}
				s.Cells = append(s.Cells, formats.Cell{Measure: m, AgeBand: band, Sex: sex, Protected: f.Policy.Apply(n)})
			}
		}
	}
	return s
}

// Registry is the federation's registry, every practice with its key.
func (f *Federation) Registry() *formats.Registry {
	r := &formats.Registry{FormatVersion: formats.FormatVersion, Updated: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
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

// WriteRun stores practice i's run: every month's file, then the signed manifest.
func (f *Federation) WriteRun(ctx context.Context, st objstore.Store, i int) error {
	p := f.Practices[i]
	subs := make([]*formats.Submission, f.Months)
	for k := range subs {
		subs[k] = f.Submission(i, f.Start+formats.Month(k))
	}
	_, err := WriteSubmissions(ctx, st, p.Key, p.Created, subs...)
	return err
}

// WriteSubmissions stores hand-made submissions of one practice and run, then their manifest
// signed with key, and returns the manifest's key. Every submission must name the same
// practice, run and policy.
func WriteSubmissions(ctx context.Context, st objstore.Store, key ed25519.PrivateKey, created time.Time, subs ...*formats.Submission) (string, error) {
	if len(subs) == 0 {
		return "", fmt.Errorf("no submissions to write")
	}
	first := subs[0]
	m := &formats.Manifest{FormatVersion: formats.FormatVersion, Practice: first.Practice, RunID: first.RunID,
		Created: created, Extractors: first.Extractors, Policy: first.Policy}
	for _, s := range subs {
		data, err := formats.MarshalSubmission(s)
		if err != nil {
			return "", err
		}
		if _, err := st.Put(ctx, formats.SubmissionKey(s.Practice, s.RunID, s.Period), data); err != nil {
			return "", err
		}
		m.Files = append(m.Files, formats.Entry(s.Practice, s.RunID, s.Period, data))
	}
	env, err := formats.SignManifest(m, key)
	if err != nil {
		return "", err
	}
	_, err = st.Put(ctx, m.Key(), env)
	return m.Key(), err
}
