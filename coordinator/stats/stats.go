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
//   - Funnel-plot control limits for a ratio with expected count E are prediction limits
//     (Spiegelhalter, "Funnel plots for comparing institutional performance", Statistics in
//     Medicine 24:1185-1202, 2005), computed as PHE does for ratio funnels: PHEindicatormethods
//     (UKHSA), R/Funnels.R calculate_funnel_limits with statistic = "ratio", and R/utils.R
//     poisson_funnel, a port of PHE's Excel funnel-plot macro. The funnel at E is the set of
//     observed counts O that would not differ significantly from E: the upper limit is O/E for
//     the O whose exact lower confidence limit equals E, χ²(α/2; 2O)/2 = E, and the lower limit
//     is O/E for the O whose exact upper confidence limit equals E, χ²(1−α/2; 2O+2)/2 = E, or 0
//     when even O = 0 has an upper limit of at least E (E ≤ −ln(α/2): 3.69 at 95%, 6.91 at
//     99.8%). PHE finds these at whole O; this package treats O as continuous (the chi-squared
//     form is defined for any positive degrees of freedom), so the limits are smooth in E and
//     agree with PHE's wherever O is whole. Levels are 95% (α = 0.05, about 2 standard
//     deviations) and 99.8% (α = 0.002, about 3). Earlier versions of this package used
//     instead the exact confidence interval of an observed count equal to E, divided by E.
//     That interval answers a different question (where the mean of a unit that saw E events
//     might lie, not which counts a unit whose mean is E might see), and it sits too high at
//     both ends: at E = 5 (95%) it gave 0.325–2.334 against the correct 0.135–2.059, so it
//     flagged too many units as low and too few as high, most of all where E is small. With
//     E = 4.41 it put a practice with 0 observed below the 99.8% limit, although no count is
//     significantly low there: P(O = 0) = e^−4.41 = 0.012, more than α/2 = 0.001.
//   - The mean of a Poisson count known only to lie in [lo, hi] (TruncatedPoissonMean) is
//     E[X | lo ≤ X ≤ hi] = Σ k·λᵏ/k! / Σ λᵏ/k!, both sums over lo ≤ k ≤ hi.
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
// TruncatedPoissonMean offers a model-based estimate of a suppressed count in place of the
// midpoint: its expected value given its bounds, when its mean is predicted by reference rates.
package stats

import (
	"errors"
	"math"
	"sync"

	"github.com/tributary-health/tributary/formats"
	"gonum.org/v1/gonum/mathext"
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
// expected count is expected, around a target ratio of 1: the ratios O/E at the observed
// counts O (taken as continuous) that are just significant at level conf, as in PHE's ratio
// funnels (see the package comment). The lower limit is 0 while no count is significantly low.
// expected must be positive and finite, and conf in (0, 1), or both limits are NaN.
//
// The limits are not remembered, unlike PoissonLimits': expected counts are arbitrary reals,
// so a memo would grow without bound in a long-running coordinator. Each limit is instead one
// root of a monotone function of O found by Brent's method in 12 to 25 incomplete gamma
// evaluations: the four limits of one practice take about 20 µs.
func FunnelLimits(expected, conf float64) (lower, upper float64) {
	if !(expected > 0) || math.IsInf(expected, 1) || !(conf > 0 && conf < 1) {
		return math.NaN(), math.NaN()
	}
	a := (1 - conf) / 2
	return funnelLower(expected, a) / expected, funnelUpper(expected, a) / expected
}

// funnelTol is the relative tolerance on the count O at a funnel limit.
const funnelTol = 1e-10

// funnelUpper returns the O whose exact lower confidence limit (one-sided level a) is e:
// χ²(a; 2O)/2 = e, that is P(O, e) = a with P the regularised lower incomplete gamma function
// (P(O, e) = Pr[Poisson(e) ≥ O] at whole O). Working with P instead of the chi-squared quantile
// costs one special-function evaluation per step rather than an inner inversion. P(O, e) falls
// from 1 (as O → 0) to 0 as O grows, so the root is unique.
func funnelUpper(e, a float64) float64 {
	f := func(o float64) float64 {
		if o <= 0 {
			return 1 - a
		}
		return mathext.GammaIncReg(o, e) - a
	}
	// O lies above e by about z·√e; start with a generous bracket and widen it for
	// levels very close to 1.
	hi := e + 6*math.Sqrt(e) + 10
	fhi := f(hi)
	for fhi > 0 {
		hi *= 2
		fhi = f(hi)
	}
	return brent(f, 0, hi, 1-a, fhi)
}

// funnelLower returns the O whose exact upper confidence limit (one-sided level a) is e:
// χ²(1−a; 2O+2)/2 = e, that is Q(O+1, e) = a with Q = 1 − P (Q(O+1, e) = Pr[Poisson(e) ≤ O] at
// whole O), or 0 when Q(1, e) = e^−e is already at least a: then even O = 0 is not
// significantly low. Q(O+1, e) rises with O, and Q(e+1, e) > 1/2 > a (the median of a gamma
// variable of shape e+1 exceeds e), so [0, e] brackets the root.
func funnelLower(e, a float64) float64 {
	f0 := math.Exp(-e) - a
	if f0 >= 0 {
		return 0
	}
	f := func(o float64) float64 { return mathext.GammaIncRegComp(o+1, e) - a }
	hi := e
	fhi := f(hi)
	for fhi < 0 { // not reached for a < 1/2; kept so a rounding surprise cannot loop Brent
		hi *= 2
		fhi = f(hi)
	}
	return brent(f, 0, hi, f0, fhi)
}

// brent returns a root of f in [a, b], where fa = f(a) and fb = f(b) differ in sign, to within
// funnelTol relative (1e-300 absolute near 0). It is Brent's zeroin (R. P. Brent, Algorithms
// for Minimization without Derivatives, 1973, chapter 4; Netlib zeroin.f): inverse quadratic
// interpolation or secant steps, falling back to bisection when they would not shrink the
// bracket fast enough, so it never takes more steps than bisection and usually far fewer.
func brent(f func(float64) float64, a, b, fa, fb float64) float64 {
	if fa == 0 {
		return a
	}
	if fb == 0 {
		return b
	}
	const eps = 0x1p-52
	c, fc := a, fa
	d := b - a
	e := d
	for range 200 {
		if math.Abs(fc) < math.Abs(fb) {
			a, b, c = b, c, b
			fa, fb, fc = fb, fc, fb
		}
		tol := 2*eps*math.Abs(b) + 0.5*(funnelTol*math.Abs(b)+1e-300)
		m := 0.5 * (c - b)
		if math.Abs(m) <= tol || fb == 0 {
			return b
		}
		if math.Abs(e) >= tol && math.Abs(fa) > math.Abs(fb) {
			var p, q float64
			s := fb / fa
			if a == c {
				p = 2 * m * s
				q = 1 - s
			} else {
				q = fa / fc
				r := fb / fc
				p = s * (2*m*q*(q-r) - (b-a)*(r-1))
				q = (q - 1) * (r - 1) * (s - 1)
			}
			if p > 0 {
				q = -q
			} else {
				p = -p
			}
			if 2*p < 3*m*q-math.Abs(tol*q) && p < math.Abs(0.5*e*q) {
				e, d = d, p/q
			} else {
				d, e = m, m
			}
		} else {
			d, e = m, m
		}
		a, fa = b, fb
		if math.Abs(d) > tol {
			b += d
		} else {
			b += math.Copysign(tol, m)
		}
		fb = f(b)
		if (fb > 0) == (fc > 0) {
			c, fc = a, fa
			d = b - a
			e = d
		}
	}
	return b
}

// TruncatedPoissonMean returns E[X | lo ≤ X ≤ hi] for X ~ Poisson(lambda): the expected value
// of a count known only to lie in [lo, hi], such as one suppressed under disclosure control
// (1 to 7), given the mean lambda that reference rates predict for it. The result lies in
// [lo, hi]. A lambda that is zero, negative or NaN gives lo (the limit as lambda → 0) and +Inf
// gives hi; lo < 0 or hi < lo gives NaN.
//
// The terms λᵏ/k! overflow or underflow for moderate k and λ, so they are taken relative to the
// largest in the range, at the mode k* = ⌊λ⌋ clipped to [lo, hi]: w(k*) = 1, and the ratios
// w(k+1)/w(k) = λ/(k+1) and w(k−1)/w(k) = k/λ are below 1 walking away from k*, so no term
// exceeds 1 and none is formed from λᵏ or k! themselves. The mean is accumulated as
// k* + Σ (k−k*)·w(k) / Σ w(k), so that a large k* does not swamp the offset. The pmf is
// log-concave, so the ratios keep falling along a walk, and the rest of a walk is bounded by a
// geometric series; a walk stops when that bound is below 1e-17 of both sums (the offset's
// measured against k*·Σw + |Σ(k−k*)w|, the scale of the mean). For lambda up to 10⁶ that is at
// most about ten thousand terms each side, whatever the range. Each side is cut off after 2²⁴
// terms, which only a range cutting the bulk of a distribution with lambda above about 10¹²
// would reach; the result is then approximate (but still in [lo, hi]).
func TruncatedPoissonMean(lambda float64, lo, hi int) float64 {
	if lo < 0 || hi < lo {
		return math.NaN()
	}
	flo, fhi := float64(lo), float64(hi)
	switch {
	case lo == hi, !(lambda > 0):
		return flo
	case math.IsInf(lambda, 1):
		return fhi
	}
	mode := math.Min(math.Max(math.Floor(lambda), flo), fhi)
	const maxTerms = 1 << 24
	sum, moment := 1.0, 0.0
	// done reports whether the terms after w(k), k = mode+d, falling at least by r < 1 a step,
	// add less than 1e-17 to the sums: Σ_{j≥1} w·rʲ = w·r/(1−r) to Σw, and
	// Σ_{j≥1} |d±j|·w·rʲ ≤ w·(|d|·r/(1−r) + r/(1−r)²) to Σ(k−k*)w.
	done := func(w, r, d float64) bool {
		if w == 0 {
			return true
		}
		if r >= 1 {
			return false
		}
		g := r / (1 - r)
		const rel = 1e-17
		return w*g <= rel*sum && w*(math.Abs(d)*g+g/(1-r)) <= rel*(mode*sum+math.Abs(moment))
	}
	w := 1.0
	for k, n := mode, 0; k < fhi && n < maxTerms; k, n = k+1, n+1 {
		r := lambda / (k + 1)
		w *= r
		sum += w
		moment += (k + 1 - mode) * w
		if done(w, r, k+1-mode) {
			break
		}
	}
	w = 1
	for k, n := mode, 0; k > flo && n < maxTerms; k, n = k-1, n+1 {
		r := k / lambda
		w *= r
		sum += w
		moment += (k - 1 - mode) * w
		if done(w, r, k-1-mode) {
			break
		}
	}
	return math.Min(math.Max(mode+moment/sum, flo), fhi)
}

// ESPWeights returns formats.ESP2013 in formats.AgeBands order.
func ESPWeights() []float64 {
	w := make([]float64, len(formats.AgeBands))
	for i, b := range formats.AgeBands {
		w[i] = formats.ESP2013[b]
	}
	return w
}
