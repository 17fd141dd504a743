package aggregate

import (
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tributary-health/tributary/agent/disclosure"
	"github.com/tributary-health/tributary/formats"
)

// bfCell is one base cell a brute-force family varies.
type bfCell struct {
	measure string
	month   formats.Month
	band    int
	sex     int
}

// bfFamily is a small practice: every cell outside cells is zero, which the file publishes
// exactly, so those cells constrain nothing and the enumeration covers every table an
// attacker could consider.
type bfFamily struct {
	name     string
	from, to formats.Month
	measures []string
	cells    []bfCell
	top      int64              // each cell takes 0..top
	valid    func([]int64) bool // relations between the cells (nil: none)
	pol      formats.Policy
}

func month(y int, m time.Month) formats.Month { return formats.MonthFor(y, m) }

// bfFamilies are the families the federation asked for.
func bfFamilies() []bfFamily {
	jan := month(2024, 1)
	band := 8 // 40-44
	var out []bfFamily
	// (a) one month, one band, three sexes.
	a := bfFamily{name: "a: 1 month, 1 band x 3 sexes, 0..14", from: jan, to: jan, measures: []string{formats.AEAttendances}, top: 14, pol: formats.PolicyUK}
	for x := range 3 {
		a.cells = append(a.cells, bfCell{formats.AEAttendances, jan, band, x})
	}
	out = append(out, a)
	// (a') the same under midpoint-6.
	a6 := a
	a6.name, a6.top, a6.pol = "a6: as a, midpoint-6, 0..12", 12, formats.PolicyMidpoint6
	out = append(out, a6)
	// (b) one month, two bands x two sexes. 0..12 rather than 0..11, so that the bucket
	// 8-12 is wholly enumerated.
	b := bfFamily{name: "b: 1 month, 2 bands x 2 sexes, 0..12", from: jan, to: jan, measures: []string{formats.AEAttendances}, top: 12, pol: formats.PolicyUK}
	for _, bb := range []int{band, band + 1} {
		for x := range 2 {
			b.cells = append(b.cells, bfCell{formats.AEAttendances, jan, bb, x})
		}
	}
	out = append(out, b)
	// (c) one cell over the three months of a quarter; 0..22 so that 18-22 is whole.
	c := bfFamily{name: "c: 1 cell x 3 months of a quarter, 0..22", from: jan, to: month(2024, 3), measures: []string{formats.AEAttendances}, top: 22, pol: formats.PolicyUK}
	for m := range 3 {
		c.cells = append(c.cells, bfCell{formats.AEAttendances, jan + formats.Month(m), band, 0})
	}
	out = append(out, c)
	// (d) one cell over four months spanning two quarters of a year's run.
	d := bfFamily{name: "d: 1 cell x Feb-May of a 12-month run (year published), 0..12", from: jan, to: month(2024, 12), measures: []string{formats.AEAttendances}, top: 12, pol: formats.PolicyUK}
	for m := 1; m <= 4; m++ {
		d.cells = append(d.cells, bfCell{formats.AEAttendances, jan + formats.Month(m), band, 1})
	}
	out = append(out, d)
	// (e) the admissions family in one cell of one month.
	adm := []string{formats.Admissions, formats.AdmissionsEmergency, formats.AdmissionsElective, formats.PatientsAdmittedEmergency}
	e := bfFamily{name: "e: admissions, emergency, elective, patients in 1 cell of 1 month, 0..12", from: jan, to: jan, measures: adm, top: 12, pol: formats.PolicyUK,
		valid: func(v []int64) bool { return v[0] >= v[1]+v[2] && v[3] <= v[1] }}
	for _, ms := range adm {
		e.cells = append(e.cells, bfCell{ms, jan, band, 0})
	}
	out = append(out, e)
	// (e2) the admissions family in two sexes of one band, one month: margins of every
	// measure beside the relations.
	e2 := bfFamily{name: "e2: admissions family in 1 band x 2 sexes of 1 month, 0..7", from: jan, to: jan, measures: adm, top: 7, pol: formats.PolicyUK,
		valid: func(v []int64) bool {
			return v[0] >= v[2]+v[4] && v[6] <= v[2] && v[1] >= v[3]+v[5] && v[7] <= v[3]
		}}
	for _, ms := range adm {
		for x := range 2 {
			e2.cells = append(e2.cells, bfCell{ms, jan, band, x})
		}
	}
	out = append(out, e2)
	// (f) three months x two sexes in one band.
	f := bfFamily{name: "f: 3 months x 2 sexes in 1 band, 0..7", from: jan, to: month(2024, 3), measures: []string{formats.AEAttendances}, top: 7, pol: formats.PolicyUK}
	for m := range 3 {
		for x := range 2 {
			f.cells = append(f.cells, bfCell{formats.AEAttendances, jan + formats.Month(m), band, x})
		}
	}
	out = append(out, f)
	return out
}

// fileChecks: for this many publications per family, the brute force also
// releases the table for real and reads the file back, to show the file is the
// publication it groups by.
const fileChecks = 200

// bfGroup is every enumerated table with one publication.
type bfGroup struct {
	prot     []bool      // per relevant value: protected in this publication
	seen     [][2]uint64 // per relevant value: the true values that occur (bit n for n)
	checked  [][]int64   // true values of the checked tables' relevant values
	withheld bool
}

// bfResult is what a family's brute force found.
type bfResult struct {
	tables, checkedTables, groups int
	protectedChecks               int         // (checked table, protected value) pairs
	possible                      map[int]int // number of possible true values -> pairs
	pins                          []string    // examples of pinned values
	withheldTables                int         // checked tables whose file withholds something
}

// relevant lists the values whose box holds a varied cell; every other value is a sum of
// zeros, published exactly.
func (fam bfFamily) relevant(periods []formats.Period) (idx [][3]int, members [][]int) {
	for mi, ms := range fam.measures {
		for pi, p := range periods {
			for shape := range formats.NumShapes {
				var in []int
				for ci, c := range fam.cells {
					if c.measure != ms || !p.Contains(c.month) {
						continue
					}
					formats.ShapeCells(shape, func(fine int) {
						if fine == formats.FineShape(c.band, c.sex) {
							in = append(in, ci)
						}
					})
				}
				if len(in) > 0 {
					idx = append(idx, [3]int{mi, pi, shape})
					members = append(members, in)
				}
			}
		}
	}
	return idx, members
}

func (fam bfFamily) result(vals []int64) *Result {
	r := &Result{From: fam.from, To: fam.to, Measures: fam.measures, counts: map[cellKey]int64{}, index: measureIndex}
	for i, c := range fam.cells {
		if vals[i] != 0 {
			r.counts[cellKey{c.month, measureIndex[c.measure], uint8(c.band), uint8(c.sex), 0}] = vals[i]
		}
	}
	return r
}

// sampleEvery: one table in this many is audited afresh even when its pre-audit
// publication was seen before, and must come out the same (see run).
const sampleEvery = 29

// key appends the relevant values of pub to b.
func key(b []byte, pub *disclosure.Published, idx [][3]int) []byte {
	for _, v := range idx {
		b = appendValue(b, pub.Value(v[0], v[1], v[2]))
	}
	return b
}

func appendValue(b []byte, p formats.Protected) []byte {
	b = append(b, p.Status[0])
	b = strconv.AppendInt(b, p.Count, 10)
	b = append(b, ',')
	b = strconv.AppendInt(b, p.Lower, 10)
	b = append(b, ',')
	b = strconv.AppendInt(b, p.Upper, 10)
	return append(b, ';')
}

// bfSide is the grouping of a family's tables by one way of publishing them.
type bfSide struct {
	groups map[string]*bfGroup
	order  []string
}

func (sd *bfSide) add(k []byte, truth []int64, check bool, pub func() (*disclosure.Published, error), idx [][3]int, pol formats.Policy) (*bfGroup, bool, error) {
	grp := sd.groups[string(k)]
	isNew := grp == nil
	if isNew {
		p, err := pub()
		if err != nil {
			return nil, false, err
		}
		grp = &bfGroup{prot: make([]bool, len(idx)), seen: make([][2]uint64, len(idx))}
		for i, v := range idx {
			pv := p.Value(v[0], v[1], v[2])
			grp.prot[i] = pol.Protects(pv)
			grp.withheld = grp.withheld || pv.Status == formats.StatusWithheld
		}
		sd.groups[string(k)] = grp
		sd.order = append(sd.order, string(k))
	}
	for i, n := range truth {
		grp.seen[i][n/64] |= 1 << (n % 64)
	}
	if check {
		grp.checked = append(grp.checked, slices.Clone(truth))
	}
	return grp, isNew, nil
}

// run enumerates every table of the family and groups the tables by their publication,
// without the audit (off) and with it (on).
//
// The audit reads the true table only through what it would publish without the audit:
// the month buckets, and the bucket of each value it decides. So a table whose pre-audit
// publication was seen before is given that publication's audited result, and one table in
// sampleEvery (and the first of each) is audited afresh and must match it exactly: a
// mismatch would mean the audit looked at the truth beyond what it publishes, which is
// what could let the pattern of withheld values leak a count.
func (fam bfFamily) run(t *testing.T) (off, on bfResult) {
	periods := formats.PeriodsOf(fam.from, fam.to)
	idx, members := fam.relevant(periods)
	n := len(fam.cells)
	total := 1
	for range n {
		total *= int(fam.top + 1)
	}
	// A checked table has every cell's whole bucket inside 0..top, so that every table
	// that could share its publication was enumerated.
	inside := func(v int64) bool {
		return v == 0 || fam.pol.Apply(v).Upper <= fam.top
	}
	workers := runtime.GOMAXPROCS(0)
	type part struct {
		off, on      bfSide
		tables, chkd int
		err          error
	}
	parts := make([]part, workers)
	var mu sync.Mutex
	audited := map[string][]byte{} // pre-audit key -> audited key, shared by the workers
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pt := &parts[w]
			pt.off.groups, pt.on.groups = map[string]*bfGroup{}, map[string]*bfGroup{}
			local := map[string][]byte{} // this worker's view of audited
			vals := make([]int64, n)
			truth := make([]int64, len(idx))
			var kOff []byte
			for k := w; k < total; k += workers {
				rest := k
				for i := range n {
					vals[i] = int64(rest % int(fam.top+1))
					rest /= int(fam.top + 1)
				}
				if fam.valid != nil && !fam.valid(vals) {
					continue
				}
				pt.tables++
				for i, ms := range members {
					truth[i] = 0
					for _, ci := range ms {
						truth[i] += vals[ci]
					}
				}
				check := true
				for _, v := range vals {
					check = check && inside(v)
				}
				if check {
					pt.chkd++
				}
				// Without the audit every relevant value is the policy applied to its sum
				// (checked against the real release below, on the first and sampled tables).
				kOff = kOff[:0]
				for _, n := range truth {
					kOff = appendValue(kOff, fam.pol.Apply(n))
				}
				kOn, seen := local[string(kOff)]
				if !seen {
					mu.Lock()
					kOn, seen = audited[string(kOff)]
					mu.Unlock()
					if seen {
						local[string(kOff)] = kOn
					}
				}
				var r *Result
				if !seen || k%sampleEvery == 0 {
					r = fam.result(vals)
					raw, _ := r.publish(fam.pol, false)
					if !slices.Equal(key(nil, raw, idx), kOff) {
						pt.err = fmt.Errorf("table %v: the release without the audit is not the policy applied to each value", vals)
						return
					}
					pub, err := r.publish(fam.pol, true)
					if err != nil {
						pt.err = fmt.Errorf("table %v: %v", vals, err)
						return
					}
					fresh := key(nil, pub, idx)
					if seen && !slices.Equal(fresh, kOn) {
						pt.err = fmt.Errorf("table %v: the audit published differently from another table with the same pre-audit publication: it read the truth beyond its buckets", vals)
						return
					}
					if !seen {
						mu.Lock()
						if prev, ok := audited[string(kOff)]; ok && !slices.Equal(prev, fresh) {
							mu.Unlock()
							pt.err = fmt.Errorf("table %v: the audit published differently from another table with the same pre-audit publication: it read the truth beyond its buckets", vals)
							return
						}
						audited[string(kOff)] = fresh
						local[string(kOff)] = fresh
						nAudited := len(audited)
						mu.Unlock()
						kOn = fresh
						if nAudited <= fileChecks {
							if err := checkFile(r, pub, fam.pol); err != nil {
								pt.err = fmt.Errorf("table %v: %v", vals, err)
								return
							}
						}
					}
				}
				if _, _, err := pt.off.add(kOff, truth, check, func() (*disclosure.Published, error) { return fam.result(vals).publish(fam.pol, false) }, idx, fam.pol); err != nil {
					pt.err = err
					return
				}
				// The audited publication is a function of kOn alone; rebuild it lazily.
				if _, _, err := pt.on.add(kOn, truth, check, func() (*disclosure.Published, error) { return fam.result(vals).publish(fam.pol, true) }, idx, fam.pol); err != nil {
					pt.err = err
					return
				}
			}
		}()
	}
	wg.Wait()
	merge := func(side func(*part) *bfSide) bfResult {
		res := bfResult{possible: map[int]int{}}
		merged := map[string]*bfGroup{}
		var order []string
		for i := range parts {
			pt := &parts[i]
			if pt.err != nil {
				t.Fatal(pt.err)
			}
			sd := side(pt)
			for _, k := range sd.order {
				g := sd.groups[k]
				m := merged[k]
				if m == nil {
					merged[k] = g
					order = append(order, k)
					continue
				}
				for i := range m.seen {
					m.seen[i][0] |= g.seen[i][0]
					m.seen[i][1] |= g.seen[i][1]
				}
				m.checked = append(m.checked, g.checked...)
			}
		}
		for _, pt := range parts {
			res.tables += pt.tables
			res.checkedTables += pt.chkd
		}
		slices.Sort(order)
		res.groups = len(order)
		for _, k := range order {
			g := merged[k]
			if g.withheld {
				res.withheldTables += len(g.checked)
			}
			for i, v := range idx {
				if !g.prot[i] {
					continue
				}
				possible := popcount(g.seen[i])
				for _, tr := range g.checked {
					res.protectedChecks++
					res.possible[possible]++
					if possible < 2 && len(res.pins) < 5 {
						band, sex := formats.ShapeLabels(v[2])
						res.pins = append(res.pins, fmt.Sprintf("%s %s %s %s = %d", periods[v[1]], fam.measures[v[0]], band, sex, tr[i]))
					}
				}
			}
		}
		return res
	}
	return merge(func(p *part) *bfSide { return &p.off }), merge(func(p *part) *bfSide { return &p.on })
}

func popcount(b [2]uint64) int {
	n := 0
	for _, w := range b {
		for ; w != 0; w &= w - 1 {
			n++
		}
	}
	return n
}

// checkFile releases r for real, writes and reads back the file, and requires it to carry
// exactly pub: what the brute force groups by is what leaves the practice.
func checkFile(r *Result, pub *disclosure.Published, pol formats.Policy) error {
	sub, err := r.Release("P1", "20240101T000000Z-00000000", []string{"bf@1"}, pol)
	if err != nil {
		return err
	}
	data, err := formats.MarshalSubmission(sub)
	if err != nil {
		return err
	}
	back, err := formats.ReadSubmission(data, formats.DefaultLimits)
	if err != nil {
		return err
	}
	mi := map[string]int{}
	for i, m := range r.Measures {
		mi[m] = i
	}
	pi := map[formats.Period]int{}
	for i, p := range pub.Periods {
		pi[p] = i
	}
	if len(back.Cells) != len(pub.Values) {
		return fmt.Errorf("file has %d values, the publication %d", len(back.Cells), len(pub.Values))
	}
	for _, c := range back.Cells {
		if want := pub.Value(mi[c.Measure], pi[c.Period], formats.ShapeIndex(c.AgeBand, c.Sex)); c.Protected != want {
			return fmt.Errorf("%s %s %s %s: file has %+v, publication %+v", c.Period, c.Measure, c.AgeBand, c.Sex, c.Protected, want)
		}
	}
	return nil
}

func (r bfResult) narrowing() string {
	var keys []int
	for k := range r.possible {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		label := fmt.Sprint(k)
		fmt.Fprintf(&b, " %s: %.1f%%", label, 100*float64(r.possible[k])/float64(max(1, r.protectedChecks)))
	}
	return b.String()
}

// TestNoSuppressedValueIsRecoverable attacks the practice file by brute force. For each
// family of small practices it enumerates every true table of a small sub-grid (all other
// cells zero), releases each through the real release and audit, and groups the tables by
// their complete publication: every value with its status, count and bounds. An attacker
// who sees a file knows only that the truth is one of its group (and knows the relations
// between the admission measures, which the enumeration respects). For every table whose
// cells' buckets lie wholly inside the enumerated range, and every value its file publishes
// that the policy protects, the group must hold at least two different true values of it.
//
// The same families without the audit must show pins, so the test can fail and the audit
// is seen to be what protects. The figures it logs (residual narrowing: for a protected
// value, how many true values remain possible) are the ones quoted in formats/README.md.
func TestNoSuppressedValueIsRecoverable(t *testing.T) {
	for _, fam := range bfFamilies() {
		t.Run(strings.SplitN(fam.name, ":", 2)[0], func(t *testing.T) {
			if testing.Short() && len(fam.cells) >= 6 {
				t.Skip("large family; run without -short")
			}
			t.Parallel()
			off, on := fam.run(t)
			t.Logf("%s: %d tables, %d checked, %d publications with the audit", fam.name, on.tables, on.checkedTables, on.groups)
			t.Logf("  without audit: %d protected values checked, %d pinned (%.2f%%)", off.protectedChecks, off.possible[1], 100*float64(off.possible[1])/float64(max(1, off.protectedChecks)))
			t.Logf("  with audit:    %d protected values checked; possible true values:%s", on.protectedChecks, on.narrowing())
			t.Logf("  with audit:    %d of %d checked tables (%.1f%%) have something withheld", on.withheldTables, on.checkedTables, 100*float64(on.withheldTables)/float64(max(1, on.checkedTables)))
			if on.protectedChecks == 0 {
				t.Fatal("no protected value was checked")
			}
			if len(on.pins) > 0 {
				t.Errorf("with the audit, %d protected values are pinned, e.g. %v", on.possible[1], on.pins)
			}
			if fam.expectPins() && off.possible[1] == 0 {
				t.Errorf("without the audit no value is pinned: the family does not exercise the audit")
			}
		})
	}
}

// expectPins reports whether the family, published without the audit, pins something. The
// admissions family in one cell has no margins beyond the cell itself, and the relations
// alone never pin a suppressed count; under midpoint-6 no sum of three published values
// pins one (its blocks are six wide and its published values sit mid-block).
func (fam bfFamily) expectPins() bool {
	return !strings.HasPrefix(fam.name, "e:") && fam.pol.Name != formats.PolicyMidpoint6.Name
}
