package figures

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/tributary-health/tributary/coordinator/internal/fedgen"
	"github.com/tributary-health/tributary/coordinator/stats"
	"github.com/tributary-health/tributary/formats"
)

// world is a federation with known truth: every practice's true fine count of every
// measure in every month, what it published, and which months it submitted.
type world struct {
	e      *Engine
	months []formats.Month
	truth  map[string]map[formats.Month][][formats.NumFine]int64 // practice -> month -> measure -> fine
}

// measures of the test worlds: the list size first, then events of very different sizes.
var testMeasures = []string{formats.RegisteredPatients, formats.AEAttendances, formats.AdmissionsEmergency, "rare_event"}

// rates per person per month of the test measures (the list size has none).
var testRates = []float64{0, 0.4 / 12, 0.11 / 12, 0.006 / 12}

// newWorld makes n practices over 24 months from 2023-01 under pol. Each practice has its
// own list size (small ones make suppression common), age structure and runs: some publish
// the whole two years in one run (so their quarter and year values are current), some
// re-published the last months in a later run (so the year 2024 is out of date for them),
// some skipped months, and some margins are withheld as the agent's audit may withhold them.
func newWorld(t testing.TB, seed uint64, n int, pol formats.Policy) *world {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 77))
	w := &world{e: New(pol, pol.SuppressMax, testMeasures), truth: map[string]map[formats.Month][][formats.NumFine]int64{}}
	from := formats.MonthFor(2023, 1)
	to := from + 23
	for m := from; m <= to; m++ {
		w.months = append(w.months, m)
	}
	for i := range n {
		id := fmt.Sprintf("P%03d", i)
		list := []float64{150, 600, 2500, 9000}[i%4] * (0.7 + 0.6*r.Float64())
		var share [formats.NumFine]float64
		var total float64
		for f := range share {
			b, x := formats.ShapeDims(f)
			share[f] = (1 + 0.3*math.Sin(float64(b+i))) * []float64{1, 0.97, 0.02}[x]
			total += share[f]
		}
		truth := map[formats.Month][][formats.NumFine]int64{}
		skipped := map[formats.Month]bool{}
		if i%5 == 2 {
			skipped[from+4] = true
			skipped[from+17] = true
		}
		for _, m := range w.months {
			if skipped[m] {
				continue
			}
			cells := make([][formats.NumFine]int64, len(testMeasures))
			for f := range formats.NumFine {
				pop := fedgen.Poisson(r, list*share[f]/total)
				cells[0][f] = pop
				b, _ := formats.ShapeDims(f)
				age := 0.5 + float64(b)/9 // older bands use more
				for mi := 1; mi < len(testMeasures); mi++ {
					cells[mi][f] = fedgen.Poisson(r, float64(pop)*testRates[mi]*age)
				}
			}
			truth[m] = cells
		}
		w.truth[id] = truth
		p := w.e.NewPractice(id)
		publish := func(runFrom, runTo formats.Month) {
			for _, per := range formats.PeriodsOf(runFrom, runTo) {
				complete := true
				for m := per.Start; m <= per.End(); m++ {
					complete = complete && truth[m] != nil
				}
				if per.Kind == formats.KindMonth && !complete {
					continue
				}
				if !complete { // an agent would not have run without these months
					continue
				}
				for mi := range testMeasures {
					vals := p.Values(per, mi)
					for shape := range formats.NumShapes {
						var sum int64
						for m := per.Start; m <= per.End(); m++ {
							formats.ShapeCells(shape, func(f int) { sum += truth[m][mi][f] })
						}
						v, ok := ValueOf(pol.Apply(sum))
						if !ok {
							t.Fatal("value does not fit")
						}
						if !formats.IsFineShape(shape) || per.Kind != formats.KindMonth {
							if r.IntN(9) == 0 {
								v = Value{Status: Withheld}
							}
						}
						vals[shape] = v
					}
				}
			}
		}
		switch i % 3 {
		case 0: // one run over both years: quarters and years current
			publish(from, to)
		case 1: // a later run re-published the last five months: 2024 and its Q3 are out of date
			publish(from, to-5)
			for _, per := range []formats.Period{formats.YearOf(to), formats.QuarterOf(to - 5)} {
				delete(p.blocks, keyOf(per))
			}
			publish(to-4, to)
		default: // monthly runs only
			for _, m := range w.months {
				publish(m, m)
			}
		}
		w.e.Add(p)
	}
	w.e.Finish()
	return w
}

// trueSum is the true count of measure mi over the span, for one practice or (id "") all,
// counting only the months each practice submitted.
func (w *world) trueSum(id string, mi int, s span) int64 {
	var n int64
	for pid, months := range w.truth {
		if id != "" && pid != id {
			continue
		}
		for m := s.from; m <= s.to; m++ {
			cells := months[m]
			if cells == nil {
				continue
			}
			for f := range formats.NumFine {
				b, x := formats.ShapeDims(f)
				if (s.bands == nil || slices.Contains(s.bands, b)) && (s.sexes == nil || slices.Contains(s.sexes, x)) {
					n += cells[mi][f]
				}
			}
		}
	}
	return n
}

func randomSubset(r *rand.Rand, n int) []int {
	switch r.IntN(3) {
	case 0:
		return nil
	case 1:
		return []int{r.IntN(n)}
	}
	var out []int
	for i := range n {
		if r.IntN(2) == 0 {
			out = append(out, i)
		}
	}
	if len(out) == 0 || len(out) == n {
		return nil
	}
	return out
}

// TestBoundsHoldTheTruth asks thousands of random questions of worlds with known truth and
// checks that every figure's bounds contain its true count, that its count lies within its
// bounds, and that the rate and DSR bounds contain the true rate and DSR.
func TestBoundsHoldTheTruth(t *testing.T) {
	for _, pol := range formats.Policies {
		t.Run(pol.Name, func(t *testing.T) {
			w := newWorld(t, 11, 16, pol)
			r := rand.New(rand.NewPCG(5, 6))
			checked, rates, dsrs := 0, 0, 0
			for range 250 {
				a, b := w.months[r.IntN(len(w.months))], w.months[r.IntN(len(w.months))]
				if a > b {
					a, b = b, a
				}
				q := Query{From: a, To: b, ByMonth: r.IntN(3) == 0, ByBand: r.IntN(4) == 0, BySex: r.IntN(4) == 0,
					Bands: randomSubset(r, formats.NumBands), Sexes: randomSubset(r, formats.NumSexes),
					Federation: true, ByPractice: r.IntN(3) == 0}
				for _, f := range w.e.Figures(&q) {
					mi, _ := w.e.MeasureIndex(f.Measure)
					from, _ := formats.ParseMonth(f.From)
					to, _ := formats.ParseMonth(f.To)
					s := span{from: from, to: to, bands: q.Bands, sexes: q.Sexes}
					if f.AgeBand != "" {
						s.bands = []int{formats.AgeBandIndex(f.AgeBand)}
					}
					if f.Sex != "" {
						s.sexes = []int{slices.Index(formats.Sexes, f.Sex)}
					}
					truth := w.trueSum(f.Practice, mi, s)
					if truth < f.Lower || truth > f.Upper {
						t.Fatalf("%+v: the truth %d is outside the bounds %d-%d", f, truth, f.Lower, f.Upper)
					}
					if f.Count != nil && (*f.Count < f.Lower || *f.Count > f.Upper) {
						t.Fatalf("%+v: count %d outside its bounds", f, *f.Count)
					}
					checked++
					if mi == 0 {
						continue
					}
					list := float64(w.trueSum(f.Practice, 0, s)) / float64(to-from+1)
					if list > 0 {
						rate := float64(truth) / list * 1000
						if f.RateLower == nil || rate < *f.RateLower-1e-9 || (f.RateUpper != nil && rate > *f.RateUpper+1e-9) {
							t.Fatalf("%+v: the true rate %.4f is outside %v-%v", f, rate, deref(f.RateLower), deref(f.RateUpper))
						}
						if f.Rate != nil && (*f.Rate < *f.RateLower-1e-9 || (f.RateUpper != nil && *f.Rate > *f.RateUpper+1e-9)) {
							t.Fatalf("%+v: the rate is outside its own bounds", f)
						}
						rates++
					}
					if f.DSRAtLower != nil {
						d := w.trueDSR(f.Practice, mi, s)
						if d < *f.DSRAtLower-1e-9 || (f.DSRAtUpper != nil && d > *f.DSRAtUpper+1e-9) {
							t.Fatalf("%+v: the true DSR %.4f is outside %v-%v", f, d, *f.DSRAtLower, deref(f.DSRAtUpper))
						}
						dsrs++
					}
				}
			}
			t.Logf("%d figures, %d rates and %d DSRs checked against the truth", checked, rates, dsrs)
			if checked < 1000 || rates < 300 || dsrs < 50 {
				t.Fatalf("too few checks: %d figures, %d rates, %d DSRs", checked, rates, dsrs)
			}
		})
	}
}

func deref(p *float64) any {
	if p == nil {
		return "unbounded"
	}
	return *p
}

func (w *world) trueDSR(id string, mi int, s span) float64 {
	bands := s.bands
	if bands == nil {
		for b := range formats.NumBands {
			bands = append(bands, b)
		}
	}
	months := float64(s.to-s.from) + 1
	var ev, pop, wt []float64
	for _, b := range bands {
		bs := span{from: s.from, to: s.to, bands: []int{b}, sexes: s.sexes}
		ev = append(ev, float64(w.trueSum(id, mi, bs)))
		pop = append(pop, float64(w.trueSum(id, 0, bs))/months)
		wt = append(wt, formats.ESP2013[formats.AgeBands[b]])
	}
	d, err := stats.DirectlyStandardised(ev, pop, wt, 1000, stats.Conf95)
	if err != nil {
		return 0
	}
	return d.Rate
}

// TestCoarsestValuesAnswer checks that a federation month total is the sum of the practices'
// own month totals (not of their cells), and a practice's year its year total where that is
// current, falling back, and saying so, where not.
func TestCoarsestValuesAnswer(t *testing.T) {
	w := newWorld(t, 3, 12, formats.PolicyUK)
	ae, _ := w.e.MeasureIndex(formats.AEAttendances)
	m := w.months[7]
	fed := w.e.Figures(&Query{From: m, To: m, Measures: []int{ae}, Federation: true})
	if len(fed) != 1 {
		t.Fatalf("%d rows", len(fed))
	}
	var lower, upper, totals int64
	for _, id := range w.e.IDs() {
		v := w.e.Practice(id).Get(formats.MonthPeriod(m), ae)
		if v == nil {
			continue
		}
		rows := w.e.Figures(&Query{From: m, To: m, Measures: []int{ae}, ByPractice: true, Practices: []string{id}})
		lower, upper = lower+rows[0].Lower, upper+rows[0].Upper
		if tot := v[formats.TotalShape]; tot.Status != Withheld {
			totals++
			if rows[0].Lower != int64(tot.Lower) || rows[0].Upper != int64(tot.Upper) {
				t.Errorf("%s: the month row %+v is not its published total %+v", id, rows[0], tot)
			}
		}
	}
	if fed[0].Lower != lower || fed[0].Upper != upper || totals < 6 {
		t.Errorf("federation month total %+v is not the sum of the practices' figures (%d-%d; %d published totals)", fed[0], lower, upper, totals)
	}
	year := formats.YearOf(w.months[12])
	rows := w.e.Figures(&Query{From: year.Start, To: year.End(), Measures: []int{ae}, ByPractice: true})
	var current, stale int
	for _, f := range rows {
		p := w.e.Practice(f.Practice)
		if v := p.Get(year, ae); v != nil && v[formats.TotalShape].Status != Withheld {
			current++
			if f.Lower != int64(v[formats.TotalShape].Lower) || f.Upper != int64(v[formats.TotalShape].Upper) || f.Note != "" {
				t.Errorf("%s: the year row %+v is not its published year total %+v", f.Practice, f, v[formats.TotalShape])
			}
		} else {
			stale++
			if f.Note == "" {
				t.Errorf("%s: the year was answered from finer values without saying so: %+v", f.Practice, f)
			}
		}
	}
	if current == 0 || stale == 0 {
		t.Errorf("the world has %d practices with a current year and %d without; both must occur", current, stale)
	}
}

// TestEstimateBias measures how far count (published values plus the Poisson estimates of
// suppressed ones) and the midpoint of the bounds lie from the truth, for practice-month
// figures of rare measures where suppression is common. The estimate must be closer than
// the midpoint, which overstates counts that are mostly 1 or 2.
func TestEstimateBias(t *testing.T) {
	w := newWorld(t, 21, 32, formats.PolicyUK)
	for _, name := range []string{formats.AdmissionsEmergency, "rare_event"} {
		mi, _ := w.e.MeasureIndex(name)
		var truth, count, mid float64
		var n int
		for _, q := range []Query{
			{Measures: []int{mi}, ByMonth: true, ByPractice: true, ByBand: true},
			{Measures: []int{mi}, ByMonth: true, ByPractice: true},
		} {
			for _, f := range w.e.Figures(&q) {
				if f.Status != StatusPartial {
					continue
				}
				from, _ := formats.ParseMonth(f.From)
				s := span{from: from, to: from}
				if f.AgeBand != "" {
					s.bands = []int{formats.AgeBandIndex(f.AgeBand)}
				}
				truth += float64(w.trueSum(f.Practice, mi, s))
				count += float64(*f.Count)
				mid += float64(f.Lower+f.Upper) / 2
				n++
			}
		}
		biasCount, biasMid := (count-truth)/truth, (mid-truth)/truth
		t.Logf("%s: %d partial practice figures, truth %.0f; count %+.1f%%, midpoint of bounds %+.1f%%", name, n, truth, 100*biasCount, 100*biasMid)
		if n < 10 {
			t.Fatalf("%s: only %d partial figures", name, n)
		}
		if math.Abs(biasCount) >= math.Abs(biasMid) || math.Abs(biasCount) > 0.25 {
			t.Errorf("%s: count is off by %+.1f%%, the midpoint by %+.1f%%: the estimate must do better", name, 100*biasCount, 100*biasMid)
		}
	}
}

// TestSuppressedListSizeKeepsItsBand is the case the review found: two practices whose 90+
// bands hold 5 and 4 patients (suppressed list sizes) used to drop that band out of the DSR,
// giving 198.0 per 1,000 shown as exact where the truth is 209.1. A suppressed list size is
// never 0: its bounds go into the rates and the DSR, which is marked partial, and the true
// DSR lies within dsr_at_lower..dsr_at_upper.
func TestSuppressedListSizeKeepsItsBand(t *testing.T) {
	pol := formats.PolicyUK
	e := New(pol, pol.SuppressMax, []string{formats.RegisteredPatients, formats.Admissions})
	m := formats.MonthFor(2024, 1)
	old := formats.NumBands - 1
	truthList := map[string][formats.NumBands]int64{}
	truthEvents := map[string][formats.NumBands]int64{}
	for i, over90 := range []int64{5, 4} {
		id := fmt.Sprintf("P%d", i)
		var list, ev [formats.NumBands]int64
		for b := range formats.NumBands {
			list[b], ev[b] = 300, 6+int64(b)
		}
		list[old], ev[old] = over90, 2
		truthList[id], truthEvents[id] = list, ev
		p := e.NewPractice(id)
		for mi, counts := range [][formats.NumBands]int64{list, ev} {
			vals := p.Values(formats.MonthPeriod(m), mi)
			for shape := range formats.NumShapes {
				var n int64
				formats.ShapeCells(shape, func(f int) {
					b, x := formats.ShapeDims(f)
					if x == 0 { // everyone is female here
						n += counts[b]
					}
				})
				vals[shape], _ = ValueOf(pol.Apply(n))
			}
		}
		e.Add(p)
	}
	e.Finish()
	rows := e.Figures(&Query{Measures: []int{1}, From: m, To: m, Federation: true})
	if len(rows) != 1 {
		t.Fatalf("%d rows", len(rows))
	}
	f := rows[0]
	var ev, pop, w []float64
	for b := range formats.NumBands {
		ev = append(ev, float64(truthEvents["P0"][b]+truthEvents["P1"][b]))
		pop = append(pop, float64(truthList["P0"][b]+truthList["P1"][b]))
		w = append(w, formats.ESP2013[formats.AgeBands[b]])
	}
	truth, err := stats.DirectlyStandardised(ev, pop, w, 1000, stats.Conf95)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("true DSR %.1f; shown %.1f, between %.1f and %v (partial %v)", truth.Rate, *f.DSR, *f.DSRAtLower, deref(f.DSRAtUpper), f.DSRPartial)
	if !f.DSRPartial || f.DSRAtUpper == nil || truth.Rate < *f.DSRAtLower || truth.Rate > *f.DSRAtUpper {
		t.Errorf("the true DSR %.1f is not within %v..%v, or the DSR is not marked partial: %+v", truth.Rate, *f.DSRAtLower, deref(f.DSRAtUpper), f)
	}
	if f.ListLower == nil || *f.ListLower >= *f.ListUpper {
		t.Errorf("the list size's bounds do not carry the suppressed bands: %v..%v", deref(f.ListLower), deref(f.ListUpper))
	}
}

// TestNoRateWithoutEveryListSize: a practice that supplies a measure but no list size must
// not leave the federation's rate divided by the other practices' lists alone.
func TestNoRateWithoutEveryListSize(t *testing.T) {
	pol := formats.PolicyUK
	e := New(pol, pol.SuppressMax, []string{formats.RegisteredPatients, formats.Admissions})
	m := formats.MonthFor(2024, 1)
	for i, withList := range []bool{true, false} {
		p := e.NewPractice(fmt.Sprintf("P%d", i))
		measures := []int{1}
		if withList {
			measures = append(measures, 0)
		}
		for _, mi := range measures {
			vals := p.Values(formats.MonthPeriod(m), mi)
			n := map[int]int64{0: 1000, 1: 20}[mi]
			for shape := range formats.NumShapes {
				v := int64(0)
				if shape == formats.TotalShape || shape == formats.SexShape(0) || shape == formats.BandShape(5) || shape == formats.FineShape(5, 0) {
					v = n
				}
				vals[shape], _ = ValueOf(pol.Apply(v))
			}
		}
		e.Add(p)
	}
	e.Finish()
	f := e.Figures(&Query{Measures: []int{1}, From: m, To: m, Federation: true})[0]
	if f.Rate != nil || f.RateLower != nil || f.ListSize != nil || f.DSR != nil || f.Note == "" {
		t.Errorf("a rate over a short denominator: %+v", f)
	}
}

// TestWithheldQuarterAnsweredByItsMonths: where the audit withheld a practice's quarter total
// but published its months' totals, the quarter's figure is no wider than the months'
// totals together (the demo's 2024-Q4 admissions read 153-659 from the quarter's mostly
// suppressed cells where the months gave 359-371), and it holds the truth.
func TestWithheldQuarterAnsweredByItsMonths(t *testing.T) {
	w := newWorld(t, 5, 40, formats.PolicyUK)
	found := 0
	for _, id := range w.e.IDs() {
		p := w.e.Practice(id)
		for _, per := range p.Periods() {
			if per.Kind != formats.KindQuarter {
				continue
			}
			for mi := range w.e.Measures {
				q := p.Get(per, mi)
				if q == nil || q[formats.TotalShape].Status != Withheld {
					continue
				}
				var width int64
				published := true
				for _, sub := range subPeriods(per) {
					m := p.Get(sub, mi)
					if m == nil || m[formats.TotalShape].Status == Withheld {
						published = false
						break
					}
					width += int64(m[formats.TotalShape].Upper - m[formats.TotalShape].Lower)
				}
				if !published {
					continue
				}
				found++
				rows := w.e.Figures(&Query{From: per.Start, To: per.End(), Measures: []int{mi}, ByPractice: true, Practices: []string{id}})
				if len(rows) != 1 {
					t.Fatalf("%s %s: %d rows", id, per, len(rows))
				}
				f := rows[0]
				if f.Upper-f.Lower > width {
					t.Errorf("%s %s %s: bounds %d-%d are wider than its months' published totals allow (%d)", id, per, w.e.Measures[mi], f.Lower, f.Upper, width)
				}
				truth := w.trueSum(id, mi, span{from: per.Start, to: per.End()})
				if truth < f.Lower || truth > f.Upper {
					t.Errorf("%s %s %s: the truth %d is outside %d-%d", id, per, w.e.Measures[mi], truth, f.Lower, f.Upper)
				}
			}
		}
	}
	if found < 5 {
		t.Fatalf("only %d withheld quarter totals with published months; the test needs more", found)
	}
	t.Logf("%d withheld quarter totals answered from their months", found)
}
