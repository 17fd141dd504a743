package server

import (
	"math"
	"slices"

	"github.com/tributary-health/tributary/coordinator/combine"
	"github.com/tributary-health/tributary/coordinator/stats"
	"github.com/tributary-health/tributary/formats"
)

// Comparison is the answer of /api/compare: each practice's indirectly standardised ratio
// for one measure over a period, against the federation's age-sex-specific rates, with the
// funnel plot's control limits.
type Comparison struct {
	Combined string `json:"combined"`
	Measure  string `json:"measure"`
	From     string `json:"from"`
	To       string `json:"to"`
	// FederationRate is the federation's crude rate per 1,000 registered patients per month
	// over the selection: the level a ratio of 1 stands for.
	FederationRate *float64        `json:"federation_rate_per_1000"`
	Practices      []PracticeRatio `json:"practices"`
	// Limits are the funnel's control limits (ratio scale) at expected counts spanning the
	// practices', for drawing the funnel.
	Limits []FunnelPoint `json:"limits"`
}

// PracticeRatio is one practice's observed and expected events.
type PracticeRatio struct {
	Practice       string   `json:"practice"`
	Name           string   `json:"name,omitempty"`
	Status         string   `json:"status"`
	Observed       *float64 `json:"observed"` // estimate: published sum or midpoint of bounds
	EstimateMethod string   `json:"estimate_method"`
	ObservedLower  int64    `json:"observed_lower"`
	ObservedUpper  int64    `json:"observed_upper"`
	Expected       float64  `json:"expected"`
	ListSize       int64    `json:"list_size"` // patient-months: registered patients summed over the months
	Ratio          *float64 `json:"ratio"`
	RatioCILower   *float64 `json:"ratio_ci_lower"`
	RatioCIUpper   *float64 `json:"ratio_ci_upper"`
	RatioAtLower   *float64 `json:"ratio_at_lower"`
	RatioAtUpper   *float64 `json:"ratio_at_upper"`
	// StandardisedRate is Ratio × FederationRate: an indirectly standardised rate per 1,000.
	StandardisedRate *float64 `json:"standardised_rate_per_1000"`
	Limit95Lower     float64  `json:"limit95_lower"`
	Limit95Upper     float64  `json:"limit95_upper"`
	Limit998Lower    float64  `json:"limit998_lower"`
	Limit998Upper    float64  `json:"limit998_upper"`
	// Position is where the practice lies against the funnel: above_998, above_95, within,
	// below_95, below_998, or uncertain when its bounds straddle a limit.
	Position string `json:"position"`
}

// FunnelPoint is the control limits at one expected count.
type FunnelPoint struct {
	Expected      float64 `json:"expected"`
	Limit95Lower  float64 `json:"limit95_lower"`
	Limit95Upper  float64 `json:"limit95_upper"`
	Limit998Lower float64 `json:"limit998_lower"`
	Limit998Upper float64 `json:"limit998_upper"`
}

// compare computes the comparison of the given practices (nil: all) for one measure.
func (s *snapshot) compare(q *selection, practices []string) *Comparison {
	mi := q.measures[0]
	out := &Comparison{Combined: s.ptr.ID, Measure: formats.Measures[mi], From: q.from.String(), To: q.to.String(), Practices: []PracticeRatio{}, Limits: []FunnelPoint{}}
	if q.from == 0 && len(s.months) > 0 {
		out.From = s.months[0].String()
	}
	if q.to == 0 && len(s.months) > 0 {
		out.To = s.months[len(s.months)-1].String()
	}
	sm := s.ptr.SuppressMax
	// The federation's rate in each month and cell: estimate / list size.
	rates := map[formats.Month]*[nCells]float64{}
	var fed acc
	for m, md := range s.fed.months {
		if !q.inRange(m) || md.cells[mi] == nil {
			continue
		}
		r := new([nCells]float64)
		for ci, c := range md.cells[mi] {
			if !q.bands[ci/nSexes] || !q.sexes[ci%nSexes] {
				continue
			}
			a := acc{}
			a.add(c, md.lists[mi][ci])
			fed.merge(&a)
			if _, e, ok := a.estimate(sm); ok && a.list > 0 {
				r[ci] = e / float64(a.list)
			} else if a.list > 0 {
				r[ci] = float64(a.lower+a.upper) / 2 / float64(a.list)
			}
		}
		rates[m] = r
	}
	var fedRate float64
	if _, e, ok := fed.estimate(sm); ok && fed.list > 0 {
		fedRate = e / float64(fed.list)
		out.FederationRate = ptr(fedRate * 1000)
	}
	if practices == nil {
		practices = s.ids
	}
	minE, maxE := math.Inf(1), 0.0
	for _, id := range practices {
		t := s.practices[id]
		if t == nil {
			continue
		}
		var obs acc
		var expected float64
		for m, md := range t.months {
			r := rates[m]
			if r == nil || md.cells[mi] == nil {
				continue
			}
			for ci, c := range md.cells[mi] {
				if !q.bands[ci/nSexes] || !q.sexes[ci%nSexes] {
					continue
				}
				l := md.lists[mi][ci]
				obs.add(c, l)
				expected += float64(l) * r[ci]
			}
		}
		if obs.list == 0 {
			continue
		}
		pr := PracticeRatio{Practice: id, Name: s.names[id], ObservedLower: obs.lower, ObservedUpper: obs.upper, Expected: expected, ListSize: obs.list}
		status, est, ok := obs.estimate(sm)
		pr.Status = status
		if expected > 0 {
			pr.Limit95Lower, pr.Limit95Upper = stats.FunnelLimits(expected, stats.Conf95)
			pr.Limit998Lower, pr.Limit998Upper = stats.FunnelLimits(expected, stats.Conf998)
			minE, maxE = min(minE, expected), max(maxE, expected)
			pr.RatioAtLower, pr.RatioAtUpper = ptr(float64(obs.lower)/expected), ptr(float64(obs.upper)/expected)
		}
		if ok {
			pr.Observed = ptr(est)
			pr.EstimateMethod = EstimateMidpoint
			if status == formats.StatusRounded {
				pr.EstimateMethod = EstimatePublished
			}
			if r, err := stats.IndirectlyStandardised(est, expected, stats.Conf95); err == nil {
				pr.Ratio, pr.RatioCILower, pr.RatioCIUpper = ptr(r.Ratio), ptr(r.Lower), ptr(r.Upper)
				if status != formats.StatusRounded {
					// Widen the interval to cover the intervals at either bound.
					lo, _ := stats.IndirectlyStandardised(float64(obs.lower), expected, stats.Conf95)
					hi, _ := stats.IndirectlyStandardised(float64(obs.upper), expected, stats.Conf95)
					pr.RatioCILower, pr.RatioCIUpper = ptr(min(r.Lower, lo.Lower)), ptr(max(r.Upper, hi.Upper))
				}
				if out.FederationRate != nil {
					pr.StandardisedRate = ptr(r.Ratio * *out.FederationRate)
				}
			}
		}
		pr.Position = position(pr)
		out.Practices = append(out.Practices, pr)
	}
	if maxE > 0 {
		minE = max(minE/2, 0.5)
		maxE *= 1.5
		const n = 60
		for i := range n + 1 {
			e := minE * math.Pow(maxE/minE, float64(i)/n)
			p := FunnelPoint{Expected: e}
			p.Limit95Lower, p.Limit95Upper = stats.FunnelLimits(e, stats.Conf95)
			p.Limit998Lower, p.Limit998Upper = stats.FunnelLimits(e, stats.Conf998)
			out.Limits = append(out.Limits, p)
		}
	}
	return out
}

// position places a practice against its limits; a practice whose bounds straddle a limit is
// uncertain rather than placed by its estimate.
func position(p PracticeRatio) string {
	if p.RatioAtLower == nil {
		return "unknown"
	}
	lo, hi := *p.RatioAtLower, *p.RatioAtUpper
	place := func(r float64) string {
		switch {
		case r > p.Limit998Upper:
			return "above_998"
		case r > p.Limit95Upper:
			return "above_95"
		case r < p.Limit998Lower:
			return "below_998"
		case r < p.Limit95Lower:
			return "below_95"
		}
		return "within"
	}
	a, b := place(lo), place(hi)
	if a != b {
		return "uncertain"
	}
	return a
}

// CompletenessRow says whether one practice submitted one month.
type CompletenessRow struct {
	Practice  string `json:"practice"`
	Month     string `json:"month"`
	Submitted bool   `json:"submitted"`
	RunID     string `json:"run_id,omitempty"`
	Created   string `json:"created,omitempty"`
	Measures  int64  `json:"measures"`
	// Revisions counts the runs for this practice-month that a newer run superseded.
	Revisions int64 `json:"revisions"`
	// Quarantined counts files for this practice-month that failed verification.
	Quarantined int64 `json:"quarantined"`
}

// completeness lists practices × months; practices nil means every registered or
// contributing practice.
func (s *snapshot) completeness(practices []string, from, to formats.Month) []CompletenessRow {
	if practices == nil {
		set := map[string]bool{}
		for _, id := range s.ids {
			set[id] = true
		}
		for _, c := range s.report.Completeness {
			for _, p := range c.Missing {
				set[p] = true
			}
		}
		for p := range set {
			practices = append(practices, p)
		}
		slices.Sort(practices)
	}
	type pm struct{ practice, month string }
	revisions, quarantined := map[pm]int64{}, map[pm]int64{}
	for _, in := range s.report.Inputs {
		for _, f := range in.Files {
			switch f.Use {
			case combine.UseRevision:
				revisions[pm{in.Practice, f.Period}]++
			case combine.UseQuarantined:
				quarantined[pm{in.Practice, f.Period}]++
			}
		}
	}
	var out []CompletenessRow
	for _, p := range practices {
		for _, m := range s.months {
			if (from != 0 && m < from) || (to != 0 && m > to) {
				continue
			}
			ms := m.String()
			row := CompletenessRow{Practice: p, Month: ms, Revisions: revisions[pm{p, ms}], Quarantined: quarantined[pm{p, ms}]}
			if c, ok := s.byMonth[ms][p]; ok {
				row.Submitted, row.RunID, row.Created, row.Measures = true, c.RunID, c.Created.UTC().Format("2006-01-02T15:04:05Z"), int64(c.Measures)
			}
			out = append(out, row)
		}
	}
	if out == nil {
		out = []CompletenessRow{}
	}
	return out
}

// FileRevision is one run's file for a practice-month and what the combine did with it.
type FileRevision struct {
	Practice     string `json:"practice"`
	Month        string `json:"month"`
	RunID        string `json:"run_id"`
	Created      string `json:"created"`
	Key          string `json:"key"`
	SHA256       string `json:"sha256"`
	Use          string `json:"use"`
	SupersededBy string `json:"superseded_by,omitempty"`
}

// practiceRevisions lists every run's file for one practice (and month, if given), newest first.
func (s *snapshot) practiceRevisions(practice string, month formats.Month) []FileRevision {
	out := []FileRevision{}
	for _, in := range s.report.Inputs {
		if in.Practice != practice {
			continue
		}
		for _, f := range in.Files {
			if month != 0 && f.Period != month.String() {
				continue
			}
			out = append(out, FileRevision{Practice: practice, Month: f.Period, RunID: in.RunID, Created: in.Created.UTC().Format("2006-01-02T15:04:05Z"),
				Key: f.Key, SHA256: f.SHA256, Use: f.Use, SupersededBy: f.SupersededBy})
		}
	}
	slices.SortFunc(out, func(a, b FileRevision) int {
		if a.Month != b.Month {
			if a.Month < b.Month {
				return -1
			}
			return 1
		}
		if a.Created != b.Created {
			if a.Created > b.Created {
				return -1
			}
			return 1
		}
		if a.RunID > b.RunID {
			return -1
		}
		return 1
	})
	return out
}
