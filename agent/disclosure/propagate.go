package disclosure

import (
	"github.com/tributary-health/tributary/formats"
)

// Interval propagation: outer bounds on every group's sum over the consistent tables, from
// public values only. Every published value is the sum of the values that partition its box
// (the months or quarters of its period, the cells or margins of its shape), and every
// relation between admission measures is a linear inequality on cells; each of these, given
// intervals for all but one of its terms, bounds the last. Applying them until nothing
// changes (or the work allowance runs out, which only leaves the bounds wider) gives for
// each group an interval [pl, ph] that every consistent table puts it in. The bounds are
// implied by the constraints, never guessed: if some interval comes out empty, no
// consistent table exists (proof of infeasibility), and a group whose interval is a single
// value takes that value in every consistent table (proof of a pin).
//
// The audit keeps the bounds of the current state (everything decided so far) and, to
// examine a bucket, narrows the decided group to it, propagates, reads the outcome and
// undoes the changes from a log.

// constraint kinds.
const (
	consSum  = iota // parent = sum of children
	consRelA        // cells: admissions >= emergency + elective
	consRelP        // cells: patients admitted in emergency <= emergency admissions
)

type constraint struct {
	kind   uint8
	parent int32   // consSum: the parent group
	terms  []int32 // consSum: the children; consRel*: the month fine groups (A, E, L) or (P, E), -1 if absent
}

// propagation allowance: constraint applications per propagation. Stopping early is
// sound (the bounds are only wider than the fixed point).
const propBudget = 20000

type propagator struct {
	cons   []constraint
	gCons  [][]int32 // group -> constraints it appears in
	pl, ph []int64
	queue  []int32
	head   int
	queued []bool
	log    []propUndo
	logOn  bool
	work   int
}

type propUndo struct {
	g      int32
	lo, hi int64
}

// initPropagation builds the constraints of f and propagates the month buckets. It reports
// false if they admit no table (the relations do not hold in the data).
func (f *family) initPropagation() bool {
	p := &f.prop
	ng := len(f.gCells)
	p.pl, p.ph = make([]int64, ng), make([]int64, ng)
	p.gCons = make([][]int32, ng)
	for g := range ng {
		p.pl[g], p.ph[g] = max(f.fineLo[g], f.gs[g].lo), min(f.fineHi[g], f.gs[g].hi)
	}
	seen := map[string]bool{}
	add := func(c constraint) {
		key := make([]byte, 0, 4*len(c.terms)+5)
		for _, t := range append([]int32{int32(c.kind), c.parent}, c.terms...) {
			key = append(key, byte(t), byte(t>>8), byte(t>>16), byte(t>>24))
		}
		if seen[string(key)] {
			return
		}
		seen[string(key)] = true
		id := int32(len(p.cons))
		p.cons = append(p.cons, c)
		if c.kind == consSum {
			p.gCons[c.parent] = append(p.gCons[c.parent], id)
		}
		for _, t := range c.terms {
			if t >= 0 {
				p.gCons[t] = append(p.gCons[t], id)
			}
		}
	}
	for v, g := range f.valGrp {
		if g < 0 {
			continue
		}
		fm, pi, shape := f.valueDims(v)
		for _, parts := range f.partitions(fm, pi, shape) {
			var terms []int32
			trivial := false
			for _, h := range parts {
				if h == g {
					trivial = true // the other parts are zero: nothing to learn
					break
				}
				if h >= 0 {
					terms = append(terms, h)
				}
			}
			if trivial {
				continue
			}
			add(constraint{kind: consSum, parent: g, terms: terms})
		}
	}
	for _, r := range f.rels {
		fg := func(k int) int32 {
			if r[k] < 0 {
				return -1
			}
			return f.cGroups[r[k]][0]
		}
		if f.hasRel[relA] {
			add(constraint{kind: consRelA, terms: []int32{fg(relA), fg(relE), fg(relL)}})
		}
		if f.hasRel[relE] && f.hasRel[relP] {
			add(constraint{kind: consRelP, terms: []int32{fg(relP), fg(relE)}})
		}
	}
	p.queued = make([]bool, len(p.cons))
	for id := range p.cons {
		p.push(int32(id))
	}
	return p.run()
}

// partitions lists, for value (fm, pi, shape), the sets of groups that partition its box:
// the months or quarters of its period with the same shape, and the cells or margins of
// its shape in the same period. -1 stands for a value of no free cell (zero).
func (f *family) partitions(fm, pi, shape int) [][]int32 {
	var out [][]int32
	grp := func(pj, sh int) int32 { return f.valGrp[f.valueIndex(fm, pj, sh)] }
	p := f.periods[pi]
	if p.Kind != formats.KindMonth {
		sub := formats.KindMonth
		if p.Kind == formats.KindYear {
			sub = formats.KindQuarter
		}
		var parts []int32
		for pj, q := range f.periods {
			if q.Kind == sub && q.Start >= p.Start && q.End() <= p.End() {
				parts = append(parts, grp(pj, shape))
			}
		}
		out = append(out, parts)
	}
	b, x := formats.ShapeDims(shape)
	switch {
	case b < 0 && x < 0:
		var bands, sexes []int32
		for bb := range formats.NumBands {
			bands = append(bands, grp(pi, formats.BandShape(bb)))
		}
		for xx := range formats.NumSexes {
			sexes = append(sexes, grp(pi, formats.SexShape(xx)))
		}
		out = append(out, bands, sexes)
	case b >= 0 && x < 0:
		var cells []int32
		for xx := range formats.NumSexes {
			cells = append(cells, grp(pi, formats.FineShape(b, xx)))
		}
		out = append(out, cells)
	case b < 0 && x >= 0:
		var cells []int32
		for bb := range formats.NumBands {
			cells = append(cells, grp(pi, formats.FineShape(bb, x)))
		}
		out = append(out, cells)
	}
	return out
}

func (p *propagator) push(id int32) {
	if !p.queued[id] {
		p.queued[id] = true
		p.queue = append(p.queue, id)
	}
}

// narrow sets group g's bounds to at most [lo, hi] and queues its constraints. It reports
// false if the bounds are then empty.
func (p *propagator) narrow(g int32, lo, hi int64) bool {
	if lo <= p.pl[g] && hi >= p.ph[g] {
		return true
	}
	if p.logOn {
		p.log = append(p.log, propUndo{g, p.pl[g], p.ph[g]})
	}
	p.pl[g], p.ph[g] = max(p.pl[g], lo), min(p.ph[g], hi)
	if p.pl[g] > p.ph[g] {
		return false
	}
	for _, id := range p.gCons[g] {
		p.push(id)
	}
	return true
}

// run applies queued constraints until none is queued, the bounds of some group are empty
// (it reports false) or the allowance is spent (it stops, reporting true: the bounds are
// valid, only wider than they could be).
func (p *propagator) run() bool {
	p.work = 0
	ok := true
	for p.head < len(p.queue) {
		id := p.queue[p.head]
		p.head++
		p.queued[id] = false
		if !ok || p.work >= propBudget {
			continue // drain the queue
		}
		p.work++
		ok = p.apply(&p.cons[id])
	}
	p.queue, p.head = p.queue[:0], 0
	return ok
}

func (p *propagator) apply(c *constraint) bool {
	switch c.kind {
	case consSum:
		var sl, su int64
		for _, t := range c.terms {
			sl += p.pl[t]
			su += p.ph[t]
		}
		g := c.parent
		if !p.narrow(g, sl, su) {
			return false
		}
		gl, gh := p.pl[g], p.ph[g]
		for _, t := range c.terms {
			// t = g - (the others): within [gl - (su - ph t), gh - (sl - pl t)].
			if !p.narrow(t, gl-(su-p.ph[t]), gh-(sl-p.pl[t])) {
				return false
			}
		}
	case consRelA:
		a, e, l := c.terms[0], c.terms[1], c.terms[2]
		lo := func(g int32) int64 {
			if g < 0 {
				return 0
			}
			return p.pl[g]
		}
		hi := func(g int32) int64 {
			if g < 0 {
				return 0
			}
			return p.ph[g]
		}
		if a < 0 {
			// No admissions in the cell: emergency and elective are then absent too (the
			// table is refused otherwise); nothing to propagate.
			return lo(e)+lo(l) <= 0
		}
		if !p.narrow(a, lo(e)+lo(l), maxSum) {
			return false
		}
		if e >= 0 && !p.narrow(e, minSum, hi(a)-lo(l)) {
			return false
		}
		if l >= 0 && !p.narrow(l, minSum, hi(a)-lo(e)) {
			return false
		}
	case consRelP:
		pp, e := c.terms[0], c.terms[1]
		if pp < 0 {
			return true
		}
		if e < 0 {
			return p.ph[pp] <= 0 && p.narrow(pp, minSum, 0)
		}
		if !p.narrow(pp, minSum, p.ph[e]) || !p.narrow(e, p.pl[pp], maxSum) {
			return false
		}
	}
	return true
}

// tryBucket narrows group g to [lo, hi] on top of the current bounds and propagates. It
// reports whether the result is feasible (false is a proof that no consistent table puts g
// there) and whether some protected group (or g itself, if self) is then pinned. The
// bounds are restored before it returns.
func (f *family) tryBucket(g int32, lo, hi int64, self bool) (feasible, pinned bool) {
	p := &f.prop
	p.logOn = true
	p.log = p.log[:0]
	feasible = p.narrow(g, lo, hi) && p.run()
	if feasible {
		for _, w := range f.protIDs {
			if p.pl[w] == p.ph[w] {
				pinned = true
				break
			}
		}
		if self && p.pl[g] == p.ph[g] {
			pinned = true
		}
	}
	for i := len(p.log) - 1; i >= 0; i-- {
		u := p.log[i]
		p.pl[u.g], p.ph[u.g] = u.lo, u.hi
	}
	p.log = p.log[:0]
	p.logOn = false
	return feasible, pinned
}

// narrowState records in the current bounds that group g lies in [lo, hi] (a decision).
func (f *family) narrowState(g int32, lo, hi int64) {
	p := &f.prop
	if p.narrow(g, lo, hi) {
		p.run()
	}
	// An empty interval cannot happen here: the true table is consistent with every
	// decision. If the allowance stops propagation, the bounds stay valid, only wider.
}
