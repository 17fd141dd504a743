package figures

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/tributary-health/tributary/formats"
)

// secureTotal is what the holders would publish for month m over the given practices: every
// shape of the exact sum through the policy once.
func (w *world) secureTotal(pol formats.Policy, m formats.Month, mi int, practices []string) *[formats.NumShapes]formats.Protected {
	out := new([formats.NumShapes]formats.Protected)
	for shape := range formats.NumShapes {
		var sum int64
		for _, id := range practices {
			if cells := w.truth[id][m]; cells != nil {
				formats.ShapeCells(shape, func(f int) { sum += cells[mi][f] })
			}
		}
		out[shape] = pol.Apply(sum)
	}
	return out
}

// TestSecureTotalsReplaceOnlyTheSamePractices: a month's secure total replaces the
// federation's figures (every shape, every breakdown) only where its practices are exactly
// those that published the month; its bounds hold the truth and are the final rounding's;
// published_sum, practice rows and practice comparison stay the practices' own. A total
// over other practices (here, counting practices that skipped the month) is not used, and
// the rows say why; a span mixing both says how much is secure.
func TestSecureTotalsReplaceOnlyTheSamePractices(t *testing.T) {
	pol := formats.DefaultPolicy
	w := newWorld(t, 3, 15, pol)
	e := w.e
	used, skipped := w.months[1], w.months[4] // months[4] is skipped by practices i%5 == 2
	all := slices.Clone(e.IDs())
	var published []string
	for _, id := range all {
		if w.truth[id][used] != nil {
			published = append(published, id)
		}
	}
	if len(published) != len(all) || len(w.truth["P002"][skipped]) != 0 {
		t.Fatal("the world's months are not as this test expects")
	}
	before := e.Figures(&Query{From: used, To: skipped, ByMonth: true, ByBand: true, Federation: true})
	cmpBefore := e.Compare(&Query{From: used, To: used}, 1, nil, nil)
	var totals []SecureTotal
	for mi, name := range e.Measures {
		totals = append(totals,
			SecureTotal{Period: formats.MonthPeriod(used), Measure: name, Round: "R1", Practices: published, Values: w.secureTotal(pol, used, mi, published)},
			SecureTotal{Period: formats.MonthPeriod(skipped), Measure: name, Round: "R1", Practices: all, Values: w.secureTotal(pol, skipped, mi, all)})
	}
	e.SetSecure(totals, nil)
	e.Finish()

	after := e.Figures(&Query{From: used, To: skipped, ByMonth: true, ByBand: true, Federation: true})
	if len(after) != len(before) {
		t.Fatalf("%d rows with secure totals, %d without", len(after), len(before))
	}
	for i, f := range after {
		m, _ := formats.ParseMonth(f.Period)
		mi, _ := e.MeasureIndex(f.Measure)
		b := slices.Index(formats.AgeBands, f.AgeBand)
		truth := w.trueSum("", mi, span{from: m, to: m, bands: []int{b}})
		if f.Lower > truth || f.Upper < truth {
			t.Errorf("%s %s %s: [%d, %d] does not hold the truth %d", f.Period, f.Measure, f.AgeBand, f.Lower, f.Upper, truth)
		}
		if f.PublishedSum != before[i].PublishedSum {
			t.Errorf("%s %s %s: published_sum %d, the practices' sum is %d", f.Period, f.Measure, f.AgeBand, f.PublishedSum, before[i].PublishedSum)
		}
		switch m {
		case used:
			want := pol.Apply(truth)
			if !f.Secure || f.Method != MethodSecure || f.Lower != want.Lower || f.Upper != want.Upper ||
				(want.Status == formats.StatusRounded && (f.Count == nil || *f.Count != want.Count)) {
				t.Errorf("%s %s %s: %+v, want the secure value %+v", f.Period, f.Measure, f.AgeBand, f, want)
			}
		case skipped:
			if f.Secure || !strings.Contains(f.Note, "not used") || !strings.Contains(f.Note, "it counts P002") {
				t.Errorf("%s %s %s: method %s, note %q; want the practices' sum, noting the practices differ", f.Period, f.Measure, f.AgeBand, f.Method, f.Note)
			}
			f.Note = before[i].Note
			if a, b := asJSON(f), asJSON(before[i]); a != b {
				t.Errorf("%s %s %s changed without a secure total: %s, was %s", f.Period, f.Measure, f.AgeBand, a, b)
			}
		}
	}
	uses := e.SecureUses()
	if len(uses) != 2*len(e.Measures) || !uses[0].Used || uses[len(uses)-1].Used {
		t.Errorf("uses: %+v", uses)
	}
	// Both months in one row: half secure, said so.
	span := e.Figures(&Query{Measures: []int{1}, From: used, To: used + 3, Federation: true})
	if len(span) != 1 || span[0].Secure || !strings.Contains(span[0].Note, "1 of its 4 parts from the holders' secure totals") {
		t.Errorf("a span of a secure month and three others: %+v", span)
	}
	for _, f := range e.Figures(&Query{From: used, To: used, ByPractice: true}) {
		if f.Secure || f.Method == MethodSecure {
			t.Errorf("practice %s's figure is marked secure", f.Practice)
		}
	}
	cmpAfter := e.Compare(&Query{From: used, To: used}, 1, nil, nil)
	if *cmpAfter.FederationRate != *cmpBefore.FederationRate {
		t.Errorf("practice comparison's federation rate moved from %v to %v with secure totals", *cmpBefore.FederationRate, *cmpAfter.FederationRate)
	}
}

func asJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
