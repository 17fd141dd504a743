// Package figures computes every figure a federation lead reads from the values practices
// publish, the same way for the combine's outputs, the CLI and the HTTP API.
//
// # What a figure is built from
//
// A practice publishes, for every period its run covers (months, and the calendar quarters
// and years wholly inside the run), every measure and every shape (age band × sex cells,
// margins by band and by sex, and the total), each value through the disclosure policy on
// its own. A figure is a sum of true counts over some months, age bands and sexes; this
// package answers it, practice by practice, from the COARSEST published values that answer
// it exactly:
//
//   - time: each calendar year wholly inside the question, then each such quarter, then the
//     remaining months; a practice's quarter or year value exists only when the run that
//     published it is still the newest for all its months (combine drops the others), and
//     where it does not the practice's finer values answer instead ("fallbacks");
//   - shape: the total when every band and sex is asked for, the sex margins for a subset of
//     sexes, the band margins for a subset of bands, the fine cells otherwise; a margin the
//     agent withheld (secondary suppression) is answered by the finer values it sums.
//
// A federation figure is the sum of the practices' figures.
//
// # Bounds, count and estimates
//
// Each published value carries bounds that contain its true count (a rounded value v: v-2 to
// v+2; a suppressed one: 1 to 7). The bounds of a figure are the sums of its pieces' bounds,
// so they always contain the truth. Its count is the figure to read: the published values,
// plus, for each suppressed piece, its expected value given its bounds under a Poisson whose
// mean comes from the practice's own coarser published value (see estimate), rounded and
// kept within the bounds. PublishedSum is the sum of published values alone.
//
// Nothing here reads a true count: every figure is a function of published values only, so
// none can reveal more about a small count than what the practice published.
package figures

import (
	"math"
	"slices"

	"github.com/tributary-health/tributary/coordinator/stats"
	"github.com/tributary-health/tributary/formats"
)

// Statuses of a packed Value.
const (
	Rounded uint8 = iota
	Suppressed
	Withheld
)

// Value is one published value, packed into 16 bytes: a federation of 1,000 practices holds
// some 60 million of them.
type Value struct {
	Count, Lower, Upper int32
	Status              uint8
}

// ValueOf packs a published value; ok is false for a value too large to hold or a status
// outside the contract.
func ValueOf(p formats.Protected) (Value, bool) {
	fits := func(n int64) bool { return n >= 0 && n <= math.MaxInt32 }
	if !fits(p.Count) || !fits(p.Lower) || !fits(p.Upper) {
		return Value{}, false
	}
	v := Value{Count: int32(p.Count), Lower: int32(p.Lower), Upper: int32(p.Upper)}
	switch p.Status {
	case formats.StatusRounded:
		v.Status = Rounded
	case formats.StatusSuppressed:
		v.Status = Suppressed
	case formats.StatusWithheld:
		v.Status = Withheld
	default:
		return Value{}, false
	}
	return v, true
}

// Protected unpacks v.
func (v Value) Protected() formats.Protected {
	p := formats.Protected{Count: int64(v.Count), Lower: int64(v.Lower), Upper: int64(v.Upper)}
	switch v.Status {
	case Suppressed:
		p.Status = formats.StatusSuppressed
	case Withheld:
		p.Status = formats.StatusWithheld
	default:
		p.Status = formats.StatusRounded
	}
	return p
}

// Shapes is one measure's values in one period.
type Shapes = [formats.NumShapes]Value

// Practice is one practice's published values, by period and measure (indexes into the
// engine's Measures).
type Practice struct {
	ID     string
	blocks map[periodKey][]*Shapes
	nm     int
}

// periodKey is a Period packed into a word: a map keyed by it hashes a uint64, which the
// engine's lookups (millions a combine) do several times faster than a padded struct.
type periodKey uint64

func keyOf(per formats.Period) periodKey {
	return periodKey(uint64(per.Kind)<<32 | uint64(uint32(per.Start)))
}

func (k periodKey) period() formats.Period {
	return formats.Period{Kind: formats.PeriodKind(k >> 32), Start: formats.Month(int32(uint32(k)))}
}

// NewPractice returns an empty practice for a catalogue of n measures.
func NewPractice(id string, n int) *Practice {
	return &Practice{ID: id, blocks: map[periodKey][]*Shapes{}, nm: n}
}

// Values returns the practice's values of measure mi in period per, creating them (all
// rounded zeros) if absent: a caller fills every shape.
func (p *Practice) Values(per formats.Period, mi int) *Shapes {
	b := p.blocks[keyOf(per)]
	if b == nil {
		b = make([]*Shapes, p.nm)
		p.blocks[keyOf(per)] = b
	}
	if b[mi] == nil {
		b[mi] = new(Shapes)
	}
	return b[mi]
}

// Get returns the practice's values of measure mi in period per, or nil.
func (p *Practice) Get(per formats.Period, mi int) *Shapes {
	if b := p.blocks[keyOf(per)]; b != nil && mi < len(b) {
		return b[mi]
	}
	return nil
}

// Periods lists the periods the practice holds values for, in canonical order.
func (p *Practice) Periods() []formats.Period {
	out := make([]formats.Period, 0, len(p.blocks))
	for k := range p.blocks {
		out = append(out, k.period())
	}
	slices.SortFunc(out, formats.ComparePeriods)
	return out
}

// Acc sums the pieces of a figure.
type Acc struct {
	Published    int64   // published (rounded) values
	Lower, Upper int64   // bounds of the truth
	Estimate     float64 // published values plus the estimates of suppressed ones
	Suppressed   int32   // suppressed pieces, estimated
	Fallbacks    int32   // withheld or out-of-date values answered from finer ones
	Practices    int32   // practices contributing
	// NoList counts practices that contributed events but no list size for them: rates are
	// then not offered, as their denominator would be short.
	NoList int32
	// Secure counts the pieces taken from the holders' secure totals, of the Pieces summed
	// (Engine.sumOf).
	Secure, Pieces int32
}

// Add adds b to a.
func (a *Acc) Add(b *Acc) {
	a.Published += b.Published
	a.Lower += b.Lower
	a.Upper += b.Upper
	a.Estimate += b.Estimate
	a.Suppressed += b.Suppressed
	a.Fallbacks += b.Fallbacks
	a.Practices += b.Practices
	a.NoList += b.NoList
	a.Secure += b.Secure
	a.Pieces += b.Pieces
}

// Exact reports whether every piece was published (none suppressed).
func (a *Acc) Exact() bool { return a.Suppressed == 0 }

// Pieces returns the shapes that answer a question over the age bands and sexes given
// (nil: all of them), coarsest first: the total, the sex margins, the band margins, or the
// fine cells.
func Pieces(bands, sexes []int) []int {
	switch {
	case bands == nil && sexes == nil:
		return []int{formats.TotalShape}
	case bands == nil:
		out := make([]int, len(sexes))
		for i, x := range sexes {
			out[i] = formats.SexShape(x)
		}
		return out
	case sexes == nil:
		out := make([]int, len(bands))
		for i, b := range bands {
			out[i] = formats.BandShape(b)
		}
		return out
	}
	out := make([]int, 0, len(bands)*len(sexes))
	for _, b := range bands {
		for _, x := range sexes {
			out = append(out, formats.FineShape(b, x))
		}
	}
	return out
}

// TimePieces splits from..to (inclusive) into calendar years wholly inside it, then quarters,
// then months, in order.
func TimePieces(from, to formats.Month) []formats.Period {
	var out []formats.Period
	for m := from; m <= to; {
		switch {
		case m%12 == 0 && m+11 <= to:
			out = append(out, formats.YearOf(m))
			m += 12
		case m%3 == 0 && m+2 <= to:
			out = append(out, formats.QuarterOf(m))
			m += 3
		default:
			out = append(out, formats.MonthPeriod(m))
			m++
		}
	}
	return out
}

// subPeriods splits a quarter into months and a year into quarters.
func subPeriods(per formats.Period) []formats.Period {
	switch per.Kind {
	case formats.KindYear:
		return []formats.Period{{Kind: formats.KindQuarter, Start: per.Start}, {Kind: formats.KindQuarter, Start: per.Start + 3},
			{Kind: formats.KindQuarter, Start: per.Start + 6}, {Kind: formats.KindQuarter, Start: per.Start + 9}}
	case formats.KindQuarter:
		return []formats.Period{formats.MonthPeriod(per.Start), formats.MonthPeriod(per.Start + 1), formats.MonthPeriod(per.Start + 2)}
	}
	return nil
}

// subShapes splits a margin into the values it sums: the total into the sex margins, a band
// or sex margin into its fine cells.
func subShapes(shape int) []int {
	if formats.IsFineShape(shape) {
		return nil
	}
	if shape == formats.TotalShape {
		return []int{formats.SexShape(0), formats.SexShape(1), formats.SexShape(2)}
	}
	var out []int
	formats.ShapeCells(shape, func(f int) { out = append(out, f) })
	return out
}

// estimator estimates suppressed values; it carries the catalogue index of the list size.
type estimator struct {
	list int // index of registered_patients, or -1
}

// add adds practice p's value of (per, mi, shape) to a, answering a withheld value from the
// finer values it sums and an absent quarter or year from its sub-periods. It reports
// whether the practice had any value for it.
func (e *estimator) add(p *Practice, per formats.Period, mi, shape int, a *Acc) bool {
	if vals := p.Get(per, mi); vals != nil {
		v := vals[shape]
		switch {
		case v.Status != Withheld:
			a.Lower += int64(v.Lower)
			a.Upper += int64(v.Upper)
			if v.Status == Rounded {
				a.Published += int64(v.Count)
				a.Estimate += float64(v.Count)
			} else {
				a.Suppressed++
				a.Estimate += e.estimate(p, per, mi, shape, vals)
			}
			return true
		case !formats.IsFineShape(shape):
			// A withheld margin is answered by its parts in the same period or, for a
			// quarter or year, by the same margin in each of its months (or quarters),
			// whichever gives the narrower bounds. Each is an exact decomposition whose
			// bounds hold the truth, so the narrower is as honest and far more use: the
			// audit often withholds a quarter's total whose months' totals are published,
			// and its cells, mostly suppressed, gave bounds 40 times as wide.
			var parts Acc
			for _, s := range subShapes(shape) {
				e.add(p, per, mi, s, &parts)
			}
			best := &parts
			if subs := subPeriods(per); subs != nil {
				var months Acc
				all := true
				for _, sub := range subs {
					if !e.add(p, sub, mi, shape, &months) {
						all = false
						break
					}
				}
				if all && months.Upper-months.Lower < parts.Upper-parts.Lower {
					best = &months
				}
			}
			best.Fallbacks++
			a.Add(best)
			return true
		}
		// A quarter's or year's fine cell withheld: its months answer.
	} else if per.Kind == formats.KindMonth {
		return false
	}
	var any bool
	for _, sub := range subPeriods(per) {
		if e.add(p, sub, mi, shape, a) {
			any = true
		}
	}
	if any {
		a.Fallbacks++ // a quarter or year out of date (or not wholly covered) at this practice
	}
	return any
}

// estimate is the expected true value of a suppressed value v given its bounds, under a
// Poisson whose mean comes from the practice's coarser published value: the nearest rounded
// margin of the same period containing it (band margin, then sex margin, then total for a
// fine cell; the total for a margin), whose residual after its published parts is shared
// among its suppressed parts in proportion to their list sizes; failing that, the same shape
// in the enclosing quarter or year, pro rata; failing that, a mean of 1 (no information: the
// estimate is then E[X | 1 ≤ X ≤ 7] = 1.58, near the low end where most suppressed counts
// lie). The method and its measured bias are in coordinator/README.md.
func (e *estimator) estimate(p *Practice, per formats.Period, mi, shape int, vals *Shapes) float64 {
	v := vals[shape]
	lo, hi := int(v.Lower), int(v.Upper)
	lambda := 1.0
	if l, ok := e.fromMargin(p, per, mi, shape, vals); ok {
		lambda = l
	} else if l, ok := e.fromPeriod(p, per, mi, shape); ok {
		lambda = l
	}
	return stats.TruncatedPoissonMean(lambda, lo, hi)
}

// parentTable is parents of every shape, computed once: the estimator asks for it for every
// suppressed value of every practice, and building the lists each time was a sixth of a cold
// combine's CPU time. Callers must not change the slices.
var parentTable = func() (t [formats.NumShapes]parentLists) {
	for s := range t {
		t[s].margins, t[s].parts = parents(s)
	}
	return t
}()

type parentLists struct {
	margins []int
	parts   [][]int
}

// parents lists the margins that contain shape, with the parts each splits into.
func parents(shape int) (margins []int, parts [][]int) {
	b, x := formats.ShapeDims(shape)
	switch {
	case b >= 0 && x >= 0:
		var band, sex []int
		formats.ShapeCells(formats.BandShape(b), func(f int) { band = append(band, f) })
		formats.ShapeCells(formats.SexShape(x), func(f int) { sex = append(sex, f) })
		return []int{formats.BandShape(b), formats.SexShape(x)}, [][]int{band, sex}
	case b >= 0:
		all := make([]int, formats.NumBands)
		for i := range all {
			all[i] = formats.BandShape(i)
		}
		return []int{formats.TotalShape}, [][]int{all}
	case x >= 0:
		return []int{formats.TotalShape}, [][]int{{formats.SexShape(0), formats.SexShape(1), formats.SexShape(2)}}
	}
	return nil, nil
}

func (e *estimator) fromMargin(p *Practice, per formats.Period, mi, shape int, vals *Shapes) (float64, bool) {
	margins, parts := parentTable[shape].margins, parentTable[shape].parts
	var lists *Shapes
	if e.list >= 0 && e.list != mi {
		lists = p.Get(per, e.list)
	}
	weight := func(s int) float64 {
		if lists == nil {
			return 1
		}
		switch l := lists[s]; l.Status {
		case Rounded:
			return max(float64(l.Count), 0.5)
		case Suppressed:
			return float64(l.Lower+l.Upper) / 2
		}
		return 1
	}
next:
	for i, m := range margins {
		pv := vals[m]
		if pv.Status != Rounded {
			continue
		}
		residual := float64(pv.Count)
		var wSelf, wAll float64
		var n int
		for _, s := range parts[i] {
			switch c := vals[s]; c.Status {
			case Rounded:
				residual -= float64(c.Count)
			case Suppressed:
				w := weight(s)
				wAll += w
				n++
				if s == shape {
					wSelf = w
				}
			default:
				continue next // a withheld part: this margin says nothing about ours
			}
		}
		if wAll == 0 {
			continue
		}
		// Every suppressed part is at least its lower bound: never share out less than that.
		residual = max(residual, float64(n))
		return residual * wSelf / wAll, true
	}
	return 0, false
}

func (e *estimator) fromPeriod(p *Practice, per formats.Period, mi, shape int) (float64, bool) {
	for _, outer := range []formats.Period{formats.QuarterOf(per.Start), formats.YearOf(per.Start)} {
		if outer.Len() <= per.Len() {
			continue
		}
		if vals := p.Get(outer, mi); vals != nil && vals[shape].Status == Rounded {
			return float64(vals[shape].Count) * float64(per.Len()) / float64(outer.Len()), true
		}
	}
	return 0, false
}

// SetBlock sets the practice's values of every measure in period per (indexed as the
// engine's Measures; nil entries for measures not supplied). The arrays are shared, not
// copied: callers never change them afterwards.
func (p *Practice) SetBlock(per formats.Period, vals []*Shapes) {
	if vals != nil {
		p.blocks[keyOf(per)] = vals
	}
}
