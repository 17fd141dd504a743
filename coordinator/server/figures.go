package server

import (
	"slices"

	"github.com/tributary-health/tributary/coordinator/combine"
	"github.com/tributary-health/tributary/coordinator/stats"
	"github.com/tributary-health/tributary/formats"
)

// Figure is one answer row of /api/figures. See the OpenAPI document for the meaning of
// each field; in short: Count is given only when every contribution was published
// (status rounded). A partial figure has only bounds and an estimate (their midpoint),
// labelled as such by EstimateMethod; a suppressed figure has only bounds.
type Figure struct {
	Month          string   `json:"month"`
	Measure        string   `json:"measure"`
	AgeBand        string   `json:"age_band,omitempty"`
	Sex            string   `json:"sex,omitempty"`
	Practice       string   `json:"practice,omitempty"`
	Status         string   `json:"status"`
	Count          *int64   `json:"count"`
	Lower          int64    `json:"lower"`
	Upper          int64    `json:"upper"`
	Estimate       *float64 `json:"estimate"`
	EstimateMethod string   `json:"estimate_method"`
	ListSize       int64    `json:"list_size"`
	Rate           *float64 `json:"rate_per_1000"`
	RateLower      *float64 `json:"rate_lower"`
	RateUpper      *float64 `json:"rate_upper"`
	DSR            *float64 `json:"dsr_per_1000"`
	DSRCILower     *float64 `json:"dsr_ci_lower"`
	DSRCIUpper     *float64 `json:"dsr_ci_upper"`
	DSRAtLower     *float64 `json:"dsr_at_lower"`
	DSRAtUpper     *float64 `json:"dsr_at_upper"`
	DSRPartial     bool     `json:"dsr_partial"`
	Practices      int64    `json:"practices"`
}

// Estimate methods.
const (
	EstimatePublished = "published" // status rounded: the sum of published values
	EstimateMidpoint  = "midpoint"  // status partial: the midpoint of the bounds
)

// selection is a parsed, authorised figures question.
type selection struct {
	measures   []int
	from, to   formats.Month // inclusive; zero means open
	bands      [nBands]bool
	sexes      [nSexes]bool
	byBand     bool
	bySex      bool
	byPractice bool
	practices  []string // with byPractice: the practices to show (nil: every practice)
	federation bool     // rows of the federation (false when only practice rows are asked)
}

func (q *selection) inRange(m formats.Month) bool {
	return (q.from == 0 || m >= q.from) && (q.to == 0 || m <= q.to)
}

// acc sums cells the way combine does: published values, bounds, list sizes, and how many
// contributions were not plainly published.
type acc struct {
	count, lower, upper, list int64
	notRounded                int
}

func (a *acc) add(c cell, list int64) {
	if c.status != stSuppressed {
		a.count += int64(c.count)
	}
	if c.status != stRounded {
		a.notRounded++
	}
	a.lower += int64(c.lower)
	a.upper += int64(c.upper)
	a.list += list
}

func (a *acc) merge(b *acc) {
	a.count += b.count
	a.lower += b.lower
	a.upper += b.upper
	a.list += b.list
	a.notRounded += b.notRounded
}

// estimate returns the figure's status and the estimate a chart may draw: the published sum
// when every contribution was published, the midpoint of the bounds when some were not, and
// none when the figure is suppressed.
func (a *acc) estimate(suppressMax int64) (string, float64, bool) {
	st := combine.Status(a.lower, a.upper, a.notRounded, suppressMax)
	switch st {
	case formats.StatusRounded:
		return st, float64(a.count), true
	case combine.StatusPartial:
		return st, float64(a.lower+a.upper) / 2, true
	}
	return st, 0, false
}

type groupKey struct {
	month    formats.Month
	measure  int
	band     int8 // -1 when not broken down
	sex      int8
	practice string
}

// group is one answer row's accumulator, kept per age band for standardisation.
type group struct {
	bands     [nBands]acc
	practices int64
}

func ptr[T any](v T) *T { return &v }

// figures answers a selection from a snapshot.
func (s *snapshot) figures(q *selection) []Figure {
	groups := map[groupKey]*group{}
	var keys []groupKey
	addTable := func(practice string, t *table) {
		for m, md := range t.months {
			if !q.inRange(m) {
				continue
			}
			for _, mi := range q.measures {
				cells := md.cells[mi]
				if cells == nil {
					continue
				}
				lists := md.lists[mi]
				for ci := range nCells {
					b, x := ci/nSexes, ci%nSexes
					if !q.bands[b] || !q.sexes[x] {
						continue
					}
					k := groupKey{month: m, measure: mi, band: -1, sex: -1, practice: practice}
					if q.byBand {
						k.band = int8(b)
					}
					if q.bySex {
						k.sex = int8(x)
					}
					g := groups[k]
					if g == nil {
						g = new(group)
						groups[k] = g
						keys = append(keys, k)
					}
					g.bands[b].add(cells[ci], lists[ci])
					if practice == "" {
						g.practices = max(g.practices, int64(md.practices[mi]))
					} else {
						g.practices = 1
					}
				}
			}
		}
	}
	if q.federation {
		addTable("", s.fed)
	}
	if q.byPractice {
		ids := q.practices
		if ids == nil {
			ids = s.ids
		}
		for _, id := range ids {
			if t := s.practices[id]; t != nil {
				addTable(id, t)
			}
		}
	}
	slices.SortFunc(keys, func(a, b groupKey) int {
		if a.practice != b.practice {
			if a.practice == "" {
				return -1
			}
			if b.practice == "" {
				return 1
			}
			if a.practice < b.practice {
				return -1
			}
			return 1
		}
		if a.month != b.month {
			return int(a.month - b.month)
		}
		if a.measure != b.measure {
			return a.measure - b.measure
		}
		if a.band != b.band {
			return int(a.band) - int(b.band)
		}
		return int(a.sex) - int(b.sex)
	})
	out := make([]Figure, 0, len(keys))
	for _, k := range keys {
		out = append(out, s.figure(k, groups[k]))
	}
	return out
}

func (s *snapshot) figure(k groupKey, g *group) Figure {
	f := Figure{Month: k.month.String(), Measure: formats.Measures[k.measure], Practice: k.practice, Practices: g.practices}
	if k.band >= 0 {
		f.AgeBand = formats.AgeBands[k.band]
	}
	if k.sex >= 0 {
		f.Sex = formats.Sexes[k.sex]
	}
	var tot acc
	for i := range g.bands {
		tot.merge(&g.bands[i])
	}
	sm := s.ptr.SuppressMax
	status, est, ok := tot.estimate(sm)
	f.Status, f.Lower, f.Upper, f.ListSize = status, tot.lower, tot.upper, tot.list
	if ok {
		f.Estimate = ptr(est)
		f.EstimateMethod = EstimateMidpoint
		if status == formats.StatusRounded {
			f.Count = ptr(tot.count)
			f.EstimateMethod = EstimatePublished
		}
	}
	if formats.Measures[k.measure] == formats.RegisteredPatients || tot.list <= 0 {
		return f
	}
	per := func(n float64) *float64 { return ptr(n / float64(tot.list) * 1000) }
	if ok {
		f.Rate = per(est)
	}
	f.RateLower, f.RateUpper = per(float64(tot.lower)), per(float64(tot.upper))
	if k.band >= 0 {
		return f // a rate within one age band needs no standardisation
	}
	var evEst, evLo, evHi, pop [nBands]float64
	for i, b := range g.bands {
		_, e, ok := b.estimate(sm)
		if !ok {
			e = float64(b.lower+b.upper) / 2
		}
		evEst[i], evLo[i], evHi[i], pop[i] = e, float64(b.lower), float64(b.upper), float64(b.list)
		if b.notRounded > 0 {
			f.DSRPartial = true
		}
	}
	if status == formats.StatusSuppressed {
		// No estimate is shown for a suppressed figure, only where its bounds put the rate.
		lo, err1 := dsr(evLo[:], pop[:])
		hi, err2 := dsr(evHi[:], pop[:])
		if err1 == nil && err2 == nil {
			f.DSRAtLower, f.DSRAtUpper, f.DSRPartial = ptr(lo.Rate), ptr(hi.Rate), true
		}
		return f
	}
	d, err := dsr(evEst[:], pop[:])
	if err != nil {
		return f
	}
	f.DSR, f.DSRCILower, f.DSRCIUpper = ptr(d.Rate), ptr(d.Lower), ptr(d.Upper)
	if f.DSRPartial {
		lo, err1 := dsr(evLo[:], pop[:])
		hi, err2 := dsr(evHi[:], pop[:])
		if err1 == nil && err2 == nil {
			f.DSRAtLower, f.DSRAtUpper = ptr(lo.Rate), ptr(hi.Rate)
			f.DSRCILower, f.DSRCIUpper = ptr(min(d.Lower, lo.Lower)), ptr(max(d.Upper, hi.Upper))
		}
	} else {
		f.DSRAtLower, f.DSRAtUpper = f.DSR, f.DSR
	}
	return f
}

var espWeights = stats.ESPWeights()

func dsr(events, pop []float64) (stats.DSR, error) {
	return stats.DirectlyStandardised(events, pop, espWeights, 1000, stats.Conf95)
}
