package combine_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/tributary-health/tributary/coordinator/combine"
	"github.com/tributary-health/tributary/coordinator/internal/fedgen"
	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/objstore"
)

// TestBoundsContainTruth generates random true counts for several practices, publishes them
// through each policy, combines, and checks every federation cell: the true total lies within
// its bounds, and its count is the sum of what the practices published.
func TestBoundsContainTruth(t *testing.T) {
	seeds := 4
	if testing.Short() {
		seeds = 1
	}
	for _, pol := range formats.Policies {
		for s := range seeds {
			seed := rand.Uint64()
			sparse := s%2 == 1
			t.Run(fmt.Sprintf("%s/seed=%d/sparse=%v", pol.Name, seed, sparse), func(t *testing.T) {
				t.Parallel()
				checkBounds(t, fedgen.New(fedgen.Params{Practices: 2 + int(seed%7), Months: 2, Seed: seed, Policy: pol, Sparse: sparse}))
			})
		}
	}
}

func checkBounds(t *testing.T, fed *fedgen.Federation) {
	ctx := context.Background()
	st, err := objstore.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := fed.Write(ctx, st, 2); err != nil {
		t.Fatal(err)
	}
	res, err := combine.Run(ctx, st, fed.Coordinator.Public().(ed25519.PublicKey), combine.Options{Policy: fed.Policy})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Report.Quarantined) != 0 || res.Report.Practices != len(fed.Practices) {
		t.Fatalf("%d of %d practices combined, quarantine %+v", res.Report.Practices, len(fed.Practices), res.Report.Quarantined)
	}
	data, _, err := st.Get(ctx, res.Pointer.Objects[combine.FederationArrow].Key, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	rows := 0
	_, err = combine.ReadTable(data, func(r *combine.Row) error {
		rows++
		b, x := formats.AgeBandIndex(r.AgeBand), -1
		for i, s := range formats.Sexes {
			if s == r.Sex {
				x = i
			}
		}
		var truth, published, practices int64
		for i := range fed.Practices {
			if !fed.Supplies(i, r.Measure) {
				continue
			}
			practices++
			n := fed.True(i, r.Month, r.Measure, b, x)
			truth += n
			if p := fed.Policy.Apply(n); p.Status != formats.StatusSuppressed {
				published += p.Count
			}
		}
		if truth < r.Lower || truth > r.Upper {
			t.Errorf("%s %s %s %s: true total %d outside %d-%d", r.Month, r.Measure, r.AgeBand, r.Sex, truth, r.Lower, r.Upper)
		}
		switch r.Status {
		case formats.StatusSuppressed:
			if published != 0 || r.Lower < 1 || r.Upper > fed.Policy.SuppressMax {
				t.Errorf("%s %s %s %s: suppressed with published sum %d and bounds %d-%d", r.Month, r.Measure, r.AgeBand, r.Sex, published, r.Lower, r.Upper)
			}
		default:
			if r.Count != published {
				t.Errorf("%s %s %s %s: count %d, the published values sum to %d", r.Month, r.Measure, r.AgeBand, r.Sex, r.Count, published)
			}
		}
		if r.Practices != practices {
			t.Errorf("%s %s: %d practices, want %d", r.Month, r.Measure, r.Practices, practices)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := fed.Months * len(formats.Measures) * len(formats.AgeBands) * len(formats.Sexes); rows != want {
		t.Errorf("%d federation rows, want %d", rows, want)
	}
}

// TestBoundsContainTruthSmallCounts draws mostly zero and small true counts for a few
// practices, so many federation cells are partial or suppressed, and checks the same
// properties cell by cell under each policy.
func TestBoundsContainTruthSmallCounts(t *testing.T) {
	for _, pol := range formats.Policies {
		t.Run(pol.Name, func(t *testing.T) {
			seed := rand.Uint64()
			rng := rand.New(rand.NewPCG(seed, 1))
			practices := []string{"A81001", "B82002", "C83003"}
			f := newFixture(t, practices...)
			type cellID struct {
				measure, band, sex string
			}
			truth := map[cellID]int64{}
			published := map[cellID]int64{}
			for i, p := range practices {
				run := runID(i+1, fmt.Sprintf("%08x", i+1))
				s := &formats.Submission{Practice: p, Period: jan, RunID: run, Policy: pol.Name, Extractors: []string{"hand@1"}}
				for _, m := range formats.Measures {
					for _, b := range formats.AgeBands {
						for _, x := range formats.Sexes {
							var n int64
							switch r := rng.IntN(10); {
							case r < 6:
							case r < 9:
								n = 1 + rng.Int64N(7)
							default:
								n = 8 + rng.Int64N(40)
							}
							id := cellID{m, b, x}
							truth[id] += n
							c := pol.Apply(n)
							if c.Status != formats.StatusSuppressed {
								published[id] += c.Count
							}
							s.Cells = append(s.Cells, formats.Cell{Measure: m, AgeBand: b, Sex: x, Protected: c})
						}
					}
				}
				f.writeRun(p, day(i+1), s)
			}
			res, err := combine.Run(f.ctx, f.st, f.coord.Public().(ed25519.PublicKey), combine.Options{Policy: pol})
			if err != nil {
				t.Fatal(err)
			}
			statuses := map[string]int{}
			for k, r := range f.table(res, combine.FederationArrow) {
				id := cellID{k.measure, k.band, k.sex}
				statuses[r.Status]++
				if n := truth[id]; n < r.Lower || n > r.Upper {
					t.Errorf("seed %d %v: true total %d outside %d-%d", seed, id, n, r.Lower, r.Upper)
				}
				switch r.Status {
				case formats.StatusSuppressed:
					if published[id] != 0 || r.Lower < 1 || r.Upper > pol.SuppressMax {
						t.Errorf("seed %d %v: suppressed with published %d, bounds %d-%d", seed, id, published[id], r.Lower, r.Upper)
					}
				default:
					if r.Count != published[id] {
						t.Errorf("seed %d %v: count %d, published values sum to %d", seed, id, r.Count, published[id])
					}
				}
			}
			if pol.SuppressMax > 0 && (statuses[formats.StatusSuppressed] == 0 || statuses[combine.StatusPartial] == 0) {
				t.Errorf("seed %d: statuses %v; the draw should give suppressed and partial cells", seed, statuses)
			}
		})
	}
}
