package figures

import (
	"fmt"
	"slices"

	"github.com/tributary-health/tributary/formats"
)

// Engine holds a federation's published values, practice by practice, and the federation's
// sums of them for every period, measure and shape. Build it with New, NewPractice and Add,
// then Finish; after Finish it is read-only and safe for concurrent use.
type Engine struct {
	Policy      formats.Policy
	SuppressMax int64 // the top of the suppressed range (see Status)
	Measures    []string
	index       map[string]int
	est         estimator
	practices   map[string]*Practice
	ids         []string
	fed         map[formats.Period][]*[formats.NumShapes]fedCell
	months      []formats.Month
	// Secure totals offered (SetSecure), and what became of them (see secure.go).
	secure        []SecureTotal
	secureRefused []SecureUse
	secureUses    []SecureUse
	secureNotes   map[monthMeasure]string
}

// fedCell is the federation's sum for one period, measure and shape: the events and the
// list sizes (registered patients, patient-months for a quarter or year) of the practices
// that supplied the measure; where a secure total of the same practices replaces them
// (secure), sec and slist are what the federation's figures read.
type fedCell struct {
	events, list Acc
	sec, slist   Acc
	secure       bool
}

// New returns an empty engine for a federation under pol whose suppressed range tops out at
// suppressMax, with the given measures (nil: the catalogue, formats.Measures).
func New(pol formats.Policy, suppressMax int64, measures []string) *Engine {
	if measures == nil {
		measures = formats.Measures
	}
	e := &Engine{Policy: pol, SuppressMax: suppressMax, Measures: slices.Clone(measures), index: map[string]int{},
		practices: map[string]*Practice{}, est: estimator{list: -1}}
	for i, m := range e.Measures {
		e.index[m] = i
	}
	if i, ok := e.index[formats.RegisteredPatients]; ok {
		e.est.list = i
	}
	return e
}

// MeasureIndex returns the index of a measure name.
func (e *Engine) MeasureIndex(name string) (int, bool) {
	i, ok := e.index[name]
	return i, ok
}

// NewPractice returns an empty practice for this engine's measures.
func (e *Engine) NewPractice(id string) *Practice { return NewPractice(id, len(e.Measures)) }

// Add adds a practice (replacing one of the same id). Call before Finish.
func (e *Engine) Add(p *Practice) {
	if _, ok := e.practices[p.ID]; !ok {
		e.ids = append(e.ids, p.ID)
	}
	e.practices[p.ID] = p
}

// Practice returns a practice's values, or nil.
func (e *Engine) Practice(id string) *Practice { return e.practices[id] }

// IDs lists the practices, sorted.
func (e *Engine) IDs() []string { return e.ids }

// Months lists every month some practice published, sorted.
func (e *Engine) Months() []formats.Month { return e.months }

// Periods lists the federation's periods: every month from the first to the last month any
// practice published, and every calendar quarter and year wholly inside that range.
func (e *Engine) Periods() []formats.Period {
	if len(e.months) == 0 {
		return nil
	}
	return formats.PeriodsOf(e.months[0], e.months[len(e.months)-1])
}

// Finish computes the federation's sums. Every practice is answered for every federation
// period from its own coarsest values (so a federation year is the sum of the practices'
// year values where they are current, and of their finer values where not).
func (e *Engine) Finish() {
	slices.Sort(e.ids)
	months := map[formats.Month]bool{}
	for _, p := range e.practices {
		for k := range p.blocks {
			if per := k.period(); per.Kind == formats.KindMonth {
				months[per.Start] = true
			}
		}
	}
	e.months = e.months[:0]
	for m := range months {
		e.months = append(e.months, m)
	}
	slices.Sort(e.months)
	e.fed = map[formats.Period][]*[formats.NumShapes]fedCell{}
	periods := e.Periods()
	for _, id := range e.ids {
		p := e.practices[id]
		for _, per := range periods {
			for mi := range e.Measures {
				var cells *[formats.NumShapes]fedCell
				for shape := range formats.NumShapes {
					ev, list, ok := e.practiceCell(p, per, mi, shape)
					if !ok {
						break // the practice has nothing of this measure in this period
					}
					if cells == nil {
						row := e.fed[per]
						if row == nil {
							row = make([]*[formats.NumShapes]fedCell, len(e.Measures))
							e.fed[per] = row
						}
						if row[mi] == nil {
							row[mi] = new([formats.NumShapes]fedCell)
						}
						cells = row[mi]
					}
					cells[shape].events.Add(&ev)
					cells[shape].list.Add(&list)
				}
			}
		}
	}
	e.applySecure()
}

// practiceCell answers one period, measure and shape for one practice: the events, and the
// list sizes of the same pieces. ok is false when the practice has no value of the measure
// in any month of the period.
func (e *Engine) practiceCell(p *Practice, per formats.Period, mi, shape int) (ev, list Acc, ok bool) {
	if !e.est.add(p, per, mi, shape, &ev) {
		return Acc{}, Acc{}, false
	}
	ev.Practices = 1
	ev.Fallbacks = min(ev.Fallbacks, 1)
	if e.est.list >= 0 && e.est.list != mi {
		if e.est.add(p, per, e.est.list, shape, &list) {
			list.Practices = 1
			list.Fallbacks = min(list.Fallbacks, 1)
		} else {
			list = Acc{}
			ev.NoList = 1
		}
	}
	return ev, list, true
}

// span is what one figure covers: months from..to, age bands and sexes (nil: all).
type span struct {
	from, to     formats.Month
	bands, sexes []int
}

// sum adds up a span of measure mi for the federation (p nil) or one practice: the events
// and list sizes, and whether anything contributed. Practices is the most practices behind
// any one piece.
func (e *Engine) sum(p *Practice, mi int, s span) (ev, list Acc, ok bool) {
	return e.sumOf(p, mi, s, true)
}

// sumOf is sum; for the federation, secure totals replace the practices' sums where useSecure
// and they exist. Each piece adds 1 to Pieces (and to Secure when from a secure total).
func (e *Engine) sumOf(p *Practice, mi int, s span, useSecure bool) (ev, list Acc, ok bool) {
	pieces := Pieces(s.bands, s.sexes)
	practices := int32(0)
	for _, per := range TimePieces(s.from, s.to) {
		for _, shape := range pieces {
			var pe, pl Acc
			var got bool
			if p == nil {
				if row := e.fed[per]; row != nil && row[mi] != nil {
					c := &row[mi][shape]
					pe, pl, got = c.events, c.list, c.events.Practices > 0
					if useSecure && c.secure {
						pe, pl = c.sec, c.slist
					}
				}
			} else {
				pe, pl, got = e.practiceCell(p, per, mi, shape)
			}
			if !got {
				continue
			}
			ok = true
			pe.Pieces = 1
			practices = max(practices, pe.Practices)
			ev.Add(&pe)
			list.Add(&pl)
		}
	}
	ev.Practices, list.Practices = practices, practices
	return ev, list, ok
}

// Status of a figure with bounds lower..upper made of pieces of which suppressed were
// suppressed, under a suppressed range of 1..suppressMax:
//
//   - suppressed: the bounds lie wholly within 1..suppressMax: the figure is a small count
//     the policy would itself withhold (one practice's suppressed value and zeros
//     elsewhere), so its count is withheld and only its bounds are shown;
//   - partial: some piece was suppressed and estimated;
//   - rounded: every piece was published.
func Status(lower, upper int64, suppressed int32, suppressMax int64) string {
	switch {
	case suppressMax > 0 && lower >= 1 && upper <= suppressMax:
		return formats.StatusSuppressed
	case suppressed > 0:
		return StatusPartial
	}
	return formats.StatusRounded
}

// StatusPartial is the status of a figure some of whose pieces were suppressed.
const StatusPartial = "partial"

// Count is the figure to read for an accumulation: its estimate rounded to a whole number
// and kept within its bounds.
func Count(a *Acc) int64 {
	n := int64(a.Estimate + 0.5)
	return min(max(n, a.Lower), a.Upper)
}

// PeriodLabel names from..to: a month, quarter or year by its own name, else "from..to".
func PeriodLabel(from, to formats.Month) string {
	switch {
	case from == to:
		return from.String()
	case from%3 == 0 && to == from+2:
		return formats.QuarterOf(from).String()
	case from%12 == 0 && to == from+11:
		return formats.YearOf(from).String()
	}
	return fmt.Sprintf("%s..%s", from, to)
}
