package disclosure

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/tributary-health/tributary/formats"
)

// cellRef is one base cell of a test table.
type cellRef struct {
	month     formats.Month
	band, sex int
}

// example is a one-measure practice whose only non-zero cells are cells.
type example struct {
	from, to formats.Month
	cells    []cellRef
}

func (e example) table(vals []int64) *Table {
	t := NewTable(e.from, e.to, []string{formats.AEAttendances})
	for i, c := range e.cells {
		t.Set(0, c.month, formats.FineShape(c.band, c.sex), vals[i])
	}
	return t
}

// possible returns the true values of cell i over every table with cells in 0..top that
// publishes exactly as truth does (statuses, counts and bounds of every value).
func (e example) possible(t *testing.T, truth []int64, i int, top int64, publish func(*Table) *Published) []int64 {
	t.Helper()
	want := publish(e.table(truth)).Values
	var out []int64
	vals := make([]int64, len(e.cells))
	var rec func(k int)
	rec = func(k int) {
		if k == len(vals) {
			if slices.Equal(publish(e.table(vals)).Values, want) && !slices.Contains(out, vals[i]) {
				out = append(out, vals[i])
			}
			return
		}
		for v := int64(0); v <= top; v++ {
			vals[k] = v
			rec(k + 1)
		}
	}
	rec(0)
	slices.Sort(out)
	return out
}

func audited(t *testing.T) func(*Table) *Published {
	return func(tb *Table) *Published {
		p, err := Audit(tb, formats.PolicyUK)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
}

func plain(tb *Table) *Published { return Apply(tb, formats.PolicyUK) }

// TestWorkedExamples: the two examples of formats/README.md. Published on its own, each
// value of the file pins a suppressed count (unknown = margin - female - male <= 22-13-8 =
// 1; the third month = quarter - the other two <= 17-8-8 = 1). With the audit the file
// withholds something and the count can take several values.
func TestWorkedExamples(t *testing.T) {
	jan := formats.MonthFor(2024, 1)
	band := 8
	for _, c := range []struct {
		name  string
		ex    example
		truth []int64
		top   int64
	}{
		{"13/8/1 in one band", example{jan, jan, []cellRef{{jan, band, 0}, {jan, band, 1}, {jan, band, 2}}}, []int64{13, 8, 1}, 17},
		{"8, 8, 1 over a quarter", example{jan, jan + 2, []cellRef{{jan, band, 0}, {jan + 1, band, 0}, {jan + 2, band, 0}}}, []int64{8, 8, 1}, 17},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := c.ex.possible(t, c.truth, 2, c.top, plain); !slices.Equal(got, []int64{1}) {
				t.Fatalf("without the audit the suppressed count can be %v; the example should pin it at 1", got)
			}
			pub := audited(t)(c.ex.table(c.truth))
			if pub.Stats.Withheld == 0 {
				t.Fatal("the audit withheld nothing")
			}
			got := c.ex.possible(t, c.truth, 2, c.top, audited(t))
			if len(got) < 2 {
				t.Fatalf("with the audit the suppressed count can only be %v", got)
			}
			t.Logf("with the audit: %d value(s) withheld; the suppressed count can be any of %v", pub.Stats.Withheld, got)
		})
	}
}

// TestAuditKeepsWhatItPublishes: every value the audit does not withhold is what Apply
// publishes, and month fine cells are never withheld; the same table always gives the same
// publication.
func TestAuditKeepsWhatItPublishes(t *testing.T) {
	tb := syntheticPractice(7, 800, formats.MonthFor(2024, 1), formats.MonthFor(2024, 3))
	plainPub := Apply(tb, formats.PolicyUK)
	pub, err := Audit(tb, formats.PolicyUK)
	if err != nil {
		t.Fatal(err)
	}
	for mi := range tb.Measures {
		for pi, p := range pub.Periods {
			for s := range formats.NumShapes {
				v := pub.Value(mi, pi, s)
				if v.Status == formats.StatusWithheld {
					if p.Kind == formats.KindMonth && formats.IsFineShape(s) {
						t.Fatalf("%s %s shape %d: a month fine cell was withheld", p, tb.Measures[mi], s)
					}
					continue
				}
				if w := plainPub.Value(mi, pi, s); v != w {
					t.Fatalf("%s %s shape %d: audit published %+v, the policy %+v", p, tb.Measures[mi], s, v, w)
				}
			}
		}
	}
	again, err := Audit(tb, formats.PolicyUK)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(pub.Values, again.Values) {
		t.Fatal("two audits of the same table differ")
	}
	t.Logf("%+v", pub.Stats)
}

// TestErrorsCarryNoCount: when the audit refuses a table, its error names the measure (and
// the period) and never a count.
func TestErrorsCarryNoCount(t *testing.T) {
	jan := formats.MonthFor(2024, 3)
	measures := []string{formats.Admissions, formats.AdmissionsEmergency}
	tb := NewTable(jan, jan, measures)
	// More emergency admissions than admissions: data no aggregation produces.
	tb.Set(0, jan, formats.FineShape(4, 1), 3)
	tb.Set(1, jan, formats.FineShape(4, 1), 41)
	tb.Set(0, jan, formats.FineShape(5, 1), 6)
	_, err := Audit(tb, formats.PolicyUK)
	if err == nil {
		t.Fatal("a table breaking the relations must be refused")
	}
	msg := err.Error()
	if !strings.Contains(msg, formats.Admissions) {
		t.Errorf("error %q does not name the measure", msg)
	}
	for _, n := range regexp.MustCompile(`\d+`).FindAllString(msg, -1) {
		if n != "2024" && n != "03" {
			t.Errorf("error %q carries a number %s", msg, n)
		}
	}
}

// TestNoProtectedNoWork: a table with no small count is published as Apply publishes it,
// untouched.
func TestNoProtectedNoWork(t *testing.T) {
	jan := formats.MonthFor(2024, 1)
	tb := NewTable(jan, jan+11, []string{formats.RegisteredPatients})
	for m := jan; m <= jan+11; m++ {
		for f := range formats.NumFine {
			tb.Set(0, m, f, 100+int64(f))
		}
	}
	pub, err := Audit(tb, formats.PolicyUK)
	if err != nil || pub.Stats.Withheld != 0 || pub.Stats.Decided != 0 || !slices.Equal(pub.Values, Apply(tb, formats.PolicyUK).Values) {
		t.Fatalf("%v %+v", err, pub.Stats)
	}
}
