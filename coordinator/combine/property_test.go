package combine_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/tributary-health/tributary/coordinator/combine"
	"github.com/tributary-health/tributary/coordinator/figures"
	"github.com/tributary-health/tributary/coordinator/internal/fedgen"
	"github.com/tributary-health/tributary/coordinator/stats"
	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/objstore"
)

// TestBoundsContainTruth generates federations with known true counts (fedgen.True) under
// each policy, combines them, and checks every row of federation.arrow, every period,
// measure and shape: the true total lies within its bounds; its bounds and published sum are
// the sums of what the practices published for that very period and shape; its count lies
// within its bounds; its status and method follow from its pieces; the true list size, rate
// and directly standardised rate lie within theirs.
func TestBoundsContainTruth(t *testing.T) {
	cases := []struct {
		seed      uint64
		practices int
		months    int
		start     formats.Month
	}{
		{seed: 1, practices: 2, months: 2},
		{seed: 2, practices: 5, months: 7, start: formats.MonthFor(2020, 11)},
		{seed: 3, practices: 8, months: 14}, // a whole year, five quarters
		{seed: 4, practices: 3, months: 25, start: formats.MonthFor(2021, 12)},
	}
	if testing.Short() {
		cases = cases[:2]
	}
	for _, pol := range formats.Policies {
		t.Run(pol.Name, func(t *testing.T) {
			var mu sync.Mutex
			statuses := map[string]int{}
			t.Run("federations", func(t *testing.T) {
				for _, c := range cases {
					t.Run(fmt.Sprintf("seed=%d", c.seed), func(t *testing.T) {
						t.Parallel()
						got := checkBounds(t, fedgen.New(fedgen.Params{Practices: c.practices, Months: c.months, Start: c.start, Seed: c.seed, Policy: pol}))
						mu.Lock()
						defer mu.Unlock()
						for k, n := range got {
							statuses[k] += n
						}
					})
				}
			})
			if pol.SuppressMax > 0 && (statuses[formats.StatusSuppressed] == 0 || statuses[combine.StatusPartial] == 0) {
				t.Errorf("statuses %v; the federations should give suppressed and partial figures", statuses)
			}
		})
	}
}

// checkBounds checks one federation's figures and returns how many of each status it saw.
func checkBounds(t *testing.T, fed *fedgen.Federation) map[string]int {
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
	if len(res.Report.Quarantined) != 0 || res.Report.Practices != len(fed.Practices) || res.Report.MonthsCombined != len(fed.Practices)*fed.Months {
		t.Fatalf("%d of %d practices combined (%d practice-months), quarantine %+v", res.Report.Practices, len(fed.Practices), res.Report.MonthsCombined, res.Report.Quarantined)
	}
	// The truth of every practice, month, measure and fine cell.
	truth := make([][][][formats.NumFine]int64, len(fed.Practices))
	for i := range fed.Practices {
		truth[i] = make([][][formats.NumFine]int64, fed.Months)
		for m := range fed.Months {
			truth[i][m] = make([][formats.NumFine]int64, len(formats.Measures))
			for mi, measure := range formats.Measures {
				for fine := range formats.NumFine {
					b, x := formats.ShapeDims(fine)
					truth[i][m][mi][fine] = fed.True(i, fed.Start+formats.Month(m), measure, b, x)
				}
			}
		}
	}
	// practiceTrue is practice i's true count of measure mi over per in shape.
	practiceTrue := func(i int, per formats.Period, mi, shape int) int64 {
		var n int64
		for m := per.Start; m <= per.End(); m++ {
			formats.ShapeCells(shape, func(fine int) { n += truth[i][m-fed.Start][mi][fine] })
		}
		return n
	}
	list := slices.Index(formats.Measures, formats.RegisteredPatients)
	data, _, err := st.Get(ctx, res.Pointer.Objects[combine.FederationArrow].Key, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	rows, rates, dsrs := 0, 0, 0
	statuses := map[string]int{}
	_, err = combine.ReadFederationTable(data, func(r *figures.Figure) error {
		rows++
		statuses[r.Status]++
		per, err := formats.ParsePeriod(r.Period)
		if err != nil {
			return err
		}
		band, sex := r.AgeBand, r.Sex
		if band == "" {
			band = formats.All
		}
		if sex == "" {
			sex = formats.All
		}
		shape, mi := formats.ShapeIndex(band, sex), slices.Index(formats.Measures, r.Measure)
		if shape < 0 || mi < 0 {
			return fmt.Errorf("row %+v names no shape or measure", r)
		}
		name := fmt.Sprintf("%s %s %s %s", r.Period, r.Measure, band, sex)
		if r.From != per.Start.String() || r.To != per.End().String() {
			t.Errorf("%s: from %s to %s", name, r.From, r.To)
		}
		var want, listWant struct{ truth, lower, upper, published int64 }
		var practices, suppressed int64
		for i := range fed.Practices {
			if !fed.Supplies(i, r.Measure) {
				continue
			}
			practices++
			n := practiceTrue(i, per, mi, shape)
			p := fed.Policy.Apply(n)
			want.truth, want.lower, want.upper = want.truth+n, want.lower+p.Lower, want.upper+p.Upper
			if p.Status == formats.StatusSuppressed {
				suppressed++
			} else {
				want.published += p.Count
			}
			l := practiceTrue(i, per, list, shape)
			lp := fed.Policy.Apply(l)
			listWant.truth, listWant.lower, listWant.upper = listWant.truth+l, listWant.lower+lp.Lower, listWant.upper+lp.Upper
		}
		if want.truth < r.Lower || want.truth > r.Upper {
			t.Errorf("%s: true total %d outside %d-%d", name, want.truth, r.Lower, r.Upper)
		}
		// Every practice's run covers the whole federation, so every period is answered
		// by the practices' own values for it.
		if r.Lower != want.lower || r.Upper != want.upper || r.PublishedSum != want.published || r.Practices != practices || r.Note != "" {
			t.Errorf("%s: bounds %d-%d, published %d, %d practices, note %q; the practices published %d-%d, %d, %d practices",
				name, r.Lower, r.Upper, r.PublishedSum, r.Practices, r.Note, want.lower, want.upper, want.published, practices)
		}
		switch {
		case r.Status == formats.StatusSuppressed:
			if r.Count != nil || r.Lower < 1 || r.Upper > fed.Policy.SuppressMax || want.published != 0 {
				t.Errorf("%s: suppressed with count %v, bounds %d-%d, published %d", name, deref(r.Count), r.Lower, r.Upper, want.published)
			}
		case r.Count == nil || *r.Count < r.Lower || *r.Count > r.Upper:
			t.Errorf("%s: count %v outside its bounds %d-%d", name, deref(r.Count), r.Lower, r.Upper)
		case (r.Status == combine.StatusPartial) != (suppressed > 0) || (suppressed == 0 && r.Status != formats.StatusRounded):
			t.Errorf("%s: status %s with %d suppressed pieces", name, r.Status, suppressed)
		case suppressed == 0 && fed.Policy.Rounding != "midpoint6" && *r.Count != want.published:
			t.Errorf("%s: count %d, the published values sum to %d", name, *r.Count, want.published)
		}
		if wantMethod := figures.MethodPublished; (suppressed > 0 || fed.Policy.Rounding == "midpoint6") != (r.Method != wantMethod) {
			t.Errorf("%s: method %s with %d suppressed pieces under %s", name, r.Method, suppressed, fed.Policy.Name)
		}
		if mi == list {
			if r.ListSize != nil || r.Rate != nil {
				t.Errorf("%s: the list size has a list size or rate", name)
			}
			return nil
		}
		months := float64(per.Len())
		trueList := float64(listWant.truth) / months
		if r.ListLower == nil || r.ListUpper == nil || *r.ListLower != float64(listWant.lower)/months || *r.ListUpper != float64(listWant.upper)/months ||
			trueList < *r.ListLower || trueList > *r.ListUpper {
			t.Errorf("%s: list size bounds %v-%v, want %v-%v holding %v", name, r.ListLower, r.ListUpper, float64(listWant.lower)/months, float64(listWant.upper)/months, trueList)
		}
		if trueList > 0 {
			rate := float64(want.truth) / trueList * 1000
			if r.RateLower == nil || rate < *r.RateLower-1e-9 || (r.RateUpper != nil && rate > *r.RateUpper+1e-9) {
				t.Errorf("%s: the true rate %.4f is outside %v-%v", name, rate, r.RateLower, r.RateUpper)
			}
			if r.Rate != nil && (*r.Rate < *r.RateLower-1e-9 || (r.RateUpper != nil && *r.Rate > *r.RateUpper+1e-9)) {
				t.Errorf("%s: the rate %v is outside its own bounds", name, *r.Rate)
			}
			rates++
		}
		if r.DSRAtLower != nil {
			var ev, pop, w []float64
			for b := range formats.NumBands {
				s := formats.BandShape(b)
				if sex != formats.All {
					s = formats.FineShape(b, slices.Index(formats.Sexes, sex))
				}
				var e, l int64
				for i := range fed.Practices {
					if fed.Supplies(i, r.Measure) {
						e += practiceTrue(i, per, mi, s)
						l += practiceTrue(i, per, list, s)
					}
				}
				ev, pop, w = append(ev, float64(e)), append(pop, float64(l)/months), append(w, formats.ESP2013[formats.AgeBands[b]])
			}
			if d, err := stats.DirectlyStandardised(ev, pop, w, 1000, stats.Conf95); err == nil {
				if d.Rate < *r.DSRAtLower-1e-9 || (r.DSRAtUpper != nil && d.Rate > *r.DSRAtUpper+1e-9) {
					t.Errorf("%s: the true DSR %.4f is outside %v-%v", name, d.Rate, *r.DSRAtLower, r.DSRAtUpper)
				}
				dsrs++
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := len(formats.PeriodsOf(fed.Start, fed.Start+formats.Month(fed.Months-1))) * len(formats.Measures) * formats.NumShapes; rows != want || res.Report.FederationRows != int64(want) {
		t.Errorf("%d federation rows (report %d), want %d", rows, res.Report.FederationRows, want)
	}
	if rates == 0 || dsrs == 0 {
		t.Errorf("%d rates and %d standardised rates checked; the federation should give both", rates, dsrs)
	}
	return statuses
}

// TestBoundsContainTruthSmallCounts draws mostly zero and small true counts for a few
// practices over a quarter, so many figures are partial or suppressed, and lets the agents'
// disclosure audit withhold some margins and quarter values; it checks the same properties
// figure by figure under each policy, and that exactly the figures some practice answered
// from finer values say so.
func TestBoundsContainTruthSmallCounts(t *testing.T) {
	for _, pol := range formats.Policies {
		for _, seed := range []uint64{1, 2, 3} {
			t.Run(fmt.Sprintf("%s/seed=%d", pol.Name, seed), func(t *testing.T) {
				checkSmallCounts(t, pol, seed)
			})
		}
	}
}

func checkSmallCounts(t *testing.T, pol formats.Policy, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 1))
	practices := []string{"A81001", "B82002", "C83003"}
	f := newFixture(t, practices...)
	from, to := month("2024-01"), month("2024-03")
	type cellID struct {
		practice int
		month    formats.Month
		measure  string
		b, x     int
	}
	truths := map[cellID]int64{}
	for i := range practices {
		for m := from; m <= to; m++ {
			for _, measure := range formats.Measures {
				for b := range formats.NumBands {
					for x := range formats.NumSexes {
						var n int64
						switch r := rng.IntN(10); {
						case r < 6:
						case r < 9:
							n = 1 + rng.Int64N(7)
						default:
							n = 8 + rng.Int64N(40)
						}
						truths[cellID{i, m, measure, b, x}] = n
					}
				}
			}
		}
	}
	type valueID struct {
		practice int
		period   string
		measure  string
		shape    int
	}
	published := map[valueID]formats.Protected{}
	for i, p := range practices {
		s := fedgen.Publish(pol, p, runID(i+1, fmt.Sprintf("%08x", i+1)), from, to, formats.Measures,
			func(m formats.Month, measure string, b, x int) int64 { return truths[cellID{i, m, measure, b, x}] })
		// The audit may withhold any value but a month's age band × sex cell.
		for j := range s.Cells {
			c := &s.Cells[j]
			shape := formats.ShapeIndex(c.AgeBand, c.Sex)
			if (c.Period.Kind != formats.KindMonth || !formats.IsFineShape(shape)) && rng.IntN(12) == 0 {
				c.Protected = formats.Protected{Status: formats.StatusWithheld}
			}
			published[valueID{i, c.Period.String(), c.Measure, shape}] = c.Protected
		}
		f.writeRun(p, day(i+1), s)
	}
	res := f.combineUnder(pol)
	if len(res.Report.Quarantined) != 0 {
		t.Fatalf("quarantine: %+v", res.Report.Quarantined)
	}
	statuses := map[string]int{}
	fallbacks := 0
	fed := f.federation(res)
	if want := 4 * len(formats.Measures) * formats.NumShapes; len(fed) != want {
		t.Errorf("%d federation rows, want %d", len(fed), want)
	}
	for k, r := range fed {
		statuses[r.Status]++
		per, _ := formats.ParsePeriod(k.period)
		band, sex := k.band, k.sex
		if band == "" {
			band = formats.All
		}
		if sex == "" {
			sex = formats.All
		}
		shape := formats.ShapeIndex(band, sex)
		var truth, lower, upper, pub int64
		withheld := false
		for i := range practices {
			for m := per.Start; m <= per.End(); m++ {
				formats.ShapeCells(shape, func(fine int) {
					b, x := formats.ShapeDims(fine)
					truth += truths[cellID{i, m, k.measure, b, x}]
				})
			}
			v := published[valueID{i, k.period, k.measure, shape}]
			withheld = withheld || v.Status == formats.StatusWithheld
			lower, upper = lower+v.Lower, upper+v.Upper
			if v.Status == formats.StatusRounded {
				pub += v.Count
			}
		}
		if truth < r.Lower || truth > r.Upper {
			t.Errorf("seed %d %v: true total %d outside %d-%d", seed, k, truth, r.Lower, r.Upper)
		}
		if r.Status == formats.StatusSuppressed {
			if r.Count != nil || r.Lower < 1 || r.Upper > pol.SuppressMax {
				t.Errorf("seed %d %v: suppressed with count %v and bounds %d-%d", seed, k, deref(r.Count), r.Lower, r.Upper)
			}
		} else if r.Count == nil || *r.Count < r.Lower || *r.Count > r.Upper {
			t.Errorf("seed %d %v: count %v outside %d-%d", seed, k, deref(r.Count), r.Lower, r.Upper)
		}
		// A figure some practice answered from finer values says so; the others are the sums
		// of what the practices published for the figure itself.
		if withheld != (r.Note != "") {
			t.Errorf("seed %d %v: note %q, but a practice's value was withheld: %v", seed, k, r.Note, withheld)
		}
		if withheld {
			fallbacks++
		} else if r.Lower != lower || r.Upper != upper || r.PublishedSum != pub || r.Practices != int64(len(practices)) {
			t.Errorf("seed %d %v: bounds %d-%d published %d from %d practices; they published %d-%d, %d", seed, k, r.Lower, r.Upper, r.PublishedSum, r.Practices, lower, upper, pub)
		}
	}
	if pol.SuppressMax > 0 && (statuses[formats.StatusSuppressed] == 0 || statuses[combine.StatusPartial] == 0) {
		t.Errorf("seed %d: statuses %v; the draw should give suppressed and partial figures", seed, statuses)
	}
	if fallbacks == 0 {
		t.Errorf("seed %d: no figure fell back to finer values; the draw should withhold some", seed)
	}
}
