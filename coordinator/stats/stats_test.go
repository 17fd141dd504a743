package stats

import (
	"math"
	"testing"

	"github.com/tributary-health/tributary/formats"
)

func near(got, want, tol float64) bool { return math.Abs(got-want) <= tol }

// Published exact Poisson limits (95%: PHE "Technical Guide: Confidence Intervals", table of
// exact limits; 99.8% and the fractional count computed independently, see
// TestDirectlyStandardisedWorkedExample).
func TestPoissonLimits(t *testing.T) {
	for _, c := range []struct {
		o, conf, lo, hi float64
	}{
		{0, Conf95, 0, 3.688879},
		{1, Conf95, 0.025318, 5.571643},
		{5, Conf95, 1.623486, 11.668332},
		{10.5, Conf95, 5.141449, 19.037814},
		{128, Conf95, 106.787334, 152.192418},
		{0, Conf998, 0, 6.907755},
		{1, Conf998, 0.001001, 9.233413},
		{5, Conf998, 0.739372, 16.454745},
	} {
		lo, hi := PoissonLimits(c.o, c.conf)
		if !near(lo, c.lo, 1e-5) || !near(hi, c.hi, 1e-5) {
			t.Errorf("PoissonLimits(%v, %v) = %.6f, %.6f; want %.6f, %.6f", c.o, c.conf, lo, hi, c.lo, c.hi)
		}
		// Byar's approximation is close to the exact limits from a handful of events on.
		if c.o >= 5 && c.conf == Conf95 {
			blo, bhi := ByarLimits(c.o, c.conf)
			if !near(blo, lo, 0.02*c.o) || !near(bhi, hi, 0.02*c.o) {
				t.Errorf("ByarLimits(%v) = %.4f, %.4f; exact %.4f, %.4f", c.o, blo, bhi, lo, hi)
			}
		}
	}
	if lo, hi := PoissonLimits(-1, Conf95); !math.IsNaN(lo) || !math.IsNaN(hi) {
		t.Errorf("PoissonLimits(-1) = %v, %v; want NaN", lo, hi)
	}
}

// The worked example is a practice of 12,470 people in the 19 bands of formats.AgeBands, with
// 128 events. It was computed independently of this package, in Python with mpmath (30
// digits), following APHO Technical Briefing 3 / PHE "Technical Guide: Age standardisation"
// (Dobson's method with exact Poisson limits):
//
//	W      = Σ wᵢ (ESP2013)                             = 100,000
//	DSR    = Σ wᵢ·Oᵢ/nᵢ / W × 1000                       = 11.481994 per 1,000
//	var    = Σ wᵢ²·Oᵢ/nᵢ² / W²
//	O      = 128; exact 95% limits (χ²(0.025; 256)/2, χ²(0.975; 258)/2) = 106.787334, 152.192418
//	lower  = (DSR + √(var/O)·(106.787334 − 128)) × 1000 = 9.536277
//	upper  = (DSR + √(var/O)·(152.192418 − 128)) × 1000 = 13.701026
//
// where the χ² quantiles were found by bisection on the regularised incomplete gamma
// function, not with gonum.
func TestDirectlyStandardisedWorkedExample(t *testing.T) {
	pop := []float64{600, 650, 700, 640, 720, 800, 900, 950, 1000, 980, 900, 850, 760, 640, 520, 400, 260, 140, 60}
	ev := []float64{3, 1, 0, 2, 4, 3, 5, 6, 4, 7, 9, 8, 10, 12, 14, 15, 11, 9, 5}
	w := ESPWeights()
	got, err := DirectlyStandardised(ev, pop, w, 1000, Conf95)
	if err != nil {
		t.Fatal(err)
	}
	if got.Events != 128 || got.Population != 12470 {
		t.Errorf("events %v population %v; want 128 and 12470", got.Events, got.Population)
	}
	for _, c := range []struct {
		name      string
		got, want float64
	}{{"rate", got.Rate, 11.481994}, {"lower", got.Lower, 9.536277}, {"upper", got.Upper, 13.701026}} {
		if !near(c.got, c.want, 1e-5) {
			t.Errorf("%s = %.6f, want %.6f", c.name, c.got, c.want)
		}
	}
	// A population with the standard's own age structure has DSR equal to its crude rate.
	std := make([]float64, len(w))
	evs := make([]float64, len(w))
	for i := range w {
		std[i] = w[i] / 10 // 10,000 people
		evs[i] = std[i] * 0.02
	}
	got, err = DirectlyStandardised(evs, std, w, 1000, Conf95)
	if err != nil || !near(got.Rate, 20, 1e-9) {
		t.Errorf("DSR of a standard-shaped population = %v, %v; want its crude rate 20", got.Rate, err)
	}
}

func TestDirectlyStandardisedEdges(t *testing.T) {
	w := ESPWeights()
	zero := make([]float64, len(w))
	if _, err := DirectlyStandardised(zero, zero, w, 1000, Conf95); err != ErrNoPopulation {
		t.Errorf("no population: err = %v, want ErrNoPopulation", err)
	}
	pop := make([]float64, len(w))
	for i := range pop {
		pop[i] = 100
	}
	got, err := DirectlyStandardised(zero, pop, w, 1000, Conf95)
	if err != nil || got.Rate != 0 || got.Lower != 0 || !near(got.Upper, 3.688879/1900*1000, 1e-6) {
		t.Errorf("no events: %+v, %v; want rate 0, interval [0, %.4f]", got, err, 3.688879/1900*1000)
	}
	if _, err := DirectlyStandardised(zero[:3], pop, w, 1000, Conf95); err == nil {
		t.Error("mismatched lengths accepted")
	}
	// Monotone in every count: the bounds of a partly suppressed rate bracket any truth.
	lo, hi := make([]float64, len(w)), make([]float64, len(w))
	for i := range lo {
		lo[i], hi[i] = float64(i), float64(i)+7
	}
	a, _ := DirectlyStandardised(lo, pop, w, 1000, Conf95)
	b, _ := DirectlyStandardised(hi, pop, w, 1000, Conf95)
	if !(a.Rate < b.Rate) {
		t.Errorf("rate at lower bounds %v not below rate at upper bounds %v", a.Rate, b.Rate)
	}
}

// Indirect standardisation, against the same independent calculation: 30 observed, 24.5
// expected: exact 95% limits of 30 are 20.241, 42.827 (χ²/2), so the ratio's interval is
// 0.826158 to 1.748035.
func TestIndirectlyStandardised(t *testing.T) {
	r, err := IndirectlyStandardised(30, 24.5, Conf95)
	if err != nil || !near(r.Ratio, 30/24.5, 1e-12) || !near(r.Lower, 0.826158, 1e-6) || !near(r.Upper, 1.748035, 1e-6) {
		t.Errorf("IndirectlyStandardised(30, 24.5) = %+v, %v", r, err)
	}
	if _, err := IndirectlyStandardised(3, 0, Conf95); err != ErrNoPopulation {
		t.Errorf("E = 0: err = %v", err)
	}
	if e := Expected([]float64{100, 200}, []float64{0.01, 0.02}); !near(e, 5, 1e-12) {
		t.Errorf("Expected = %v, want 5", e)
	}
}

func TestESPWeights(t *testing.T) {
	w := ESPWeights()
	if len(w) != len(formats.AgeBands) || w[0] != 5000 || w[len(w)-1] != 1000 {
		t.Errorf("ESPWeights = %v", w)
	}
}
