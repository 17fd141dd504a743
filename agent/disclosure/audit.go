package disclosure

import (
	"fmt"
	"runtime"
	"slices"
	"sync"

	"github.com/tributary-health/tributary/formats"
)

// Audit publishes t under pol (Apply) and then withholds margins and quarter or year values
// until no value the policy protects can be recovered exactly from the rest of the file.
// Month fine cells are never withheld. The error, if any, names a measure and a period and
// never a count.
func Audit(t *Table, pol formats.Policy) (*Published, error) {
	p := Apply(t, pol)
	if p.Stats.Protected == 0 {
		return p, nil // nothing small is published, so nothing can be pinned
	}
	// Families share no cell, relation or value, so they are audited side by side, each
	// writing only its own measures' values and its own stats: the result is the same as one
	// after another, whatever the order they finish in. The first family's error in family
	// order is the one returned, as before.
	fams := families(t.Measures)
	errs := make([]error, len(fams))
	stats := make([]Stats, len(fams))
	next := make(chan int, len(fams))
	for i := range fams {
		next <- i
	}
	close(next)
	var wg sync.WaitGroup
	for range min(len(fams), runtime.GOMAXPROCS(0)) {
		wg.Go(func() {
			for i := range next {
				errs[i] = auditFamily(t, pol, p, fams[i], &stats[i])
			}
		})
	}
	wg.Wait()
	for i := range fams {
		if errs[i] != nil {
			return nil, errs[i]
		}
		p.Stats.Withheld += stats[i].Withheld
		p.Stats.Decided += stats[i].Decided
		p.Stats.Slices += stats[i].Slices
		p.Stats.Searches += stats[i].Searches
		p.Stats.Nodes += stats[i].Nodes
	}
	p.Stats.Protected = 0
	for _, v := range p.Values {
		if pol.Protects(v) {
			p.Stats.Protected++
		}
	}
	return p, nil
}

// families groups measures (indexes into measures) that the audit must consider together:
// the admissions measures, linked cell by cell by admissions >= emergency + elective and
// patients admitted in emergency <= emergency admissions; every other measure alone.
func families(measures []string) [][]int {
	var adm []int
	var out [][]int
	for i, m := range measures {
		switch m {
		case formats.Admissions, formats.AdmissionsEmergency, formats.AdmissionsElective, formats.PatientsAdmittedEmergency:
			if adm == nil {
				out = append(out, nil) // the family's place: where its first measure is
			}
			adm = append(adm, i)
		default:
			out = append(out, []int{i})
		}
	}
	for i := range out {
		if out[i] == nil {
			out[i] = adm
		}
	}
	return out
}

// auditOrder is the order in which the audit decides values, as (period kind, shape kind)
// classes: the ones the federation needs most first, since the first decided are the most
// likely to be published. Month totals, sex margins and band margins first (the
// coordinator's age-standardised rates need the band margins, and a quarter or year value
// it cannot have it can bound by summing months); then year and quarter totals, sex
// margins and band margins; then quarter and year fine cells. Deciding the months first
// also keeps their decisions simple: while no quarter or year value is decided, months
// constrain each other through nothing, so a month value's buckets need only that month's
// witnesses. Month fine cells are never decided: they are always published.
var auditOrder = [...]struct {
	kind  formats.PeriodKind
	shape int // shapeKind
}{
	{formats.KindMonth, 3}, {formats.KindMonth, 2}, {formats.KindMonth, 1},
	{formats.KindYear, 3}, {formats.KindQuarter, 3},
	{formats.KindYear, 2}, {formats.KindQuarter, 2},
	{formats.KindYear, 1}, {formats.KindQuarter, 1},
	{formats.KindYear, 0}, {formats.KindQuarter, 0},
}

// shapesOfKind lists the shapes of each kind: 0 fine cells, 1 band margins, 2 sex margins,
// 3 the total.
var shapesOfKind = func() (out [4][]int) {
	for s := range formats.NumShapes {
		k := 3
		switch b, x := formats.ShapeDims(s); {
		case b >= 0 && x >= 0:
			k = 0
		case b >= 0:
			k = 1
		case x >= 0:
			k = 2
		}
		out[k] = append(out[k], s)
	}
	return out
}()

// auditFamily audits the measures meas together, withholding values of theirs in p and
// counting its work in st. It reads t and writes only meas's values of p, so families can be
// audited at the same time.
func auditFamily(t *Table, pol formats.Policy, p *Published, meas []int, st *Stats) error {
	f := newFamily(t, pol, p.Periods, meas, st)
	if len(f.protIDs) == 0 {
		return nil
	}
	if !f.canonical() || !f.initPropagation() {
		// The month counts break a relation the audit assumes (no agent aggregation does
		// that). Without the relation the attacker the audit models knows less, which is
		// the direction that can fail to protect; so refuse rather than guess.
		return fmt.Errorf("disclosure audit: the counts of %s break the relations between admission measures; nothing was released", f.names[0])
	}
	for _, v := range slices.Clone(f.protIDs) {
		w := f.findWitness(v)
		if w == nil {
			fm, pi, _ := f.valueDims(int(f.gRep[v]))
			return fmt.Errorf("disclosure audit: a small count of %s in %s can be recovered from the month's other published counts and no margin can help; nothing was released", f.names[fm], f.periods[pi])
		}
		f.setWitness(v, w)
	}
	for _, cl := range auditOrder {
		for pi, per := range p.Periods {
			if per.Kind != cl.kind {
				continue
			}
			for _, shape := range shapesOfKind[cl.shape] {
				for fm := range meas {
					if f.decide(f.valueIndex(fm, pi, shape)) {
						continue
					}
					p.Values[p.ValueIndex(meas[fm], pi, shape)] = formats.Protected{Status: formats.StatusWithheld}
					st.Withheld++
				}
			}
		}
	}
	return nil
}

// setWitness stores w as protected group v's witness and indexes it.
func (f *family) setWitness(v int32, w []move) {
	f.wit[v].ver++
	f.wit[v].moves = w
	ver := f.wit[v].ver
	f.reset()
	for _, mv := range w {
		f.apply(mv.c, mv.d)
	}
	for _, g := range f.s.tg {
		if ch := f.gs[g].d; ch != 0 {
			f.gw[g] = append(f.gw[g], gwEntry{v, ver, ch})
		}
	}
	for _, c := range f.s.tc {
		if r := f.cRel[c]; r >= 0 {
			f.rw[r] = append(f.rw[r], rwEntry{v, ver})
		}
	}
	f.reset()
}

// slice states.
const (
	sliceOut  = iota // no consistent table puts the value in the bucket (proved by propagation)
	sliceLost        // the search found no table in the bucket: treated as bad
	sliceBad         // publishing the bucket would pin a protected value
	sliceOK          // every protected value has a witness inside the slice
)

// sliceEval is what the audit found about one bucket of the value being decided: whether
// the tables consistent with everything decided so far and with the value in the bucket
// leave every protected value free, and if so the point and witnesses that show it.
type sliceEval struct {
	b     bucket
	state int
	d     []move // from x to a point of the slice
	wits  []pendingWitness
	self  []move // witness of the value itself, when the bucket is a protected one
}

type pendingWitness struct {
	v     int32
	moves []move
}

func (e *sliceEval) bad() bool { return e.state == sliceBad || e.state == sliceLost }

func (f *family) next(b bucket) bucket { return bucketOf(f.pol, b.hi+1) }
func (f *family) prev(b bucket) bucket { return bucketOf(f.pol, b.lo-1) }

// decide publishes or withholds value v (a family value index) and reports whether it is
// published.
//
// The rule. Let P be the tables consistent with everything decided before v, and for a
// bucket b let P_b be those in which v falls in b. Bucket b is bad if some protected value
// takes one value only over P_b: publishing v in b would pin it. A bucket that propagation
// proves P_b empty for is no possible outcome: it is neither bad nor anyone's neighbour.
// v is published iff neither its own bucket nor the nearest possible bucket either side is
// bad; otherwise it is withheld. The audit
// evaluates buckets from public values only (the canonical point, never the true table),
// so whether v is withheld depends on the truth only through v's own bucket, and the set of
// buckets where v is withheld contains a good bucket beside every bad one: seeing "withheld"
// an attacker can only narrow v to a run of buckets that includes a good one, in which
// every protected value still takes two values or more. A withheld v is then treated as
// known to lie in that run (conservatively: the attacker may be able to work that out).
func (f *family) decide(v int) bool {
	g := f.valGrp[v]
	if g < 0 {
		return true // a sum of published zeros: zero, and known to be
	}
	bt := bucketOf(f.pol, f.gTrue[g])
	lb, ub := f.prop.pl[g], f.prop.ph[g]
	if lb >= bt.lo && ub <= bt.hi && (f.prot[g] || !protects(f.pol, bt)) {
		// The published values already place it in this bucket: it adds nothing (and if
		// the bucket is a protected one, the group already has a witness).
		return true
	}
	f.stats.Decided++
	f.limLo, f.limHi = minSum, maxSum
	memo := map[int64]*sliceEval{}
	eval := func(b bucket) *sliceEval {
		if e, ok := memo[b.lo]; ok {
			return e
		}
		e := f.eval(g, b, lb, ub)
		memo[b.lo] = e
		return e
	}
	// The neighbours of a bucket are the nearest buckets either side that are not proven
	// infeasible: a bucket no consistent table reaches is no possible outcome, so it can
	// neither leak nor hide anything. ok is false when there is none.
	prev := func(b bucket) (bucket, bool) {
		for b.lo > 0 && b.lo > lb {
			b = f.prev(b)
			if eval(b).state != sliceOut {
				return b, true
			}
		}
		return b, false
	}
	next := func(b bucket) (bucket, bool) {
		for b.hi < ub {
			b = f.next(b)
			if eval(b).state != sliceOut {
				return b, true
			}
		}
		return b, false
	}
	isBad := func(b bucket, ok bool) bool { return ok && eval(b).bad() }
	inS := func(b bucket) bool { return isBad(b, true) || isBad(prev(b)) || isBad(next(b)) }
	if !inS(bt) {
		f.commit(g, eval(bt), bt.lo, bt.hi)
		return true
	}
	// Withheld. Find the whole run of withheld buckets around bt: every true table whose v
	// falls in the run is withheld alike and leads to the same state, so the walk must not
	// depend on where in the run it starts.
	low := bt
	for {
		p, ok := prev(low)
		if !ok || !inS(p) {
			break
		}
		low = p
	}
	high := bt
	for {
		q, ok := next(high)
		if !ok || !inS(q) {
			break
		}
		high = q
	}
	for b := low; b.lo <= high.hi; b = f.next(b) {
		if e := eval(b); e.state == sliceOK {
			e.self = nil // v is not published: its own value needs no witness
			f.commit(g, e, low.lo, high.hi)
			return false
		}
	}
	// No good bucket in the run. A run ends where the next possible bucket is not
	// withheld, and that bucket's neighbour in the run is then good; so a run with none
	// spans every possible bucket, and knowing v is in it is knowing nothing new.
	return false
}

// commit makes slice e the new state: x moves to e's point, group g is known to lie in
// [lo, hi], and e's witnesses replace the ones the new constraint broke.
func (f *family) commit(g int32, e *sliceEval, lo, hi int64) {
	f.shift(e.d, 1)
	f.gs[g].lo, f.gs[g].hi = max(f.gs[g].lo, lo), min(f.gs[g].hi, hi)
	f.narrowState(g, lo, hi)
	for _, w := range e.wits {
		f.setWitness(w.v, w.moves)
	}
	if e.self != nil && !f.prot[g] {
		f.prot[g] = true
		f.protIDs = append(f.protIDs, g)
		f.setWitness(g, e.self)
	}
}

// eval examines bucket b for group g: first by propagation (which may prove the slice
// empty, or a protected value pinned in it), then by search: it moves the canonical point
// into the slice (if it can), and checks that every protected value, and g itself if b is a
// protected bucket, still has a witness there. It leaves the state as it found it.
func (f *family) eval(g int32, b bucket, lb, ub int64) *sliceEval {
	e := &sliceEval{b: b}
	lo, hi := max(b.lo, lb), min(b.hi, ub)
	if lo > hi {
		e.state = sliceOut
		return e
	}
	f.stats.Slices++
	selfProt := protects(f.pol, b) && !f.prot[g]
	if feasible, pinned := f.tryBucket(g, lo, hi, selfProt); !feasible {
		// Propagation proves that no consistent table puts g in b.
		e.state = sliceOut
		return e
	} else if pinned {
		// Propagation proves that publishing b would pin a protected value.
		e.state = sliceBad
		return e
	}
	saveLo, saveHi := f.gs[g].lo, f.gs[g].hi
	defer func() {
		f.shift(e.d, -1)
		f.gs[g].lo, f.gs[g].hi = saveLo, saveHi
	}()
	if hi < f.limLo || lo > f.limHi {
		// Beyond where the search already failed to go from this point: the search would
		// take the same steps and fail at the same place.
		e.state = sliceLost
		return e
	}
	f.gs[g].lo, f.gs[g].hi = minSum, maxSum
	if !f.reach(g, lo, hi, (lo+hi)/2, &e.d) {
		e.state = sliceLost
		return e
	}
	f.gs[g].lo, f.gs[g].hi = max(saveLo, b.lo), min(saveHi, b.hi)

	for _, v := range f.flagged(g, e.d) {
		if f.checkWitness(v, f.wit[v].moves) {
			continue
		}
		w := f.findWitness(v)
		if w == nil {
			e.state = sliceBad
			return e
		}
		e.wits = append(e.wits, pendingWitness{v, w})
	}
	if selfProt {
		if e.self = f.findWitness(g); e.self == nil {
			e.state = sliceBad
			return e
		}
	}
	e.state = sliceOK
	return e
}

// flagged lists, in order, the protected groups whose witnesses the move d (already applied
// to x) and the new constraint on g may have broken: those that change a group d changed
// or g, or touch a relation d touched. The others are still witnesses: every constraint
// they touch is as it was.
func (f *family) flagged(g int32, d []move) []int32 {
	f.reset()
	for _, mv := range d {
		f.apply(mv.c, mv.d) // only to collect the groups and cells d touches
	}
	groups := append(append([]int32(nil), f.s.tg...), g)
	cells := append([]int32(nil), f.s.tc...)
	f.reset()
	var out []int32
	flag := func(v int32) {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	for _, h := range groups {
		es := f.gw[h][:0]
		for _, e := range f.gw[h] {
			if e.ver != f.wit[e.v].ver {
				continue // superseded
			}
			es = append(es, e)
			if s := f.gs[h].sum + int64(e.ch); s < f.gs[h].lo || s > f.gs[h].hi {
				flag(e.v)
			}
		}
		f.gw[h] = es
	}
	for _, c := range cells {
		r := f.cRel[c]
		if r < 0 {
			continue
		}
		es := f.rw[r][:0]
		for _, e := range f.rw[r] {
			if e.ver != f.wit[e.v].ver {
				continue
			}
			es = append(es, e)
			flag(e.v)
		}
		f.rw[r] = es
	}
	slices.Sort(out)
	return out
}
