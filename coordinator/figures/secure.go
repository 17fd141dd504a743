package figures

import (
	"fmt"
	"slices"
	"strings"

	"github.com/tributary-health/tributary/coordinator/stats"
	"github.com/tributary-health/tributary/formats"
)

// MethodSecure is the method of a federation figure answered wholly from the holders'
// securely aggregated totals (issue 11): the exact federation sum, through the federation's
// disclosure policy once, so its bounds are those the final rounding allows.
const MethodSecure = "secure"

// SecureTotal is a securely aggregated federation value of one period and measure, every
// shape through the federation's policy, offered to the engine with the practices whose
// reports it sums. A quarter's or year's total is used only where every month of it is, from
// the same round.
type SecureTotal struct {
	Period    formats.Period
	Measure   string
	Round     string
	Practices []string // sorted; for a quarter or year, unused (its months decide)
	Values    *[formats.NumShapes]formats.Protected
}

// SecureUse is what the engine did with one offered month total (or one refused before it
// was offered, see SecureNote): Used, or not with the reason.
type SecureUse struct {
	Month     string `json:"month"`
	Measure   string `json:"measure"`
	Round     string `json:"round"`
	Practices int    `json:"practices"`
	Used      bool   `json:"used"`
	Reason    string `json:"reason,omitempty"`
}

// SetSecure offers secure totals and the reasons others were not offered (by month and
// measure; they become the notes of the federation rows they touch). Call before Finish: a
// month total replaces the sum of the practices' published values only where its practices
// are exactly those that supplied the measure that month; otherwise the practices' sum
// stands, with the reason in a note. The practices' own values, and practice comparison,
// are never changed.
func (e *Engine) SetSecure(totals []SecureTotal, refused []SecureUse) {
	e.secure = totals
	e.secureRefused = refused
}

// SecureUses lists, after Finish, what became of every offered month total and every
// refused one, by month and measure.
func (e *Engine) SecureUses() []SecureUse { return e.secureUses }

type monthMeasure struct {
	month formats.Month
	mi    int
}

// applySecure replaces federation cells with the secure totals that match (called by Finish).
func (e *Engine) applySecure() {
	e.secureUses = nil
	e.secureNotes = map[monthMeasure]string{}
	if len(e.secure) == 0 && len(e.secureRefused) == 0 {
		return
	}
	for _, u := range e.secureRefused {
		m, err := formats.ParseMonth(u.Month)
		mi, ok := e.index[u.Measure]
		if err != nil || !ok {
			continue
		}
		u.Used = false
		e.secureUses = append(e.secureUses, u)
		e.secureNotes[monthMeasure{m, mi}] = secureNote(u.Round, u.Reason)
	}
	used := map[monthMeasure]string{} // -> round
	sets := map[monthMeasure][]string{}
	for _, t := range e.secure {
		mi, ok := e.index[t.Measure]
		if !ok || t.Values == nil || t.Period.Kind != formats.KindMonth {
			continue
		}
		k := monthMeasure{t.Period.Start, mi}
		u := SecureUse{Month: t.Period.Start.String(), Measure: t.Measure, Round: t.Round, Practices: len(t.Practices)}
		have := e.suppliers(t.Period, mi)
		if why := setDifference(t.Practices, have); why != "" {
			u.Reason = why
			e.secureNotes[k] = secureNote(t.Round, why)
		} else if e.substitute(t.Period, mi, t.Values) {
			u.Used = true
			used[k], sets[k] = t.Round, t.Practices
		} else {
			u.Reason = "no published figure of the month to replace"
		}
		e.secureUses = append(e.secureUses, u)
	}
	for _, t := range e.secure {
		mi, ok := e.index[t.Measure]
		if !ok || t.Values == nil || t.Period.Kind == formats.KindMonth {
			continue
		}
		all := true
		for m := t.Period.Start; m <= t.Period.End(); m++ {
			all = all && used[monthMeasure{m, mi}] == t.Round
		}
		if all {
			e.substitute(t.Period, mi, t.Values)
		}
	}
	// A measure's rate: its list sizes come from the same practices; where the registered
	// patients of those very practices have a secure total of the same round, it serves.
	if e.est.list >= 0 {
		for per, row := range e.fed {
			lc := row[e.est.list]
			if lc == nil || lc[formats.TotalShape].sec.Secure == 0 {
				continue
			}
			for mi, cells := range row {
				if cells == nil || mi == e.est.list || cells[formats.TotalShape].sec.Secure == 0 || !e.sameSecureSet(per, mi, used, sets) {
					continue
				}
				for shape := range cells {
					c := &cells[shape]
					if c.secure && lc[shape].secure && c.events.NoList == 0 {
						l := lc[shape].sec
						l.Published, l.Secure = c.list.Published, 0
						c.slist = l
					}
				}
			}
		}
	}
	slices.SortFunc(e.secureUses, func(a, b SecureUse) int {
		if c := strings.Compare(a.Month, b.Month); c != 0 {
			return c
		}
		return strings.Compare(a.Measure, b.Measure)
	})
}

// sameSecureSet reports whether every month of per has secure totals of measure mi and of
// registered patients from the same round over the same practices.
func (e *Engine) sameSecureSet(per formats.Period, mi int, used map[monthMeasure]string, sets map[monthMeasure][]string) bool {
	for m := per.Start; m <= per.End(); m++ {
		a, b := monthMeasure{m, mi}, monthMeasure{m, e.est.list}
		if used[a] == "" || used[a] != used[b] || !slices.Equal(sets[a], sets[b]) {
			return false
		}
	}
	return true
}

// suppliers lists the practices with a value of measure mi in month per, sorted.
func (e *Engine) suppliers(per formats.Period, mi int) []string {
	var out []string
	for _, id := range e.ids {
		if e.practices[id].Get(per, mi) != nil {
			out = append(out, id)
		}
	}
	return out
}

// setDifference says how the secure total's practices differ from the federation figure's,
// or "" when they are the same.
func setDifference(secure, published []string) string {
	if slices.Equal(secure, published) {
		return ""
	}
	var only, missing []string
	for _, p := range secure {
		if !slices.Contains(published, p) {
			only = append(only, p)
		}
	}
	for _, p := range published {
		if !slices.Contains(secure, p) {
			missing = append(missing, p)
		}
	}
	var parts []string
	if len(missing) > 0 {
		parts = append(parts, "it leaves out "+listNames(missing)+", whose published values the federation figure includes")
	}
	if len(only) > 0 {
		parts = append(parts, "it counts "+listNames(only)+", whose published values the federation figure does not include")
	}
	return fmt.Sprintf("its practices differ from the federation figure's (%d against %d): %s", len(secure), len(published), strings.Join(parts, "; "))
}

func listNames(ids []string) string {
	if len(ids) > 5 {
		return strings.Join(ids[:5], ", ") + fmt.Sprintf(" and %d more", len(ids)-5)
	}
	return strings.Join(ids, ", ")
}

func secureNote(round, reason string) string {
	return "secure total of round " + round + " not used: " + reason + "; the sum of the practices' published values is shown"
}

// substitute sets the secure values of every shape of (per, mi) that the holders published
// (a shape they withheld keeps the practices' sum). It reports whether there was a
// federation figure to replace.
func (e *Engine) substitute(per formats.Period, mi int, vals *[formats.NumShapes]formats.Protected) bool {
	row := e.fed[per]
	if row == nil || row[mi] == nil {
		return false
	}
	cells := row[mi]
	for shape := range cells {
		v, ok := ValueOf(vals[shape])
		if !ok || v.Status == Withheld {
			continue
		}
		c := &cells[shape]
		a := Acc{Published: c.events.Published, Lower: int64(v.Lower), Upper: int64(v.Upper), Practices: c.events.Practices,
			NoList: c.events.NoList, Secure: 1}
		if v.Status == Rounded {
			a.Estimate = float64(v.Count)
		} else {
			a.Suppressed = 1
			a.Estimate = stats.TruncatedPoissonMean(1, int(v.Lower), int(v.Upper))
		}
		c.sec, c.slist, c.secure = a, c.list, true
	}
	return true
}

// secureNotesOf lists the notes of the months of s whose secure totals were not used.
func (e *Engine) secureNotesOf(mi int, s span) string {
	if len(e.secureNotes) == 0 {
		return ""
	}
	var notes []string
	months := 0
	for m := s.from; m <= s.to; m++ {
		if n, ok := e.secureNotes[monthMeasure{m, mi}]; ok {
			months++
			if !slices.Contains(notes, n) && len(notes) < 2 {
				notes = append(notes, n)
			}
		}
	}
	out := strings.Join(notes, "; ")
	if months > len(notes) {
		out += fmt.Sprintf(" (%d months in all)", months)
	}
	return out
}
