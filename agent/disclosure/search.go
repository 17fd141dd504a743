package disclosure

import (
	"github.com/tributary-health/tributary/formats"
)

// Search limits. A witness is a move of at most 1+witnessDepth unit changes; a unit step of
// the canonical point towards a slice repairs with at most stepDepth more. Each search stops
// after budget nodes. A search that gives up only costs utility (something is withheld that
// need not be): every decision it feeds is a function of public values, so the way the
// audit decides can never itself reveal a count.
const (
	witnessDepth = 4
	stepDepth    = 3
	maxCands     = 16
	budget       = 600
	maxSteps     = 400 // unit steps to reach one slice
)

// scratch is a tentative move on top of the canonical point x: per-cell and per-group
// deltas, with the cells, groups and moves touched, so that undo and reset cost what the
// move touched, not the size of the family.
type scratch struct {
	cd        []int32 // the group deltas and stamps are in family.gs, beside the groups' sums
	cStamp    []uint32
	stamp     uint32
	tc, tg    []int32
	moves     []move
	nodes     int
	cands     [][]move // one candidate buffer per search depth
	mark      []uint32 // candidate de-duplication
	markStamp uint32
}

func (s *scratch) init(nc int) {
	s.cd = make([]int32, nc)
	s.cStamp = make([]uint32, nc)
	s.mark = make([]uint32, nc)
	s.stamp = 1
	s.cands = make([][]move, witnessDepth+2)
	for i := range s.cands {
		s.cands[i] = make([]move, 0, maxCands)
	}
}

func (f *family) apply(c, d int32) {
	s := &f.s
	if s.cStamp[c] != s.stamp {
		s.cStamp[c] = s.stamp
		s.tc = append(s.tc, c)
	}
	s.cd[c] += d
	for _, g := range f.cGroups[c] {
		if f.gs[g].stamp != s.stamp {
			f.gs[g].stamp = s.stamp
			s.tg = append(s.tg, g)
		}
		f.gs[g].d += d
	}
	s.moves = append(s.moves, move{c, d})
}

func (f *family) undo() {
	s := &f.s
	mv := s.moves[len(s.moves)-1]
	s.moves = s.moves[:len(s.moves)-1]
	s.cd[mv.c] -= mv.d
	for _, g := range f.cGroups[mv.c] {
		f.gs[g].d -= mv.d
	}
}

// reset drops the tentative move.
func (f *family) reset() {
	s := &f.s
	for _, c := range s.tc {
		s.cd[c] = 0
	}
	for _, g := range s.tg {
		f.gs[g].d = 0
	}
	s.tc, s.tg, s.moves = s.tc[:0], s.tg[:0], s.moves[:0]
	s.stamp++
	if s.stamp == 0 { // wrapped: clear the stamps
		clear(s.cStamp)
		for g := range f.gs {
			f.gs[g].stamp = 0
		}
		s.stamp = 1
	}
}

// net is the tentative move as one change per cell, in the order cells were first touched.
func (f *family) net() []move {
	var out []move
	for _, c := range f.s.tc {
		if d := f.s.cd[c]; d != 0 {
			out = append(out, move{c, d})
		}
	}
	return out
}

// commitScratch makes the tentative move part of x, appending it to d and marking the
// groups it changed in changed (if not nil).
func (f *family) commitScratch(d *[]move) {
	for _, c := range f.s.tc {
		if v := f.s.cd[c]; v != 0 {
			f.x[c] += int64(v)
			*d = append(*d, move{c, v})
		}
	}
	for _, g := range f.s.tg {
		f.gs[g].sum += int64(f.gs[g].d)
	}
	f.reset()
}

// shift applies moves to x (sign +1) or takes them back (sign -1).
func (f *family) shift(moves []move, sign int32) {
	for _, mv := range moves {
		d := mv.d * sign
		f.x[mv.c] += int64(d)
		for _, g := range f.cGroups[mv.c] {
			f.gs[g].sum += int64(d)
		}
	}
}

// violation kinds.
const (
	vNone = iota
	vGroup
	vRelA // admissions below emergency + elective
	vRelP // patients admitted in emergency above emergency admissions
)

// violated returns the first constraint the tentative move breaks: a group outside what the
// published values allow (need says which way it must go), or a relation.
func (f *family) violated() (kind int, id int32, need int32) {
	s := &f.s
	for _, g := range s.tg {
		v := f.gs[g].sum + int64(f.gs[g].d)
		if v < f.gs[g].lo {
			return vGroup, g, 1
		}
		if v > f.gs[g].hi {
			return vGroup, g, -1
		}
	}
	if len(f.rels) > 0 {
		for _, c := range s.tc {
			r := f.cRel[c]
			if r < 0 {
				continue
			}
			if k := f.relBroken(r); k != vNone {
				return k, r, 0
			}
		}
	}
	return vNone, 0, 0
}

func (f *family) relBroken(r int32) int {
	rel := f.rels[r]
	val := func(k int) int64 {
		c := rel[k]
		if c < 0 {
			return 0
		}
		return f.x[c] + int64(f.s.cd[c])
	}
	if f.hasRel[relA] && val(relA) < val(relE)+val(relL) {
		return vRelA
	}
	if f.hasRel[relE] && f.hasRel[relP] && val(relP) > val(relE) {
		return vRelP
	}
	return vNone
}

// fineRoom reports whether cell c can change by d and stay within its month bucket, without
// undoing a change the move already made to it.
func (f *family) fineRoom(c, d int32) bool {
	cur := f.s.cd[c]
	if cur != 0 && (cur > 0) != (d > 0) {
		return false
	}
	g := f.cGroups[c][0]
	v := f.x[c] + int64(cur+d)
	return v >= f.gs[g].lo && v <= f.gs[g].hi
}

// candidates lists moves that could repair a violation, nearest first: for a group, cells
// of the group that share month, band or sex with a cell already moved, then any of its
// cells; for a relation, the other measures' cells at that position.
func (f *family) candidates(kind int, id, need int32, buf []move) []move {
	s := &f.s
	s.markStamp++
	if s.markStamp == 0 {
		clear(s.mark)
		s.markStamp = 1
	}
	out := buf[:0]
	add := func(c, d int32) bool {
		if c < 0 || s.mark[c] == s.markStamp || !f.fineRoom(c, d) {
			return len(out) < maxCands
		}
		s.mark[c] = s.markStamp
		out = append(out, move{c, d})
		return len(out) < maxCands
	}
	switch kind {
	case vRelA:
		r := f.rels[id]
		_ = add(r[relA], 1) && add(r[relE], -1) && add(r[relL], -1)
		return out
	case vRelP:
		r := f.rels[id]
		_ = add(r[relP], -1) && add(r[relE], 1)
		return out
	}
	g := id
	cells := f.gCells[g]
	if len(cells) <= smallGroup {
		return f.nearest(g, need, out)
	}
	fm, pi, shape := f.valueDims(int(f.gRep[g]))
	p := f.periods[pi]
	m0, m1 := int(p.Start-f.from), int(p.End()-f.from)
	sb, sx := formats.ShapeDims(shape)
	b0, b1, x0, x1 := 0, formats.NumBands-1, 0, formats.NumSexes-1
	if sb >= 0 {
		b0, b1 = sb, sb
	}
	if sx >= 0 {
		x0, x1 = sx, sx
	}
	// Patterns of what to vary from a moved cell: nothing, sex, band, month, then two.
	for _, pat := range [...][3]bool{{}, {false, false, true}, {false, true, false}, {true, false, false},
		{false, true, true}, {true, false, true}, {true, true, false}} {
		for i := len(s.moves) - 1; i >= 0; i-- {
			c := s.moves[i].c
			if int(f.cMeas[c]) != fm {
				continue
			}
			cm := int(f.cMonth[c])
			cb, cx := formats.ShapeDims(int(f.cFine[c]))
			if cm < m0 || cm > m1 && !pat[0] || (!pat[1] && (cb < b0 || cb > b1)) || (!pat[2] && (cx < x0 || cx > x1)) {
				continue
			}
			ma, mb := cm, cm
			if pat[0] {
				ma, mb = m0, m1
			}
			ba, bb := cb, cb
			if pat[1] {
				ba, bb = b0, b1
			}
			xa, xb := cx, cx
			if pat[2] {
				xa, xb = x0, x1
			}
			for m := ma; m <= mb; m++ {
				if pat[0] && m == cm {
					continue
				}
				for b := ba; b <= bb; b++ {
					if pat[1] && b == cb {
						continue
					}
					for x := xa; x <= xb; x++ {
						if pat[2] && x == cx {
							continue
						}
						if !add(f.cellOf[(fm*f.M+m)*formats.NumFine+formats.FineShape(b, x)], need) {
							return out
						}
					}
				}
			}
		}
	}
	for _, c := range cells {
		if !add(c, need) {
			break
		}
	}
	return out
}

// smallGroup: a violated group of at most this many cells is searched by scoring every cell.
const smallGroup = 64

// nearest lists up to maxCands cells of a small group g that can move by need, the ones
// sharing most with a cell already moved first (month counts most, then band, then sex);
// ties in the group's order.
func (f *family) nearest(g, need int32, out []move) []move {
	s := &f.s
	var scores [maxCands]int
	for _, c := range f.gCells[g] {
		if s.mark[c] == s.markStamp || !f.fineRoom(c, need) {
			continue
		}
		cm := f.cMonth[c]
		cb, cx := formats.ShapeDims(int(f.cFine[c]))
		score := 0
		for i := len(s.moves) - 1; i >= 0; i-- {
			o := s.moves[i].c
			if f.cMeas[o] != f.cMeas[c] {
				continue
			}
			ob, ox := formats.ShapeDims(int(f.cFine[o]))
			sc := 1
			if f.cMonth[o] == cm {
				sc += 8
			}
			if ob == cb {
				sc += 4
			}
			if ox == cx {
				sc += 2
			}
			score = max(score, sc)
		}
		// Insert, keeping the best maxCands in order of score.
		k := len(out)
		if k == maxCands {
			if score <= scores[k-1] {
				continue
			}
			k--
		} else {
			out = append(out, move{})
		}
		for k > 0 && scores[k-1] < score {
			out[k], scores[k] = out[k-1], scores[k-1]
			k--
		}
		out[k], scores[k] = move{c, need}, score
	}
	return out
}

// dfs repairs the tentative move: it takes the first violated constraint and tries each
// candidate repair, depth more at most, until nothing is violated and goal holds.
func (f *family) dfs(depth int, goal func() bool) bool {
	s := &f.s
	s.nodes++
	if s.nodes > budget {
		return false
	}
	kind, id, need := f.violated()
	if kind == vNone {
		return goal()
	}
	if depth == 0 {
		return false
	}
	cands := f.candidates(kind, id, need, s.cands[depth])
	s.cands[depth] = cands[:0]
	for _, mv := range cands {
		f.apply(mv.c, mv.d)
		if f.dfs(depth-1, goal) {
			return true
		}
		f.undo()
	}
	return false
}

// findWitness looks for a move from x to another table consistent with everything decided
// so far in which group v's sum differs. It returns nil if it finds none.
//
// It first tries exchange patterns around each cell of v: the cell alone, then pairs,
// rectangles and cubes of cells alternating +1 and -1 across sex, band and months of the
// same quarter. A pattern over two or more axes leaves every margin of the box it spans
// unchanged, so it survives most later decisions and needs no search at all when the cells
// have room. Each pattern gets a short repair (for the relations between admission
// measures, or a margin with no room); only then does the general repair search run.
func (f *family) findWitness(v int32) []move {
	f.stats.Searches++
	f.reset()
	f.s.nodes = 0
	goal := func() bool { return f.gs[v].d != 0 }
	defer func() { f.stats.Nodes += f.s.nodes }()
	if w := f.patterns(v, goal); w != nil {
		return w
	}
	f.s.nodes = 0
	for _, d := range [2]int32{1, -1} {
		for _, c := range f.gCells[v] {
			if !f.fineRoom(c, d) {
				continue
			}
			f.apply(c, d)
			if f.dfs(witnessDepth, goal) {
				w := f.net()
				f.reset()
				return w
			}
			f.undo()
			if f.s.nodes > budget {
				f.reset()
				return nil
			}
		}
	}
	f.reset()
	return nil
}

// patternRepair is the repair depth and node allowance each exchange pattern gets.
const (
	patternRepair = 2
	patternNodes  = 12
)

// patterns tries the exchange patterns around v's cells (see findWitness).
func (f *family) patterns(v int32, goal func() bool) []move {
	var mo, bo, xo [formats.NumBands]int
	for _, c := range f.gCells[v] {
		fm := int(f.cMeas[c])
		m := int(f.cMonth[c])
		b, x := formats.ShapeDims(int(f.cFine[c]))
		// Partners along each axis: other sexes, other bands, other months of the quarter.
		xs := xo[:0]
		for xx := range formats.NumSexes {
			if xx != x {
				xs = append(xs, xx)
			}
		}
		bs := bo[:0]
		for bb := range formats.NumBands {
			if bb != b {
				bs = append(bs, bb)
			}
		}
		ms := mo[:0]
		q0 := (int(f.from)+m)/3*3 - int(f.from)
		for mm := max(0, q0); mm < min(f.M, q0+3); mm++ {
			if mm != m {
				ms = append(ms, mm)
			}
		}
		cell := func(mm, bb, xx int) int32 {
			return f.cellOf[(fm*f.M+mm)*formats.NumFine+formats.FineShape(bb, xx)]
		}
		try := func(d int32, cells ...int32) []move {
			for _, c := range cells {
				if c < 0 {
					return nil
				}
			}
			for i, c := range cells {
				sign := d
				if popcountPattern(i)%2 == 1 {
					sign = -d
				}
				if !f.fineRoom(c, sign) {
					f.reset()
					return nil
				}
				f.apply(c, sign)
			}
			f.s.nodes = 0
			if f.dfsLimited(patternRepair, patternNodes, goal) {
				w := f.net()
				f.reset()
				return w
			}
			f.reset()
			return nil
		}
		for _, d := range [2]int32{1, -1} {
			if w := try(d, c); w != nil {
				return w
			}
		}
		// Pairs, then rectangles, then cubes; the cells of a pattern are listed so that
		// the i-th gets sign (-1)^popcount(i): the corners of the box alternate.
		for _, d := range [2]int32{1, -1} {
			for _, xx := range xs {
				if w := try(d, c, cell(m, b, xx)); w != nil {
					return w
				}
			}
			for _, bb := range bs {
				if w := try(d, c, cell(m, bb, x)); w != nil {
					return w
				}
			}
			for _, mm := range ms {
				if w := try(d, c, cell(mm, b, x)); w != nil {
					return w
				}
			}
		}
		for _, d := range [2]int32{1, -1} {
			for _, bb := range bs {
				for _, xx := range xs {
					if w := try(d, c, cell(m, b, xx), cell(m, bb, x), cell(m, bb, xx)); w != nil {
						return w
					}
				}
			}
			for _, mm := range ms {
				for _, xx := range xs {
					if w := try(d, c, cell(m, b, xx), cell(mm, b, x), cell(mm, b, xx)); w != nil {
						return w
					}
				}
				for _, bb := range bs {
					if w := try(d, c, cell(m, bb, x), cell(mm, b, x), cell(mm, bb, x)); w != nil {
						return w
					}
				}
			}
		}
		for _, d := range [2]int32{1, -1} {
			for _, mm := range ms {
				for _, bb := range bs {
					for _, xx := range xs {
						if w := try(d, c, cell(m, b, xx), cell(m, bb, x), cell(m, bb, xx),
							cell(mm, b, x), cell(mm, b, xx), cell(mm, bb, x), cell(mm, bb, xx)); w != nil {
							return w
						}
					}
				}
			}
		}
	}
	return nil
}

// popcountPattern is the number of axes on which corner i of a pattern differs from its
// first cell (the corners are listed in binary order).
func popcountPattern(i int) int {
	n := 0
	for ; i != 0; i &= i - 1 {
		n++
	}
	return n
}

// dfsLimited is dfs with its own node allowance.
func (f *family) dfsLimited(depth, nodes int, goal func() bool) bool {
	saved := f.s.nodes
	f.s.nodes = budget - nodes
	ok := f.dfs(depth, goal)
	f.s.nodes = saved + (f.s.nodes - (budget - nodes))
	return ok
}

// checkWitness reports whether a stored witness is still a witness at x under the current
// constraints.
func (f *family) checkWitness(v int32, moves []move) bool {
	f.reset()
	for _, mv := range moves {
		f.apply(mv.c, mv.d)
	}
	kind, _, _ := f.violated()
	ok := kind == vNone && f.gs[v].d != 0
	f.reset()
	return ok
}

// unitStep moves x one step so that group g's sum moves by dir, every other constraint
// still holding (g itself must be unconstrained while it moves). It appends the change to d.
// It moves the cell of g that leaves the most room in every group it touches, so that the
// point stays in the middle of what the published values allow and later searches find
// witnesses easily; only when no cell has room does it search for a repair.
func (f *family) unitStep(g, dir int32, d *[]move) bool {
	f.reset()
	cells := f.gCells[g]
	best, bestRoom := int32(-1), int64(0)
	for _, c := range cells {
		fg := f.cGroups[c][0]
		room := f.gs[fg].hi - f.x[c]
		if dir < 0 {
			room = f.x[c] - f.gs[fg].lo
		}
		if f.prot[fg] {
			// Keep small counts away from the edges of their buckets: their witnesses
			// need room either way. Move them only when nothing else can move.
			room = min(room, 1)
		}
		if room <= bestRoom {
			continue
		}
		for _, h := range f.cGroups[c][1:] {
			if h == g {
				continue
			}
			r := f.gs[h].hi - f.gs[h].sum
			if dir < 0 {
				r = f.gs[h].sum - f.gs[h].lo
			}
			room = min(room, r)
			if room <= bestRoom {
				break
			}
		}
		if room <= bestRoom {
			continue
		}
		if r := f.cRel[c]; r >= 0 {
			f.apply(c, dir)
			broken := f.relBroken(r) != vNone
			f.undo()
			f.reset()
			if broken {
				continue
			}
		}
		best, bestRoom = c, room
	}
	if best >= 0 {
		f.apply(best, dir)
		f.commitScratch(d)
		return true
	}
	f.s.nodes = 0
	goal := func() bool { return f.gs[g].d*dir > 0 }
	tried := 0
	for _, c := range cells {
		if tried >= maxCands {
			break
		}
		if !f.fineRoom(c, dir) {
			continue
		}
		tried++
		f.apply(c, dir)
		if f.dfs(stepDepth, goal) {
			f.commitScratch(d)
			return true
		}
		f.undo()
	}
	f.reset()
	return false
}

// reach moves x until group g's sum is in [lo, hi], aiming for aim (inside it) so that the
// new point has room either way. It appends the change to d and reports whether it got
// there; the caller takes d back either way when it is done. The steps depend only on the
// direction, never on the target, so when reach fails it records how far it got (limLo,
// limHi): a farther target in that direction would fail at the same place.
func (f *family) reach(g int32, lo, hi, aim int64, d *[]move) bool {
	dir := int32(1)
	if f.gs[g].sum > aim {
		dir = -1
	}
	for range maxSteps {
		s := f.gs[g].sum
		if (dir > 0 && s >= aim) || (dir < 0 && s <= aim) {
			return s >= lo && s <= hi
		}
		if !f.unitStep(g, dir, d) {
			if s >= lo && s <= hi {
				return true
			}
			if dir > 0 {
				f.limHi = min(f.limHi, s)
			} else {
				f.limLo = max(f.limLo, s)
			}
			return false
		}
	}
	s := f.gs[g].sum
	return s >= lo && s <= hi
}

// groupState is what the family knows of one group: the bounds the values decided so far put
// on its sum and its sum at the canonical point; and the tentative move's change to the sum
// (d) with the stamp that says whether the move has touched the group yet (see scratch). They
// are side by side because the search reads them together for every group a move touches.
type groupState struct {
	sum, lo, hi int64
	d           int32
	stamp       uint32
}
