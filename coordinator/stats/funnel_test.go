package stats

import (
	"math"
	"testing"
)

func relErr(got, want float64) float64 {
	if want == 0 {
		return math.Abs(got)
	}
	return math.Abs(got-want) / math.Abs(want)
}

// The levels of the coordinator and PHE's names for them: p is the one-sided tail, 0.025 for
// the "2s" (95%) limits and 0.001 for the "3s" (99.8%) ones.
var funnelLevels = []struct {
	conf, p float64
}{{Conf95, 0.025}, {Conf998, 0.001}}

// The independent reference for the funnel limits is PHE's own algorithm, transcribed line by
// line from
//
//	PHEindicatormethods (UKHSA), R/utils.R poisson_funnel and R/Funnels.R calculate_funnel_limits, statistic = ratio
//
// (poisson_cis and poisson_funnel in R/utils.R mirror PHE's Excel funnel-plot macro). It shares
// no code and no special functions with this package: Poisson probabilities are summed term by
// term (poisson_cis) and the mean is found by bisection on v in (0, 1) with
// mean = (1+obs)·v/(1−v).

// phePoissonCIs is poisson_cis(z, x_a, x_b): Pr[x_a ≤ X ≤ x_b] for X ~ Poisson(z), summing
// the terms zᵏ/k! (relative to the first) and rescaling the sums before they overflow.
func phePoissonCIs(z, xa, xb float64) float64 {
	q, tot, s, k := 1.0, 0.0, 0.0, 0.0
	for k <= z || q > tot*1e-10 {
		tot += q
		if k >= xa && k <= xb {
			s += q
		}
		if tot > 1e30 {
			s /= 1e30
			tot /= 1e30
			q /= 1e30
		}
		k++
		q *= z / k
	}
	return s / tot
}

// phePoissonFunnel is poisson_funnel(obs, p, side): the expected count at which obs (a whole
// number) is on the funnel. Side "low" finds the mean at which Pr[X ≥ obs] = p, which
// calculate_funnel_limits uses for the upper limit (upper_2s_limit = obs / poisson_funnel(obs,
// 0.025, "low")); side "high" finds the mean at which Pr[X ≤ obs] = p, used for the lower limit.
func phePoissonFunnel(obs, p float64, side string) float64 {
	v, dv := 0.5, 0.5
	switch side {
	case "low":
		for dv > 1e-7 {
			dv /= 2
			if phePoissonCIs((1+obs)*v/(1-v), obs, 1e10) > p {
				v -= dv
			} else {
				v += dv
			}
		}
	case "high":
		for dv > 1e-7 {
			dv /= 2
			if phePoissonCIs((1+obs)*v/(1-v), 0, obs) < p {
				v -= dv
			} else {
				v += dv
			}
		}
	}
	return (1 + obs) * v / (1 - v)
}

// PHE tabulates its funnel by observed count: for each whole O it finds the expected count E
// at which O is on a limit. So for each O on a grid spanning E from about 0.03 to 2,000, this
// takes PHE's E and checks that FunnelLimits(E) puts the limit at O/E. PHE's bisection stops
// when its step in v falls to 1e-7, which leaves E uncertain by up to about 1e-4 relative at
// the smallest counts; the tolerance allows for that.
func TestFunnelLimitsAgainstPHE(t *testing.T) {
	counts := []float64{0, 1, 2, 3, 4, 5, 6, 8, 10, 13, 20, 37, 50, 100, 200, 500, 1000, 2000}
	var worst float64
	for _, l := range funnelLevels {
		for _, o := range counts {
			if o > 0 { // PHE's upper limit at O = 0 is 0/0
				e := phePoissonFunnel(o, l.p, "low")
				_, hi := FunnelLimits(e, l.conf)
				if d := relErr(hi, o/e); d > 1e-4 {
					t.Errorf("conf %v, O = %v: PHE puts the upper limit %.6f at E = %.6f; FunnelLimits gives %.6f", l.conf, o, o/e, e, hi)
				} else {
					worst = max(worst, d)
				}
			}
			e := phePoissonFunnel(o, l.p, "high")
			lo, _ := FunnelLimits(e, l.conf)
			if d := relErr(lo, o/e); d > 1e-4 {
				t.Errorf("conf %v, O = %v: PHE puts the lower limit %.6f at E = %.6f; FunnelLimits gives %.6f", l.conf, o, o/e, e, lo)
			} else {
				worst = max(worst, d)
			}
		}
	}
	t.Logf("largest relative difference from PHE's algorithm: %.2g", worst)
}

// funnelGrid is the expected counts at which the limits are checked between PHE's whole counts.
var funnelGrid = []float64{0.5, 1, 2, 4.41, 5, 10, 37.2, 100, 1000}

// seriesP is the regularised lower incomplete gamma function by its power series (DLMF 8.7.1,
// 8.2.4), P(a, x) = Σ_{k≥0} e^{−x} x^{a+k} / Γ(a+k+1): the sum poisson_cis makes,
// Pr[Poisson(x) ≥ a], at whole a, and its continuous extension elsewhere. Terms are summed
// relative to the first, whose logarithm is added at the end; they overflow only when a is
// hundreds of standard deviations below x, which the tests avoid (and which would panic).
func seriesP(a, x float64) float64 {
	lg, _ := math.Lgamma(a + 1)
	logFirst := -x + a*math.Log(x) - lg
	t, sum := 1.0, 0.0
	for k := 1.0; ; k++ {
		if math.IsInf(sum, 0) {
			panic("seriesP: terms overflow")
		}
		sum += t
		t *= x / (a + k)
		if a+k > x && t < 1e-17*sum {
			break
		}
	}
	return math.Exp(logFirst + math.Log(sum))
}

// bisect returns the root of f, which changes sign once on [lo, hi], to 1e-13 relative.
func bisect(f func(float64) float64, lo, hi float64) float64 {
	flo := f(lo)
	for hi-lo > 1e-13*hi {
		mid := (lo + hi) / 2
		if fm := f(mid); (fm > 0) == (flo > 0) {
			lo, flo = mid, fm
		} else {
			hi = mid
		}
	}
	return (lo + hi) / 2
}

// Between PHE's whole counts the limits treat O as continuous. At each E of the grid this
// checks them against (a) PHE's algorithm, which brackets the count at the limit between two
// whole counts, and (b) the same definition computed independently: the O at which
// P(O, E) = p (upper) or 1 − P(O+1, E) = p (lower), with P by seriesP and O by bisection.
func TestFunnelLimitsBetweenWholeCounts(t *testing.T) {
	for _, l := range funnelLevels {
		for _, e := range funnelGrid {
			lo, hi := FunnelLimits(e, l.conf)
			w := 10*math.Sqrt(e) + 10 // about ±3 standard deviations more than the limits need
			oHi := bisect(func(o float64) float64 { return seriesP(o, e) - l.p }, max(e-w, 1e-9), e+w)
			if d := relErr(hi, oHi/e); d > 1e-7 {
				t.Errorf("conf %v, E = %v: upper limit %.9f, series gives %.9f", l.conf, e, hi, oHi/e)
			}
			oLo := 0.0
			if math.Exp(-e) < l.p {
				oLo = bisect(func(o float64) float64 { return 1 - seriesP(o+1, e) - l.p }, max(e-w, 0), e)
			}
			if d := relErr(lo, oLo/e); d > 1e-7 {
				t.Errorf("conf %v, E = %v: lower limit %.9f, series gives %.9f", l.conf, e, lo, oLo/e)
			}
			// PHE: the E of whole counts rises with the count, so the count at a limit lies
			// between the whole counts whose E bracket this one; a lower limit of 0 means E is
			// at most PHE's E for O = 0.
			k := math.Floor(oHi)
			if below, above := phePoissonFunnel(k, l.p, "low"), phePoissonFunnel(k+1, l.p, "low"); !(below <= e*(1+1e-4) && e <= above*(1+1e-4)) {
				t.Errorf("conf %v, E = %v: upper limit at O = %.6f, but PHE puts O = %v at E = %.6f and O = %v at E = %.6f", l.conf, e, hi*e, k, below, k+1, above)
			}
			if lo == 0 {
				if e0 := phePoissonFunnel(0, l.p, "high"); e > e0*(1+1e-4) {
					t.Errorf("conf %v, E = %v: lower limit 0, but PHE puts O = 0 on the limit at E = %.6f", l.conf, e, e0)
				}
			} else {
				k := math.Floor(lo * e)
				if below, above := phePoissonFunnel(k, l.p, "high"), phePoissonFunnel(k+1, l.p, "high"); !(below <= e*(1+1e-4) && e <= above*(1+1e-4)) {
					t.Errorf("conf %v, E = %v: lower limit at O = %.6f, but PHE puts O = %v at E = %.6f and O = %v at E = %.6f", l.conf, e, lo*e, k, below, k+1, above)
				}
			}
		}
	}
}

// The limits are the inverse of the exact Poisson limits: at E = PoissonLimits' lower limit of
// O, O is on the upper funnel limit, and at E = its upper limit of O, O is on the lower one.
func TestFunnelLimitsInvertPoissonLimits(t *testing.T) {
	for _, l := range funnelLevels {
		for o := 0.5; o <= 300; o += 0.5 {
			pl, pu := PoissonLimits(o, l.conf)
			if _, hi := FunnelLimits(pl, l.conf); relErr(hi*pl, o) > 1e-8 {
				t.Errorf("conf %v: O = %v has lower limit %v, but FunnelLimits(%v) upper = %v O/E", l.conf, o, pl, pl, hi*pl)
			}
			if lo, _ := FunnelLimits(pu, l.conf); relErr(lo*pu, o) > 1e-8 {
				t.Errorf("conf %v: O = %v has upper limit %v, but FunnelLimits(%v) lower = %v O/E", l.conf, o, pu, pu, lo*pu)
			}
		}
	}
}

// Values the coordinator's users see. E = 5 at 95% is 0.135–2.059; the 9-digit values were
// computed independently in Python with mpmath 1.3 (30 digits; findroot on
// gammainc(O, 0, 5, regularized=True) = 0.025 and gammainc(O+1, 5, inf, regularized=True) =
// 0.025).
func TestFunnelLimitsValues(t *testing.T) {
	lo, hi := FunnelLimits(5, Conf95)
	if math.Round(lo*1000)/1000 != 0.135 || math.Round(hi*1000)/1000 != 2.059 {
		t.Errorf("FunnelLimits(5, 95%%) = %.4f-%.4f; want 0.135-2.059", lo, hi)
	}
	if !near(lo, 0.1354537582, 1e-9) || !near(hi, 2.059257631, 1e-8) {
		t.Errorf("FunnelLimits(5, 95%%) = %.10f-%.10f; want 0.1354537582-2.059257631", lo, hi)
	}
	// With one event expected, no count is significantly low at either level: even
	// Pr[O = 0] = e^−1 is above 0.025.
	for _, conf := range []float64{Conf95, Conf998} {
		if lo, _ := FunnelLimits(1, conf); lo != 0 {
			t.Errorf("FunnelLimits(1, %v) lower = %v; want 0", conf, lo)
		}
	}
	// A practice with 0 observed and 4.41 expected: Pr[O = 0] = e^−4.41 = 0.0122, below 0.025
	// but above 0.001, so it is below the 95% limit and not below the 99.8% one. (The old
	// limits, the exact interval of a count of 4.41, put it below both.)
	if lo, _ := FunnelLimits(4.41, Conf998); lo != 0 || 0/4.41 < lo {
		t.Errorf("FunnelLimits(4.41, 99.8%%) lower = %v; want 0", lo)
	}
	if lo, _ := FunnelLimits(4.41, Conf95); !(lo > 0) {
		t.Errorf("FunnelLimits(4.41, 95%%) lower = %v; want above 0", lo)
	}
	// The lower limit leaves 0 just where Pr[O = 0] = e^−E falls to p: E = −ln p.
	for _, l := range funnelLevels {
		e := -math.Log(l.p)
		if lo, _ := FunnelLimits(e*(1-1e-9), l.conf); lo != 0 {
			t.Errorf("conf %v: lower limit %v just below E = −ln p = %v", l.conf, lo, e)
		}
		if lo, _ := FunnelLimits(e*(1+1e-6), l.conf); !(lo > 0) {
			t.Errorf("conf %v: lower limit %v just above E = −ln p = %v", l.conf, lo, e)
		}
	}
	for _, c := range []struct{ e, conf float64 }{{0, Conf95}, {-1, Conf95}, {math.NaN(), Conf95}, {math.Inf(1), Conf95}, {5, 0}, {5, 1}} {
		if lo, hi := FunnelLimits(c.e, c.conf); !math.IsNaN(lo) || !math.IsNaN(hi) {
			t.Errorf("FunnelLimits(%v, %v) = %v, %v; want NaN", c.e, c.conf, lo, hi)
		}
	}
}

// The funnel narrows as E grows (the lower limit rises once it leaves 0, the upper one falls),
// always contains the target ratio 1, and the 99.8% limits lie outside the 95% ones.
func TestFunnelLimitsMonotone(t *testing.T) {
	prevLo, prevHi := map[float64]float64{}, map[float64]float64{}
	for i := 0; i <= 1200; i++ {
		e := 1e-6 * math.Pow(10, float64(i)/100) // 1e-6 to 1e6
		lo95, hi95 := FunnelLimits(e, Conf95)
		lo998, hi998 := FunnelLimits(e, Conf998)
		if !(lo998 <= lo95 && lo95 < 1 && 1 < hi95 && hi95 < hi998) || lo95 > 0 && !(lo998 < lo95) {
			t.Errorf("E = %v: 99.8%% %v-%v, 95%% %v-%v not nested around 1", e, lo998, hi998, lo95, hi95)
		}
		for conf, lh := range map[float64][2]float64{Conf95: {lo95, hi95}, Conf998: {lo998, hi998}} {
			if i > 0 {
				if lh[0] < prevLo[conf] || lh[0] > 0 && lh[0] == prevLo[conf] || !(lh[1] < prevHi[conf]) {
					t.Errorf("conf %v, E = %v: limits %v-%v after %v-%v", conf, e, lh[0], lh[1], prevLo[conf], prevHi[conf])
				}
			}
			prevLo[conf], prevHi[conf] = lh[0], lh[1]
		}
	}
}

func BenchmarkFunnelLimits(b *testing.B) {
	e := 0.5
	for b.Loop() {
		FunnelLimits(e, Conf95)
		FunnelLimits(e, Conf998)
		if e *= 1.01; e > 1e4 {
			e = 0.5
		}
	}
}
