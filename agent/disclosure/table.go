package disclosure

import (
	"github.com/tributary-health/tributary/formats"
)

// Table is a run's true counts before disclosure control: for every measure, month of the
// run and fine cell (age band × sex), how many. It never leaves the agent's memory.
type Table struct {
	From, To formats.Month
	Measures []string
	Counts   []int64 // Counts[Index(measure, month, fine)]
}

// NewTable returns a table of zeros for the months from..to and the measures.
func NewTable(from, to formats.Month, measures []string) *Table {
	t := &Table{From: from, To: to, Measures: measures}
	if to >= from {
		t.Counts = make([]int64, len(measures)*t.Months()*formats.NumFine)
	}
	return t
}

// Months is the number of months of the run.
func (t *Table) Months() int { return int(t.To-t.From) + 1 }

// Index is the position in Counts of measure mi (an index into Measures), month m (counted
// from From) and fine cell fine (formats.FineShape).
func (t *Table) Index(mi, m, fine int) int { return (mi*t.Months()+m)*formats.NumFine + fine }

// Set sets the count of one base cell.
func (t *Table) Set(mi int, month formats.Month, fine int, n int64) {
	t.Counts[t.Index(mi, int(month-t.From), fine)] = n
}

// Published is what a run publishes: every shape of every period of every measure, each
// through the policy on its own, some withheld by the audit.
type Published struct {
	From, To formats.Month
	Measures []string
	Periods  []formats.Period    // formats.PeriodsOf(From, To)
	Values   []formats.Protected // Values[ValueIndex(measure, period, shape)]
	Stats    Stats
}

// Stats says what the audit did. It holds counts of values and of work, never a count of
// patients.
type Stats struct {
	Values    int // values published or withheld
	Protected int // published values the policy protects (suppressed, or 1-6 under midpoint-6)
	Withheld  int // values withheld by the audit
	Decided   int // margins and quarter or year values the audit had to decide
	Slices    int // slices of the consistent set examined
	Searches  int // witness searches run
	Nodes     int // search nodes visited
}

// ValueIndex is the position in Values of measure mi, period pi (an index into Periods) and
// shape (formats shape index).
func (p *Published) ValueIndex(mi, pi, shape int) int {
	return (mi*len(p.Periods)+pi)*formats.NumShapes + shape
}

// Value returns one published value.
func (p *Published) Value(mi, pi, shape int) formats.Protected {
	return p.Values[p.ValueIndex(mi, pi, shape)]
}

// sums returns the true value of every (measure, period, shape): the sum of its box of base
// cells.
func sums(t *Table, periods []formats.Period) []int64 {
	M := t.Months()
	out := make([]int64, len(t.Measures)*len(periods)*formats.NumShapes)
	month := make([][formats.NumShapes]int64, M)
	nonzero := make([]bool, M)
	for mi := range t.Measures {
		for m := range M {
			var s [formats.NumShapes]int64
			nz := false
			for f, n := range t.Counts[t.Index(mi, m, 0):t.Index(mi, m+1, 0)] {
				if n == 0 {
					continue
				}
				nz = true
				b, x := formats.ShapeDims(f)
				s[f] += n
				s[formats.BandShape(b)] += n
				s[formats.SexShape(x)] += n
				s[formats.TotalShape] += n
			}
			month[m], nonzero[m] = s, nz
		}
		for pi, p := range periods {
			dst := out[(mi*len(periods)+pi)*formats.NumShapes:][:formats.NumShapes]
			for m := p.Start; m <= p.End(); m++ {
				if k := int(m - t.From); nonzero[k] {
					for sh, n := range &month[k] {
						dst[sh] += n
					}
				}
			}
		}
	}
	return out
}

// Apply publishes every value through the policy on its own, with no audit. It is what
// format 2 would publish without secondary suppression, and the starting point of Audit.
func Apply(t *Table, pol formats.Policy) *Published {
	periods := formats.PeriodsOf(t.From, t.To)
	raw := sums(t, periods)
	p := &Published{From: t.From, To: t.To, Measures: t.Measures, Periods: periods, Values: make([]formats.Protected, len(raw))}
	for i, n := range raw {
		if n == 0 {
			p.Values[i] = formats.Protected{Status: formats.StatusRounded}
			continue
		}
		p.Values[i] = pol.Apply(n)
		if pol.Protects(p.Values[i]) {
			p.Stats.Protected++
		}
	}
	p.Stats.Values = len(raw)
	return p
}
