package holder

import (
	"slices"
	"sync"
	"testing"

	"github.com/tributary-health/tributary/coordinator/secure"
	"github.com/tributary-health/tributary/formats"
)

func mustRound(t *testing.T, f *testFed, o LeadOptions) (*Result, *Result) {
	t.Helper()
	lead, lerr, help, herr := f.round(o)
	if lerr != nil || herr != nil {
		t.Fatalf("round: leader %v; helper %v", lerr, herr)
	}
	return lead, help
}

// TestSecureTotalsAreExact: at the leader, in memory, the securely aggregated federation
// cells of every month equal the exact sum of the practices' true counts; after disclosure
// control every published monthly federation total is within 2 of the truth, and its bounds
// hold it.
func TestSecureTotalsAreExact(t *testing.T) {
	from, to := formats.MonthFor(2024, 1), formats.MonthFor(2024, 6)
	f := newTestFed(t, 5, from, to)
	for _, p := range f.practices {
		f.upload(p, uploadOptions{})
	}
	var mu sync.Mutex
	exact := map[formats.Month][]uint64{}
	published := map[formats.Month][]string{}
	lead, help := mustRound(t, f, LeadOptions{Exact: func(month formats.Month, measures []string, cells []uint64) {
		mu.Lock()
		defer mu.Unlock()
		exact[month], published[month] = cells, measures
	}})
	if len(lead.Rejected) != 0 || len(help.Rejected) != 0 {
		t.Fatalf("rejected: %+v %+v", lead.Rejected, help.Rejected)
	}
	for m := from; m <= to; m++ {
		if !slices.Equal(published[m], formats.Measures) {
			t.Fatalf("%s: published %v, want every measure", m, published[m])
		}
		want := exactTotal(f.practices, m)
		if !slices.Equal(exact[m], want) {
			for i := range want {
				if exact[m][i] != want[i] {
					t.Fatalf("%s cell %d (%s): securely aggregated %d, the practices' true counts sum to %d", m, i, formats.Measures[i/formats.NumFine], exact[m][i], want[i])
				}
			}
		}
	}
	figs := f.published()
	if len(figs.Problems) != 0 || len(figs.Rounds) != 1 {
		t.Fatalf("published rounds %+v, problems %+v", figs.Rounds, figs.Problems)
	}
	checked := 0
	for m := from; m <= to; m++ {
		want := exactTotal(f.practices, m)
		for li, measure := range formats.Measures {
			var truth int64
			for fine := range formats.NumFine {
				truth += int64(want[li*formats.NumFine+fine])
			}
			v := figs.Values[formats.MonthPeriod(m)][measure][formats.TotalShape]
			if v.Lower > truth || v.Upper < truth {
				t.Errorf("%s %s: bounds [%d, %d] miss the truth %d", m, measure, v.Lower, v.Upper, truth)
			}
			if v.Status == formats.StatusRounded && (v.Count < truth-2 || v.Count > truth+2) {
				t.Errorf("%s %s: published %d, truth %d: more than 2 apart", m, measure, v.Count, truth)
			}
			if v.Status != formats.StatusRounded && truth > 7 {
				t.Errorf("%s %s: total %d published as %s", m, measure, truth, v.Status)
			}
			if n := figs.Practices[m][measure]; n != len(f.practices) {
				t.Errorf("%s %s: %d practices recorded, want %d", m, measure, n, len(f.practices))
			}
			checked++
		}
	}
	// Quarters and the half-year's quarters come from the same round.
	for _, q := range []formats.Period{formats.QuarterOf(from), formats.QuarterOf(from + 3)} {
		if figs.Values[q][formats.Admissions] == nil {
			t.Errorf("no secure value of %s", q)
		}
	}
	t.Logf("%d monthly federation totals within 2 of the truth; %d months published", checked, len(lead.Months))
	for _, r := range lead.Months {
		if len(r.Practices) != 5 || len(r.Withheld) != 0 {
			t.Errorf("month record %+v", r)
		}
	}
	_ = secure.Practice
}
