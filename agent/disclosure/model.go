package disclosure

import (
	"hash/maphash"
	"math"
	"slices"

	"github.com/tributary-health/tributary/formats"
)

// unbounded marks a group no published value constrains yet.
const (
	minSum = math.MinInt64 / 4
	maxSum = math.MaxInt64 / 4
)

// bucket is the range of true counts that publish as one value under the policy.
type bucket struct{ lo, hi int64 }

func bucketOf(pol formats.Policy, n int64) bucket {
	if n <= 0 {
		return bucket{0, 0}
	}
	p := pol.Apply(n)
	return bucket{p.Lower, p.Upper}
}

// protects reports whether values in b are ones the policy protects.
func protects(pol formats.Policy, b bucket) bool {
	return b.lo >= 1 && pol.Protects(pol.Apply(b.lo))
}

// move adds d to free cell c.
type move struct{ c, d int32 }

// relation is one (month, fine cell) position of a family with cross-measure relations:
// the free cells of admissions, admissions_emergency, admissions_elective and
// patients_admitted_emergency there, -1 where the measure is absent or its count is a
// published zero.
type relation [4]int32

const (
	relA = iota
	relE
	relL
	relP
)

// family is one measure, or the admissions measures linked by their relations: the unit the
// audit works on. Everything in it except the true counts is public, and the true counts are
// read only as the bucket of the value being decided (see decide).
type family struct {
	pol     formats.Policy
	periods []formats.Period
	from    formats.Month
	M       int   // months
	meas    []int // measure indexes into the table, in family order
	names   []string
	hasRel  [4]bool // which of relA.. are in the family (relations need relA or relE and relP)

	// Free cells: base cells whose month value is not a published zero. A published zero is
	// exact (the only true count that publishes as 0 is 0), so every other cell is fixed.
	cellOf  []int32 // (fm*M+m)*NumFine+fine -> free cell, or -1
	cMeas   []uint8 // family measure
	cMonth  []int16
	cFine   []uint8
	cTrue   []int64
	cGroups [][]int32 // groups containing the cell, its month fine group first
	cRel    []int32   // relation position, or -1

	// Groups: distinct sets of free cells that published values sum. Values over the same
	// free cells are equal in every consistent table, so they are one group.
	gCells [][]int32
	gRep   []int32 // a value of the group (family value index), whose box names it
	// gs holds, for every group, what the values decided so far say of its sum (lo, hi), its
	// sum at the canonical point (sum) and the search's tentative change to it, side by side:
	// the search reads them together for every group a move touches.
	gs     []groupState
	fineLo []int64 // sum of the group's cells' month buckets
	fineHi []int64
	gTrue  []int64
	// limLo and limHi: while one value is decided, the sums of it the search could not get
	// past from the canonical point.
	limLo, limHi int64
	valGrp       []int32 // family value -> group, -1 for a value of no free cell (exactly zero)
	rels         []relation
	prot         []bool  // a published value of the group is one the policy protects
	protIDs      []int32 // protected groups, in the order they became so

	// The canonical point: a consistent table derived from public values only, and its
	// group sums. Every search starts from it, so no decision depends on the true counts
	// except through the bucket of the value being decided.
	x []int64

	// Witnesses: for every protected group a move from x to another consistent table in
	// which the group's sum differs, indexed by the groups it changes and the relations it
	// touches so that a new constraint rechecks only the witnesses it can break.
	wit []witness
	gw  [][]gwEntry
	rw  [][]rwEntry

	// prop holds outer bounds on every group's sum over the consistent tables (see
	// propagate.go).
	prop propagator

	s     scratch
	stats *Stats
}

type witness struct {
	moves []move
	ver   int32
}

type gwEntry struct{ v, ver, ch int32 }
type rwEntry struct{ v, ver int32 }

// values of the family: (fm*len(periods)+pi)*NumShapes+shape.
func (f *family) valueIndex(fm, pi, shape int) int {
	return (fm*len(f.periods)+pi)*formats.NumShapes + shape
}

func (f *family) valueDims(v int) (fm, pi, shape int) {
	shape = v % formats.NumShapes
	v /= formats.NumShapes
	return v / len(f.periods), v % len(f.periods), shape
}

var hashSeed = maphash.MakeSeed()

// newFamily builds the model of measures meas (table indexes) from the true table: the
// free cells, the groups and the relations. Only the published month buckets decide its
// shape.
func newFamily(t *Table, pol formats.Policy, periods []formats.Period, meas []int, st *Stats) *family {
	f := &family{pol: pol, periods: periods, from: t.From, M: t.Months(), meas: meas, stats: st}
	for _, mi := range meas {
		name := t.Measures[mi]
		f.names = append(f.names, name)
		switch name {
		case formats.Admissions:
			f.hasRel[relA] = true
		case formats.AdmissionsEmergency:
			f.hasRel[relE] = true
		case formats.AdmissionsElective:
			f.hasRel[relL] = true
		case formats.PatientsAdmittedEmergency:
			f.hasRel[relP] = true
		}
	}
	relIndex := func(fm int) int {
		switch f.names[fm] {
		case formats.Admissions:
			return relA
		case formats.AdmissionsEmergency:
			return relE
		case formats.AdmissionsElective:
			return relL
		case formats.PatientsAdmittedEmergency:
			return relP
		}
		return -1
	}
	withRel := f.hasRel[relA] || (f.hasRel[relE] && f.hasRel[relP])

	// Period indexes of each month: its month, quarter and year, -1 if not published.
	type mp struct{ m, q, y int }
	monthPeriods := make([]mp, f.M)
	for i := range monthPeriods {
		monthPeriods[i] = mp{-1, -1, -1}
	}
	for pi, p := range periods {
		for m := p.Start; m <= p.End(); m++ {
			mpi := &monthPeriods[int(m-t.From)]
			switch p.Kind {
			case formats.KindMonth:
				mpi.m = pi
			case formats.KindQuarter:
				mpi.q = pi
			case formats.KindYear:
				mpi.y = pi
			}
		}
	}

	nv := len(meas) * len(periods) * formats.NumShapes
	f.cellOf = make([]int32, len(meas)*f.M*formats.NumFine)
	lists := make([][]int32, nv)
	posRel := map[int]int32{} // month*NumFine+fine -> relation
	for fm, mi := range meas {
		for m := range f.M {
			for fine := range formats.NumFine {
				k := (fm*f.M+m)*formats.NumFine + fine
				n := t.Counts[t.Index(mi, m, fine)]
				if n <= 0 {
					f.cellOf[k] = -1
					continue
				}
				c := int32(len(f.cTrue))
				f.cellOf[k] = c
				f.cMeas = append(f.cMeas, uint8(fm))
				f.cMonth = append(f.cMonth, int16(m))
				f.cFine = append(f.cFine, uint8(fine))
				f.cTrue = append(f.cTrue, n)
				b, x := formats.ShapeDims(fine)
				mpi := monthPeriods[m]
				for _, pi := range [3]int{mpi.m, mpi.q, mpi.y} {
					if pi < 0 {
						continue
					}
					for _, sh := range [4]int{fine, formats.BandShape(b), formats.SexShape(x), formats.TotalShape} {
						v := f.valueIndex(fm, pi, sh)
						lists[v] = append(lists[v], c)
					}
				}
				r := int32(-1)
				if withRel && relIndex(fm) >= 0 {
					pos := m*formats.NumFine + fine
					var ok bool
					if r, ok = posRel[pos]; !ok {
						r = int32(len(f.rels))
						posRel[pos] = r
						f.rels = append(f.rels, relation{-1, -1, -1, -1})
					}
					f.rels[r][relIndex(fm)] = c
				}
				f.cRel = append(f.cRel, r)
			}
		}
	}
	nc := len(f.cTrue)
	f.cGroups = make([][]int32, nc)

	// Groups, numbered in value order so that everything downstream is deterministic; the
	// map only finds a list seen before.
	f.valGrp = make([]int32, nv)
	seen := map[uint64][]int32{}
	for v, l := range lists {
		if len(l) == 0 {
			f.valGrp[v] = -1
			continue
		}
		var h maphash.Hash
		h.SetSeed(hashSeed)
		for _, c := range l {
			var b [4]byte
			b[0], b[1], b[2], b[3] = byte(c), byte(c>>8), byte(c>>16), byte(c>>24)
			h.Write(b[:])
		}
		key := h.Sum64()
		g := int32(-1)
		for _, cand := range seen[key] {
			if slices.Equal(f.gCells[cand], l) {
				g = cand
				break
			}
		}
		if g < 0 {
			g = int32(len(f.gCells))
			seen[key] = append(seen[key], g)
			f.gCells = append(f.gCells, l)
			f.gRep = append(f.gRep, int32(v))
		}
		f.valGrp[v] = g
	}
	ng := len(f.gCells)
	f.gs = make([]groupState, ng)
	f.fineLo, f.fineHi, f.gTrue = make([]int64, ng), make([]int64, ng), make([]int64, ng)
	f.prot = make([]bool, ng)
	for g := range ng {
		f.gs[g].lo, f.gs[g].hi = minSum, maxSum
	}
	// The month fine values come first in each cell's group list: they are what a search
	// checks first.
	for fm := range meas {
		for m := range f.M {
			pi := monthPeriods[m].m
			for fine := range formats.NumFine {
				c := f.cellOf[(fm*f.M+m)*formats.NumFine+fine]
				if c < 0 {
					continue
				}
				g := f.valGrp[f.valueIndex(fm, pi, fine)]
				f.cGroups[c] = append(f.cGroups[c], g)
				b := bucketOf(pol, f.cTrue[c])
				f.gs[g].lo, f.gs[g].hi = max(f.gs[g].lo, b.lo), min(f.gs[g].hi, b.hi)
				if protects(pol, b) && !f.prot[g] {
					f.prot[g] = true
					f.protIDs = append(f.protIDs, g)
				}
			}
		}
	}
	for g, cells := range f.gCells {
		for _, c := range cells {
			if f.cGroups[c][0] != int32(g) {
				f.cGroups[c] = append(f.cGroups[c], int32(g))
			}
			b := bucketOf(pol, f.cTrue[c])
			f.fineLo[g] += b.lo
			f.fineHi[g] += b.hi
			f.gTrue[g] += f.cTrue[c]
		}
	}
	f.x = make([]int64, nc)
	f.wit = make([]witness, ng)
	f.gw = make([][]gwEntry, ng)
	f.rw = make([][]rwEntry, len(f.rels))
	f.s.init(nc)
	return f
}

// canonical sets x to a consistent table chosen from the published month buckets alone:
// each cell near the middle of its bucket, adjusted so the relations hold. It reports false
// if the buckets admit no table satisfying the relations (the true table always does, so
// this means the relations do not hold in the data).
func (f *family) canonical() bool {
	mid := func(b bucket) int64 { return (b.lo + b.hi) / 2 }
	clamp := func(v, lo, hi int64) int64 { return max(lo, min(hi, v)) }
	for c := range f.x {
		f.x[c] = mid(bucketOf(f.pol, f.cTrue[c]))
	}
	for _, r := range f.rels {
		b := func(k int) bucket {
			if r[k] < 0 {
				return bucket{}
			}
			return bucketOf(f.pol, f.cTrue[r[k]])
		}
		a, e, l, p := b(relA), b(relE), b(relL), b(relP)
		if !f.hasRel[relA] {
			a = bucket{maxSum, maxSum} // no upper limit from admissions
		}
		// E within [max(e.lo, p.lo), min(e.hi, a.hi-l.lo)], then L, A and P in turn.
		eLo, eHi := e.lo, e.hi
		if f.hasRel[relP] && f.hasRel[relE] {
			eLo = max(eLo, p.lo)
		}
		eHi = min(eHi, a.hi-l.lo)
		if eLo > eHi {
			return false
		}
		ev := clamp(mid(e), eLo, eHi)
		lHi := min(l.hi, a.hi-ev)
		if l.lo > lHi {
			return false
		}
		lv := clamp(mid(l), l.lo, lHi)
		aLo := max(a.lo, ev+lv)
		if aLo > a.hi {
			return false
		}
		av := clamp(mid(a), aLo, a.hi)
		pHi := p.hi
		if f.hasRel[relE] {
			pHi = min(pHi, ev)
		}
		if p.lo > pHi {
			return false
		}
		pv := clamp(mid(p), p.lo, pHi)
		for k, v := range [4]int64{av, ev, lv, pv} {
			if r[k] >= 0 {
				f.x[r[k]] = v
			}
		}
	}
	for g, cells := range f.gCells {
		var s int64
		for _, c := range cells {
			s += f.x[c]
		}
		f.gs[g].sum = s
	}
	return true
}
