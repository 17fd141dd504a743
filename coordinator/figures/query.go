package figures

import (
	"fmt"
	"math"
	"slices"

	"github.com/tributary-health/tributary/coordinator/stats"
	"github.com/tributary-health/tributary/formats"
)

// Query is one question: measures over months, broken down (or not) by month, age band,
// sex and practice, for a selection of age bands and sexes.
type Query struct {
	Measures []int         // indexes into Engine.Measures; empty: all
	From, To formats.Month // inclusive; zero: the federation's first or last month
	ByMonth  bool          // a row per month; otherwise one row for the whole of From..To
	ByBand   bool
	BySex    bool
	Bands    []int // the age bands to count (indexes into formats.AgeBands); nil: all
	Sexes    []int // the sexes to count; nil: all
	// ByPractice adds a row per practice (Practices, or every practice when nil).
	ByPractice bool
	Practices  []string
	// Federation includes the federation's rows.
	Federation bool
}

// Figure is one answer row. The JSON names are the API's and the CSV's columns.
type Figure struct {
	Period   string `json:"period"` // YYYY-MM, YYYY-Qn, YYYY, or YYYY-MM..YYYY-MM
	From     string `json:"from"`
	To       string `json:"to"`
	Measure  string `json:"measure"`
	AgeBand  string `json:"age_band,omitempty"`
	Sex      string `json:"sex,omitempty"`
	Practice string `json:"practice,omitempty"`
	Status   string `json:"status"` // rounded, partial or suppressed
	// Count is the figure to read; it always lies within Lower..Upper. Null when suppressed.
	Count *int64 `json:"count"`
	Lower int64  `json:"lower"`
	Upper int64  `json:"upper"`
	// PublishedSum is the sum of the published values alone: suppressed values add nothing.
	PublishedSum int64 `json:"published_sum"`
	// Method says what Count is: "published" (a sum of published values), "estimated"
	// (suppressed values in it are estimated, or the policy publishes midpoints), or
	// "secure" (a federation figure answered wholly from the holders' securely aggregated
	// totals: the exact sum over the same practices, rounded once, so Lower..Upper are the
	// bounds that rounding allows while PublishedSum is still the practices' sum).
	Method string `json:"method"`
	// ListSize is the registered patients behind the figure (the mean over its months for a
	// row of several), with its bounds. Null for registered_patients itself.
	ListSize  *int64   `json:"list_size"`
	ListLower *float64 `json:"list_lower"`
	ListUpper *float64 `json:"list_upper"`
	// Rate is Count per 1,000 registered patients over the row's months; RateLower and
	// RateUpper contain the true rate whenever the count's and list size's bounds contain
	// theirs (RateUpper is null when the list size could be 0).
	Rate      *float64 `json:"rate_per_1000"`
	RateLower *float64 `json:"rate_lower"`
	RateUpper *float64 `json:"rate_upper"`
	// The directly age-standardised rate per 1,000 (2013 European Standard Population) from
	// the age band values, with its 95% interval (Dobson) and the range the true DSR lies in
	// given every band's bounds (DSRAtUpper null when unbounded). DSRNote says why there is
	// none.
	DSR        *float64 `json:"dsr_per_1000"`
	DSRCILower *float64 `json:"dsr_ci_lower"`
	DSRCIUpper *float64 `json:"dsr_ci_upper"`
	DSRAtLower *float64 `json:"dsr_at_lower"`
	DSRAtUpper *float64 `json:"dsr_at_upper"`
	DSRPartial bool     `json:"dsr_partial"`
	DSRNote    string   `json:"dsr_note,omitempty"`
	Practices  int64    `json:"practices"`
	Note       string   `json:"note,omitempty"`
	// Secure is true when Method is "secure" (last, so that CSV columns keep their places).
	Secure bool `json:"secure"`
}

// Methods of a Figure's count.
const (
	MethodPublished = "published"
	MethodEstimated = "estimated"
)

// MinDSREvents is the fewest events a DSR is published for, as PHE's technical guidance
// on age standardisation advises: below it the rate is too unstable to compare.
const MinDSREvents = 10

func ptr[T any](v T) *T { return &v }

// Range returns q's months, with zero ends filled from the federation's.
func (e *Engine) Range(q *Query) (from, to formats.Month) {
	from, to = q.From, q.To
	if len(e.months) > 0 {
		if from == 0 {
			from = e.months[0]
		}
		if to == 0 {
			to = e.months[len(e.months)-1]
		}
	}
	return from, to
}

// Figures answers q: federation rows first, then practice rows, each ordered by period,
// measure, age band and sex.
func (e *Engine) Figures(q *Query) []Figure {
	from, to := e.Range(q)
	if from == 0 || to < from {
		return []Figure{}
	}
	measures := q.Measures
	if len(measures) == 0 {
		measures = make([]int, len(e.Measures))
		for i := range measures {
			measures[i] = i
		}
	}
	type window struct{ from, to formats.Month }
	var windows []window
	if q.ByMonth {
		for _, m := range e.months {
			if m >= from && m <= to {
				windows = append(windows, window{m, m})
			}
		}
	} else {
		windows = []window{{from, to}}
	}
	bandGroups := [][]int{q.Bands}
	if q.ByBand {
		bandGroups = nil
		for b := range formats.NumBands {
			if q.Bands == nil || slices.Contains(q.Bands, b) {
				bandGroups = append(bandGroups, []int{b})
			}
		}
	}
	sexGroups := [][]int{q.Sexes}
	if q.BySex {
		sexGroups = nil
		for x := range formats.NumSexes {
			if q.Sexes == nil || slices.Contains(q.Sexes, x) {
				sexGroups = append(sexGroups, []int{x})
			}
		}
	}
	var targets []*Practice
	if q.Federation {
		targets = append(targets, nil)
	}
	if q.ByPractice {
		ids := q.Practices
		if ids == nil {
			ids = e.ids
		}
		for _, id := range ids {
			if p := e.practices[id]; p != nil {
				targets = append(targets, p)
			}
		}
	}
	out := []Figure{}
	for _, p := range targets {
		for _, w := range windows {
			for _, mi := range measures {
				for _, bands := range bandGroups {
					for _, sexes := range sexGroups {
						s := span{from: w.from, to: w.to, bands: bands, sexes: sexes}
						if f, ok := e.figure(p, mi, s, q.ByBand, q.BySex); ok {
							out = append(out, f)
						}
					}
				}
			}
		}
	}
	return out
}

// MaxRows is how many rows Figures may give for q at most (rows with no data are left
// out, so the answer may hold fewer): a caller bounds the cost of a question before asking.
func (e *Engine) MaxRows(q *Query) int {
	from, to := e.Range(q)
	if from == 0 || to < from {
		return 0
	}
	windows := 1
	if q.ByMonth {
		windows = int(to-from) + 1
	}
	measures := len(q.Measures)
	if measures == 0 {
		measures = len(e.Measures)
	}
	bands, sexes := 1, 1
	if q.ByBand {
		bands = formats.NumBands
		if q.Bands != nil {
			bands = len(q.Bands)
		}
	}
	if q.BySex {
		sexes = formats.NumSexes
		if q.Sexes != nil {
			sexes = len(q.Sexes)
		}
	}
	targets := 0
	if q.Federation {
		targets++
	}
	if q.ByPractice {
		if q.Practices != nil {
			targets += len(q.Practices)
		} else {
			targets += len(e.ids)
		}
	}
	return windows * measures * bands * sexes * targets
}

// figure computes one row; ok is false when nothing contributed to it.
func (e *Engine) figure(p *Practice, mi int, s span, byBand, bySex bool) (Figure, bool) {
	ev, list, ok := e.sum(p, mi, s)
	if !ok {
		return Figure{}, false
	}
	f := Figure{Period: PeriodLabel(s.from, s.to), From: s.from.String(), To: s.to.String(), Measure: e.Measures[mi],
		Lower: ev.Lower, Upper: ev.Upper, PublishedSum: ev.Published, Practices: int64(ev.Practices)}
	if p != nil {
		f.Practice = p.ID
	}
	if byBand && len(s.bands) == 1 {
		f.AgeBand = formats.AgeBands[s.bands[0]]
	}
	if bySex && len(s.sexes) == 1 {
		f.Sex = formats.Sexes[s.sexes[0]]
	}
	f.Status = Status(ev.Lower, ev.Upper, ev.Suppressed, e.SuppressMax)
	f.Method = MethodPublished
	if ev.Suppressed > 0 || e.Policy.Rounding == "midpoint6" {
		f.Method = MethodEstimated
	}
	count := Count(&ev)
	if f.Status != formats.StatusSuppressed {
		f.Count = ptr(count)
	}
	if ev.Fallbacks > 0 {
		f.Note = "partly from finer values: a quarter or year value was out of date, incomplete or withheld at some practices"
	}
	if p == nil {
		switch {
		case ev.Secure > 0 && ev.Secure == ev.Pieces:
			f.Method, f.Secure, f.Note = MethodSecure, true, ""
		case ev.Secure > 0:
			f.Note = joinNote(f.Note, fmt.Sprintf("%d of its %d parts from the holders' secure totals, the others summed from the practices' published values", ev.Secure, ev.Pieces))
		}
		f.Note = joinNote(f.Note, e.secureNotesOf(mi, s))
	}
	if mi == e.est.list || e.est.list < 0 || list.Practices == 0 {
		return f, true
	}
	if ev.NoList > 0 {
		f.Note = joinNote(f.Note, "no rates: some practices supplied this measure but no list size")
		return f, true
	}
	months := float64(s.to-s.from) + 1
	f.ListSize = ptr(Count(&list) / int64(months))
	f.ListLower, f.ListUpper = ptr(float64(list.Lower)/months), ptr(float64(list.Upper)/months)
	if f.Count != nil && list.Estimate > 0 {
		f.Rate = ptr(float64(count) / (list.Estimate / months) * 1000)
	}
	if list.Upper > 0 {
		f.RateLower = ptr(float64(ev.Lower) / (float64(list.Upper) / months) * 1000)
	}
	if list.Lower > 0 {
		f.RateUpper = ptr(float64(ev.Upper) / (float64(list.Lower) / months) * 1000)
	}
	if f.Rate != nil {
		// The rate is of the rounded count over the estimated list size; keep it inside the
		// bounds the interval arithmetic gives.
		if f.RateLower != nil {
			*f.Rate = max(*f.Rate, *f.RateLower)
		}
		if f.RateUpper != nil {
			*f.Rate = min(*f.Rate, *f.RateUpper)
		}
	}
	if !byBand || len(s.bands) != 1 {
		e.standardise(p, mi, s, &f)
	}
	return f, true
}

func joinNote(a, b string) string {
	if a == "" || b == "" {
		return a + b
	}
	return a + "; " + b
}

// standardise adds the directly age-standardised rate from the age band values of the span.
func (e *Engine) standardise(p *Practice, mi int, s span, f *Figure) {
	bands := s.bands
	if bands == nil {
		bands = make([]int, formats.NumBands)
		for i := range bands {
			bands[i] = i
		}
	}
	months := float64(s.to-s.from) + 1
	n := len(bands)
	est, evLo, evHi := make([]float64, n), make([]float64, n), make([]float64, n)
	pop, popLo, popHi, w := make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)
	var events float64
	unboundedAbove := false
	for i, b := range bands {
		ev, list, _ := e.sum(p, mi, span{from: s.from, to: s.to, bands: []int{b}, sexes: s.sexes})
		est[i], evLo[i], evHi[i] = ev.Estimate, float64(ev.Lower), float64(ev.Upper)
		pop[i], popLo[i], popHi[i] = list.Estimate/months, float64(list.Lower)/months, float64(list.Upper)/months
		w[i] = formats.ESP2013[formats.AgeBands[b]]
		events += ev.Estimate
		if ev.Suppressed > 0 || list.Suppressed > 0 || ev.Lower != ev.Upper || list.Lower != list.Upper {
			f.DSRPartial = true
		}
		if popLo[i] <= 0 && evHi[i] > 0 {
			unboundedAbove = true // events that may fall on no population: no upper bound
		}
	}
	if events < MinDSREvents {
		f.DSRNote = "fewer than 10 events: PHE does not publish a directly standardised rate on so few"
		return
	}
	d, err := stats.DirectlyStandardised(est, pop, w, 1000, stats.Conf95)
	if err != nil {
		f.DSRNote = "no registered population in the selected age bands"
		return
	}
	f.DSR, f.DSRCILower, f.DSRCIUpper = ptr(d.Rate), ptr(d.Lower), ptr(d.Upper)
	// The DSR rises with every band's events and falls with every band's population: its
	// true value lies between the DSR at (lowest events, highest population) and at
	// (highest events, lowest population).
	if lo, err := stats.DirectlyStandardised(evLo, popHi, w, 1000, stats.Conf95); err == nil {
		f.DSRAtLower = ptr(min(lo.Rate, d.Rate))
		f.DSRCILower = ptr(min(d.Lower, lo.Lower))
	}
	if !unboundedAbove {
		if hi, err := stats.DirectlyStandardised(evHi, popLo, w, 1000, stats.Conf95); err == nil && !math.IsInf(hi.Rate, 0) {
			f.DSRAtUpper = ptr(max(hi.Rate, d.Rate))
			f.DSRCIUpper = ptr(max(d.Upper, hi.Upper))
		}
	}
}
