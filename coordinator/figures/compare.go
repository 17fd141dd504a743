package figures

import (
	"math"

	"github.com/tributary-health/tributary/coordinator/stats"
	"github.com/tributary-health/tributary/formats"
)

// Comparison is each practice's indirectly standardised ratio for one measure over a
// period, against the federation's age-specific rates, with the funnel plot's control
// limits.
type Comparison struct {
	Combined string `json:"combined,omitempty"` // the combined output it was computed from
	Measure  string `json:"measure"`
	From     string `json:"from"`
	To       string `json:"to"`
	// FederationRate is the federation's crude rate per 1,000 registered patients over the
	// period: the level a ratio of 1 stands for.
	FederationRate *float64        `json:"federation_rate_per_1000"`
	Practices      []PracticeRatio `json:"practices"`
	// Limits are the funnel's control limits (ratio scale) at expected counts spanning the
	// practices', for drawing the funnel.
	Limits []FunnelPoint `json:"limits"`
}

// PracticeRatio is one practice's observed and expected events.
type PracticeRatio struct {
	Practice string `json:"practice"`
	Name     string `json:"name,omitempty"`
	Status   string `json:"status"`
	// Observed is the figure to read (see Figure.Count); its bounds contain the truth.
	Observed      *int64  `json:"observed"`
	Method        string  `json:"method"`
	ObservedLower int64   `json:"observed_lower"`
	ObservedUpper int64   `json:"observed_upper"`
	Expected      float64 `json:"expected"`
	// ListSize is the mean registered list over the period.
	ListSize     int64    `json:"list_size"`
	Ratio        *float64 `json:"ratio"`
	RatioCILower *float64 `json:"ratio_ci_lower"`
	RatioCIUpper *float64 `json:"ratio_ci_upper"`
	RatioAtLower *float64 `json:"ratio_at_lower"`
	RatioAtUpper *float64 `json:"ratio_at_upper"`
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

// Compare compares the given practices (nil: all) on measure mi over q's months and its
// selection of age bands and sexes. Observed counts come from each practice's coarsest
// values (its year total where current); expected counts apply the federation's rate (from
// the practices' own published values: a comparison of practices never reads the holders'
// secure totals, which no practice's figure can be set against) in
// each age band (each band × sex when only some sexes are selected) to the practice's list
// size in it, from the band values.
func (e *Engine) Compare(q *Query, mi int, names map[string]string, practices []string) *Comparison {
	from, to := e.Range(q)
	out := &Comparison{Measure: e.Measures[mi], From: from.String(), To: to.String(), Practices: []PracticeRatio{}, Limits: []FunnelPoint{}}
	if from == 0 || to < from {
		return out
	}
	bands := q.Bands
	if bands == nil {
		bands = make([]int, formats.NumBands)
		for i := range bands {
			bands[i] = i
		}
	}
	// Strata: the age bands, split by sex when only some sexes are counted.
	var strata []span
	for _, b := range bands {
		if q.Sexes == nil {
			strata = append(strata, span{from: from, to: to, bands: []int{b}})
			continue
		}
		for _, x := range q.Sexes {
			strata = append(strata, span{from: from, to: to, bands: []int{b}, sexes: []int{x}})
		}
	}
	rates := make([]float64, len(strata))
	for i, s := range strata {
		ev, list, ok := e.sumOf(nil, mi, s, false)
		if ok && list.Estimate > 0 {
			rates[i] = ev.Estimate / list.Estimate
		}
	}
	whole := span{from: from, to: to, bands: q.Bands, sexes: q.Sexes}
	if ev, list, ok := e.sumOf(nil, mi, whole, false); ok && list.Estimate > 0 {
		months := float64(to-from) + 1
		out.FederationRate = ptr(ev.Estimate / (list.Estimate / months) * 1000)
	}
	if practices == nil {
		practices = e.ids
	}
	minE, maxE := math.Inf(1), 0.0
	for _, id := range practices {
		p := e.practices[id]
		if p == nil {
			continue
		}
		obs, list, ok := e.sum(p, mi, whole)
		if !ok || list.Estimate <= 0 || obs.NoList > 0 {
			continue
		}
		var expected float64
		for i, s := range strata {
			// The list size is the registered_patients measure's own value.
			if l, _, ok := e.sum(p, e.est.list, s); ok {
				expected += l.Estimate * rates[i]
			}
		}
		months := float64(to-from) + 1
		pr := PracticeRatio{Practice: id, Name: names[id], ObservedLower: obs.Lower, ObservedUpper: obs.Upper,
			Expected: expected, ListSize: int64(list.Estimate/months + 0.5)}
		pr.Status = Status(obs.Lower, obs.Upper, obs.Suppressed, e.SuppressMax)
		pr.Method = MethodPublished
		if obs.Suppressed > 0 || e.Policy.Rounding == "midpoint6" {
			pr.Method = MethodEstimated
		}
		count := Count(&obs)
		if expected > 0 {
			pr.Limit95Lower, pr.Limit95Upper = stats.FunnelLimits(expected, stats.Conf95)
			pr.Limit998Lower, pr.Limit998Upper = stats.FunnelLimits(expected, stats.Conf998)
			minE, maxE = min(minE, expected), max(maxE, expected)
			pr.RatioAtLower, pr.RatioAtUpper = ptr(float64(obs.Lower)/expected), ptr(float64(obs.Upper)/expected)
		}
		if pr.Status != formats.StatusSuppressed {
			pr.Observed = ptr(count)
			if r, err := stats.IndirectlyStandardised(float64(count), expected, stats.Conf95); err == nil {
				pr.Ratio, pr.RatioCILower, pr.RatioCIUpper = ptr(r.Ratio), ptr(r.Lower), ptr(r.Upper)
				if obs.Lower != obs.Upper {
					// Widen the interval to cover the intervals at either bound.
					lo, _ := stats.IndirectlyStandardised(float64(obs.Lower), expected, stats.Conf95)
					hi, _ := stats.IndirectlyStandardised(float64(obs.Upper), expected, stats.Conf95)
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
			x := minE * math.Pow(maxE/minE, float64(i)/n)
			pt := FunnelPoint{Expected: x}
			pt.Limit95Lower, pt.Limit95Upper = stats.FunnelLimits(x, stats.Conf95)
			pt.Limit998Lower, pt.Limit998Upper = stats.FunnelLimits(x, stats.Conf998)
			out.Limits = append(out.Limits, pt)
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
	a, b := place(*p.RatioAtLower), place(*p.RatioAtUpper)
	if a != b {
		return "uncertain"
	}
	return a
}
