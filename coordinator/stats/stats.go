// Package stats computes the rates a federation lead compares practices by: directly
// age-standardised rates with the 2013 European Standard Population, indirectly standardised
// ratios (observed / expected), exact Poisson confidence intervals and funnel-plot control
// limits.
//
// # Methods and sources
//
//   - Exact Poisson limits for a count O come from the chi-squared distribution:
//     lower = χ²(α/2; 2O)/2, upper = χ²(1−α/2; 2O+2)/2 (Garwood 1936; Public Health England,
//     "Technical Guide: Confidence Intervals", 2018, section 3.2).
//   - Byar's approximation to the same limits (Breslow and Day 1987; the PHE guide above,
//     section 3.3) is given for comparison; the exact limits are the ones used.
//   - A directly standardised rate is Σ wᵢ·Oᵢ/nᵢ / Σ wᵢ, with wᵢ the standard population of
//     band i, Oᵢ the events and nᵢ the population at risk. Its 95% interval is Dobson's method
//     (Dobson, Kuulasmaa, Eberle and Scherer, "Confidence intervals for weighted sums of
//     Poisson parameters", Statistics in Medicine 10:457-462, 1991), as in the Association of
//     Public Health Observatories' "Technical Briefing 3: Commonly used public health
//     statistics and their confidence intervals" (2008) and PHE's "Technical Guide: Age
//     standardisation" (2019): DSR ± √(var(DSR)/var(O)) × (O_limit − O), with O = ΣOᵢ,
//     var(O) = O, var(DSR) = Σ (wᵢ²·Oᵢ/nᵢ²) / (Σwᵢ)², and O_limit the exact Poisson limits of O.
//     When O = 0 the interval is [0, DSR_max] with the weighted rate that the upper
//     Poisson limit of O would give spread over the bands as the population is (PHE's guide
//     leaves the DSR of zero events undefined; this package reports the rate 0 with that
//     upper limit so a chart can still draw it).
//   - An indirectly standardised ratio is O/E, E = Σ nᵢ·rᵢ with rᵢ the reference
//     (federation) rate in stratum i; its interval is the exact Poisson interval of O divided
//     by E (PHE "Technical Guide: Confidence Intervals", section 4.4).
//   - Funnel-plot control limits for a ratio with expected count E are the exact Poisson
//     limits of a count equal to E, divided by E (Spiegelhalter, "Funnel plots for comparing
//     institutional performance", Statistics in Medicine 24:1185-1202, 2005, with the
//     chi-squared form of the Poisson quantiles, as in PHE's funnel plot tool): 95% (α = 0.05,
//     about 2 standard deviations) and 99.8% (α = 0.002, about 3).
//
// # Suppressed inputs
//
// Counts arrive through disclosure control as a published value or as bounds. The functions
// here take plain numbers; the coordinator computes each standardised figure three times:
// at the lower bounds of every band, at the upper bounds, and at an estimate (the published
// value where there is one, the midpoint of the bounds where there is not). Since the rates
// are increasing in every count, the true standardised rate lies between the first two. The
// confidence interval is computed at the estimate and widened to cover the intervals at the
// bounds, and the figure is marked partial so it is never shown as if it were exact.
package stats

import (
	"errors"
	"math"
	"sync"

	"github.com/tributary-health/tributary/formats"
	"gonum.org/v1/gonum/stat/distuv"
)

// Confidence levels used by the coordinator.
const (
	Conf95  = 0.95
	Conf998 = 0.998
)

// PoissonLimits returns the exact (Garwood) confidence interval at level conf for the mean of
// a Poisson count of which o was observed. o may be fractional (an estimate between bounds);
// the chi-squared distribution is defined for any positive degrees of freedom.
//
// Limits of whole and half counts (every count the coordinator sees: sums of published
// values and midpoints of integer bounds) are remembered, since finding a chi-squared quantile
// takes microseconds and a dashboard query may need thousands.
func PoissonLimits(o, conf float64) (lower, upper float64) {
	if o < 0 || math.IsNaN(o) || conf <= 0 || conf >= 1 {
		return math.NaN(), math.NaN()
	}
	twice := o * 2
	k := memoKey{int64(twice), conf}
	memo := twice == math.Trunc(twice) && twice < 1<<40
	if memo {
		if v, ok := poissonMemo.Load(k); ok {
			p := v.([2]float64)
			return p[0], p[1]
		}
	}
	defer func() {
		if memo {
			poissonMemo.Store(k, [2]float64{lower, upper})
		}
	}()
	a := (1 - conf) / 2
	if o > 0 {
		lower = distuv.ChiSquared{K: 2 * o}.Quantile(a) / 2
	}
	upper = distuv.ChiSquared{K: 2*o + 2}.Quantile(1-a) / 2
	return lower, upper
}

var poissonMemo sync.Map

type memoKey struct {
	twice int64
	conf  float64
}

// ByarLimits returns Byar's approximation to PoissonLimits.
func ByarLimits(o, conf float64) (lower, upper float64) {
	z := distuv.UnitNormal.Quantile(1 - (1-conf)/2)
	if o > 0 {
		lower = o * math.Pow(1-1/(9*o)-z/(3*math.Sqrt(o)), 3)
	}
	o1 := o + 1
	upper = o1 * math.Pow(1-1/(9*o1)+z/(3*math.Sqrt(o1)), 3)
	return lower, upper
}

// ErrNoPopulation is returned when a standardised figure has no population to stand on.
var ErrNoPopulation = errors.New("no population at risk")

// DSR is a directly standardised rate with its confidence interval, per Per people.
type DSR struct {
	Rate, Lower, Upper float64
	Events             float64 // observed events, ΣOᵢ
	Population         float64 // population at risk, Σnᵢ
}

// DirectlyStandardised returns the directly standardised rate per `per` people of events[i]
// in population[i], weighted by weights[i] (e.g. formats.ESP2013 in formats.AgeBands order),
// with a confidence interval at level conf by Dobson's method. A band with no population
// contributes a rate of zero (its weight still counts), so a practice without, say, anyone
// over 90 is standardised on the same total weight as every other; a band with events but no
// population is an inconsistency and is ignored.
func DirectlyStandardised(events, population, weights []float64, per, conf float64) (DSR, error) {
	if len(events) != len(population) || len(events) != len(weights) {
		return DSR{}, errors.New("events, population and weights differ in length")
	}
	var sumW, dsr, varDSR, o, n float64
	for i := range events {
		sumW += weights[i]
		n += population[i]
		if population[i] <= 0 {
			continue
		}
		o += events[i]
		dsr += weights[i] * events[i] / population[i]
		varDSR += weights[i] * weights[i] * events[i] / (population[i] * population[i])
	}
	if n <= 0 || sumW <= 0 {
		return DSR{}, ErrNoPopulation
	}
	dsr /= sumW
	varDSR /= sumW * sumW
	lo, hi := PoissonLimits(o, conf)
	r := DSR{Rate: dsr * per, Events: o, Population: n}
	if o > 0 {
		k := math.Sqrt(varDSR / o)
		r.Lower = (dsr + k*(lo-o)) * per
		r.Upper = (dsr + k*(hi-o)) * per
	} else {
		// No events: spread the upper limit as the standard population would weigh a
		// uniform rate hi/n in every populated band.
		var w float64
		for i := range population {
			if population[i] > 0 {
				w += weights[i]
			}
		}
		r.Upper = hi / n * w / sumW * per
	}
	return r, nil
}

// Ratio is an indirectly standardised ratio O/E with its confidence interval.
type Ratio struct {
	Observed, Expected  float64
	Ratio, Lower, Upper float64
}

// Expected returns Σ population[i]·rates[i]: the events a population would have at the
// reference rates.
func Expected(population, rates []float64) float64 {
	var e float64
	for i := range population {
		if i < len(rates) {
			e += population[i] * rates[i]
		}
	}
	return e
}

// IndirectlyStandardised returns O/E with the exact Poisson interval of O divided by E.
func IndirectlyStandardised(observed, expected, conf float64) (Ratio, error) {
	if expected <= 0 {
		return Ratio{Observed: observed}, ErrNoPopulation
	}
	lo, hi := PoissonLimits(observed, conf)
	return Ratio{Observed: observed, Expected: expected, Ratio: observed / expected, Lower: lo / expected, Upper: hi / expected}, nil
}

// FunnelLimits returns the control limits at level conf of the ratio O/E for a unit whose
// expected count is expected, around a target ratio of 1.
func FunnelLimits(expected, conf float64) (lower, upper float64) {
	if expected <= 0 {
		return math.NaN(), math.NaN()
	}
	lo, hi := PoissonLimits(expected, conf)
	return lo / expected, hi / expected
}

// ESPWeights returns formats.ESP2013 in formats.AgeBands order.
func ESPWeights() []float64 {
	w := make([]float64, len(formats.AgeBands))
	for i, b := range formats.AgeBands {
		w[i] = formats.ESP2013[b]
	}
	return w
}
