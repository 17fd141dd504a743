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
