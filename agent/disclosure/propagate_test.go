package disclosure

import (
	"math/rand/v2"
	"testing"

	"github.com/tributary-health/tributary/formats"
)

// testFamily builds the audit's model of t (one family: all of t's measures) with the
// month buckets propagated.
func testFamily(t *testing.T, tb *Table) *family {
	t.Helper()
	p := Apply(tb, formats.PolicyUK)
	meas := make([]int, len(tb.Measures))
	for i := range meas {
		meas[i] = i
	}
	f := newFamily(tb, formats.PolicyUK, p.Periods, meas, &p.Stats)
	if !f.canonical() || !f.initPropagation() {
		t.Fatal("the table breaks the relations")
	}
	return f
}

func (f *family) groupOf(t *testing.T, fm int, per formats.Period, shape int) int32 {
	t.Helper()
	for pi, p := range f.periods {
		if p == per {
			if g := f.valGrp[f.valueIndex(fm, pi, shape)]; g >= 0 {
				return g
			}
		}
	}
	t.Fatalf("no group for %s shape %d", per, shape)
	return -1
}

// TestPropagationProofs: the worked example across time. Months 8, 8 and 1 of one cell
// publish as 10, 10 and suppressed. The quarter's bucket 8-12 is infeasible (the months sum
// to 17 at least); in 13-17 the third month is pinned at 1 (17-8-8); in 18-22 nothing is
// pinned. The audit never counts the infeasible bucket as bad: it is no possible outcome.
func TestPropagationProofs(t *testing.T) {
	jan := formats.MonthFor(2024, 1)
	ex := example{jan, jan + 2, []cellRef{{jan, 8, 0}, {jan + 1, 8, 0}, {jan + 2, 8, 0}}}
	f := testFamily(t, ex.table([]int64{8, 8, 1}))
	q := f.groupOf(t, 0, formats.Period{Kind: formats.KindQuarter, Start: jan}, formats.FineShape(8, 0))
	if lo, hi := f.prop.pl[q], f.prop.ph[q]; lo != 17 || hi != 31 {
		t.Fatalf("quarter bounds [%d, %d], want [17, 31]", lo, hi)
	}
	for _, c := range []struct {
		b                bucket
		feasible, pinned bool
	}{
		{bucket{8, 12}, false, false},
		{bucket{13, 17}, true, true},
		{bucket{18, 22}, true, false},
		{bucket{28, 32}, true, false},
	} {
		feasible, pinned := f.tryBucket(q, c.b.lo, c.b.hi, false)
		if feasible != c.feasible || pinned != c.pinned {
			t.Errorf("quarter in %v: feasible %v pinned %v, want %v %v", c.b, feasible, pinned, c.feasible, c.pinned)
		}
	}
	// tryBucket leaves the bounds as it found them.
	if lo, hi := f.prop.pl[q], f.prop.ph[q]; lo != 17 || hi != 31 {
		t.Fatalf("quarter bounds [%d, %d] after tryBucket, want [17, 31]", lo, hi)
	}
	// Months 8, 1 and 2: the quarter (11) publishes as 10. Its lower neighbour 1-7 is
	// infeasible (the months sum to 10 at least) and is no possible outcome, so it does
	// not count; nothing is pinned in 8-12 or 13-17.
	ex2 := example{jan, jan + 2, []cellRef{{jan, 8, 0}, {jan + 1, 8, 0}, {jan + 2, 8, 0}}}
	pub, err := Audit(ex2.table([]int64{8, 1, 2}), formats.PolicyUK)
	if err != nil {
		t.Fatal(err)
	}
	for pi, p := range pub.Periods {
		if p.Kind == formats.KindQuarter {
			if v := pub.Value(0, pi, formats.FineShape(8, 0)); v.Status == formats.StatusWithheld {
				t.Errorf("months 8, 1, 2: the quarter is withheld (%+v)", pub.Stats)
			}
		}
	}
}

// TestPropagationIsSound: propagation only ever proves what holds. For small families it
// enumerates every table whose cells lie in their month buckets and that satisfies the
// relations and a random set of published values, and requires every such table to lie
// within the propagated bounds of every group; and, for every group and bucket, that a
// bucket propagation calls infeasible holds no such table, and a group it calls pinned
// takes one value only over the tables of the bucket. A propagation that wrongly called a
// feasible bucket infeasible would fail here.
func TestPropagationIsSound(t *testing.T) {
	jan := formats.MonthFor(2024, 1)
	r := rand.New(rand.NewPCG(3, 4))
	type cell struct {
		fm    int
		month formats.Month
		fine  int
	}
	adm := []string{formats.Admissions, formats.AdmissionsEmergency, formats.AdmissionsElective, formats.PatientsAdmittedEmergency}
	families := []struct {
		name     string
		to       formats.Month
		measures []string
		cells    []cell
		valid    func([]int64) bool
	}{
		{"2 months x 2 sexes", jan + 1, []string{formats.AEAttendances}, []cell{
			{0, jan, formats.FineShape(8, 0)}, {0, jan, formats.FineShape(8, 1)},
			{0, jan + 1, formats.FineShape(8, 0)}, {0, jan + 1, formats.FineShape(8, 1)}}, nil},
		{"1 month, 2 bands x 2 sexes", jan, []string{formats.AEAttendances}, []cell{
			{0, jan, formats.FineShape(8, 0)}, {0, jan, formats.FineShape(8, 1)},
			{0, jan, formats.FineShape(9, 0)}, {0, jan, formats.FineShape(9, 1)}}, nil},
		{"admissions family, 1 cell", jan, adm, []cell{
			{0, jan, formats.FineShape(8, 0)}, {1, jan, formats.FineShape(8, 0)},
			{2, jan, formats.FineShape(8, 0)}, {3, jan, formats.FineShape(8, 0)}},
			func(v []int64) bool { return v[0] >= v[1]+v[2] && v[3] <= v[1] }},
	}
	for _, fam := range families {
		t.Run(fam.name, func(t *testing.T) {
			for trial := range 40 {
				truth := make([]int64, len(fam.cells))
				for {
					for i := range truth {
						truth[i] = 1 + r.Int64N(14)
					}
					if fam.valid == nil || fam.valid(truth) {
						break
					}
				}
				build := func(vals []int64) *Table {
					tb := NewTable(jan, fam.to, fam.measures)
					for i, c := range fam.cells {
						tb.Set(c.fm, c.month, c.fine, vals[i])
					}
					return tb
				}
				f := testFamily(t, build(truth))
				// Publish a random half of the groups in their true buckets.
				for g := range f.gCells {
					if r.IntN(2) == 0 {
						b := bucketOf(f.pol, f.gTrue[g])
						f.gs[g].lo, f.gs[g].hi = max(f.gs[g].lo, b.lo), min(f.gs[g].hi, b.hi)
						f.narrowState(int32(g), b.lo, b.hi)
					}
				}
				// Every table with each cell in its month bucket, the relations, and every
				// group within what is decided.
				var tables [][]int64
				vals := make([]int64, len(fam.cells))
				var rec func(k int)
				rec = func(k int) {
					if k == len(vals) {
						if fam.valid != nil && !fam.valid(vals) {
							return
						}
						for g, cells := range f.gCells {
							if s := sumOf(cells, vals); s < f.gs[g].lo || s > f.gs[g].hi {
								return
							}
						}
						tables = append(tables, append([]int64(nil), vals...))
						return
					}
					b := bucketOf(f.pol, truth[k])
					for v := b.lo; v <= b.hi; v++ {
						vals[k] = v
						rec(k + 1)
					}
				}
				rec(0)
				if len(tables) == 0 {
					t.Fatalf("trial %d: the truth itself is not consistent", trial)
				}
				for _, tb := range tables {
					for g, cells := range f.gCells {
						if s := sumOf(cells, tb); s < f.prop.pl[g] || s > f.prop.ph[g] {
							t.Fatalf("trial %d: table %v puts group %d at %d, outside its propagated bounds [%d, %d]", trial, tb, g, s, f.prop.pl[g], f.prop.ph[g])
						}
					}
				}
				for g, cells := range f.gCells {
					for b := bucketOf(f.pol, max(1, f.prop.pl[g]-10)); b.lo <= f.prop.ph[g]+10; b = f.next(b) {
						var in [][]int64
						for _, tb := range tables {
							if s := sumOf(cells, tb); s >= b.lo && s <= b.hi {
								in = append(in, tb)
							}
						}
						feasible, pinned := f.tryBucket(int32(g), b.lo, b.hi, false)
						if !feasible && len(in) > 0 {
							t.Fatalf("trial %d: group %d in %v called infeasible, but %d tables put it there, e.g. %v", trial, g, b, len(in), in[0])
						}
						if !pinned || len(in) == 0 {
							continue
						}
						// Some protected group is constant over the bucket's tables.
						found := false
						for _, w := range f.protIDs {
							vs := map[int64]bool{}
							for _, tb := range in {
								vs[sumOf(f.gCells[w], tb)] = true
							}
							found = found || len(vs) == 1
						}
						if !found {
							t.Fatalf("trial %d: group %d in %v: propagation reports a pin that the tables do not show", trial, g, b)
						}
					}
				}
			}
		})
	}
}

// sumOf is the sum of free cells cells in the table vals: the test's cells are all
// non-zero, listed in measure, month and fine cell order, so free cell i is vals[i].
func sumOf(cells []int32, vals []int64) int64 {
	var s int64
	for _, c := range cells {
		s += vals[c]
	}
	return s
}
