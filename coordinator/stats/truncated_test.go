package stats

import (
	"math"
	"math/big"
	"testing"

	"gonum.org/v1/gonum/mathext"
)

// truncatedMeanBig is E[X | lo ≤ X ≤ hi] for X ~ Poisson(lambda) by its definition,
// Σ k·p(k) / Σ p(k) with p(k) = λᵏe^−λ/k!, in 512-bit floating point: λᵏ and k! are formed as
// they stand and divided, and the common factor e^−λ is left out of both sums.
func truncatedMeanBig(lambda float64, lo, hi int) float64 {
	const prec = 512
	nf := func() *big.Float { return new(big.Float).SetPrec(prec) }
	l := nf().SetFloat64(lambda)
	pow, fact := nf().SetInt64(1), nf().SetInt64(1) // λ⁰, 0!
	num, den := nf(), nf()
	for k := 0; k <= hi; k++ {
		if k > 0 {
			pow.Mul(pow, l)
			fact.Mul(fact, nf().SetInt64(int64(k)))
		}
		if k >= lo {
			p := nf().Quo(pow, fact)
			den.Add(den, p)
			num.Add(num, nf().Mul(p, nf().SetInt64(int64(k))))
		}
	}
	m, _ := nf().Quo(num, den).Float64()
	return m
}

// The brief's worked case, λ = 1 in [1, 7], exactly: with λ = 1 the terms are 1/k!, so the
// mean is Σ_{k=1..7} k/k! / Σ_{k=1..7} 1/k! = Σ_{j=0..6} 1/j! / Σ_{k=1..7} 1/k!, a rational
// number formed here with big.Rat. (It is 1.58187066974595..., not 1.5819767.)
func TestTruncatedPoissonMeanExact(t *testing.T) {
	num, den := new(big.Rat), new(big.Rat)
	fact := big.NewInt(1)
	for k := int64(1); k <= 7; k++ {
		fact.Mul(fact, big.NewInt(k))
		p := new(big.Rat).SetFrac(big.NewInt(1), fact)
		den.Add(den, p)
		num.Add(num, new(big.Rat).Mul(p, big.NewRat(k, 1)))
	}
	want, _ := new(big.Rat).Quo(num, den).Float64()
	if !near(want, 1.5818706697459584, 1e-15) {
		t.Fatalf("reference mean %v", want)
	}
	if got := TruncatedPoissonMean(1, 1, 7); relErr(got, want) > 1e-14 {
		t.Errorf("TruncatedPoissonMean(1, 1, 7) = %.17g; want %.17g", got, want)
	}
}

func TestTruncatedPoissonMeanDefinition(t *testing.T) {
	ranges := [][2]int{{1, 7}, {0, 10}, {3, 3}, {0, 1}, {5, 20}, {10, 12}, {0, 300}, {100, 200}, {250, 400}}
	check := func(lambda float64, r [2]int) {
		t.Helper()
		want := truncatedMeanBig(lambda, r[0], r[1])
		if got := TruncatedPoissonMean(lambda, r[0], r[1]); relErr(got, want) > 1e-13 {
			t.Errorf("TruncatedPoissonMean(%v, %d, %d) = %.17g; want %.17g", lambda, r[0], r[1], got, want)
		}
	}
	for _, lambda := range []float64{1e-9, 1e-3, 0.3, 1, 2.5, 7, 20, 55.5, 150, 320} {
		for _, r := range ranges {
			check(lambda, r)
		}
	}
	// A suppressed count (1 to 7) where far more events are expected: the mean approaches the
	// top of the range, 7 − 7/λ to first order (and 1 + λ/2 where far fewer are, above).
	for _, lambda := range []float64{1e3, 1e6, 1e12} {
		check(lambda, [2]int{1, 7})
	}
}

// For large λ the definition's sums are out of reach of plain or big floating point within a
// test's time, so the reference is an identity: k·p(k) = λ·p(k−1), hence
// E[X | lo ≤ X ≤ hi] = λ·Pr[lo−1 ≤ X ≤ hi−1] / Pr[lo ≤ X ≤ hi], with Pr[X ≥ n] the regularised
// incomplete gamma function P(n, λ) (gonum's). The ranges keep both probabilities well away
// from 0 so the differences lose nothing.
func TestTruncatedPoissonMeanLarge(t *testing.T) {
	atLeast := func(n, lambda float64) float64 {
		if n <= 0 {
			return 1
		}
		return mathext.GammaIncReg(n, lambda)
	}
	between := func(lo, hi, lambda float64) float64 { return atLeast(lo, lambda) - atLeast(hi+1, lambda) }
	for _, lambda := range []float64{1e3, 1e5, 1e6} {
		s := math.Sqrt(lambda)
		for _, r := range [][2]float64{{0, lambda}, {lambda, 2 * lambda}, {lambda - 3*s, lambda + s}, {lambda + 2*s, lambda + 10*s}, {0, 1 << 40}} {
			lo, hi := math.Floor(r[0]), math.Floor(r[1])
			want := lambda * between(lo-1, hi-1, lambda) / between(lo, hi, lambda)
			if got := TruncatedPoissonMean(lambda, int(lo), int(hi)); relErr(got, want) > 1e-10 {
				t.Errorf("TruncatedPoissonMean(%v, %v, %v) = %.15g; want %.15g", lambda, lo, hi, got, want)
			}
		}
	}
}

func TestTruncatedPoissonMeanLimits(t *testing.T) {
	for _, c := range []struct {
		lambda float64
		lo, hi int
		want   float64
	}{
		{0, 1, 7, 1}, {-2, 1, 7, 1}, {math.NaN(), 1, 7, 1}, {1e-300, 1, 7, 1},
		{math.Inf(1), 1, 7, 7}, {1e300, 1, 7, 7}, {1e300, 0, math.MaxInt, math.MaxInt},
		{5, 4, 4, 4}, {0, 0, 0, 0},
		{1e6, 0, math.MaxInt, 1e6}, // untruncated: the mean is λ
	} {
		got := TruncatedPoissonMean(c.lambda, c.lo, c.hi)
		if relErr(got, c.want) > 1e-12 {
			t.Errorf("TruncatedPoissonMean(%v, %d, %d) = %.17g; want %.17g", c.lambda, c.lo, c.hi, got, c.want)
		}
	}
	for _, r := range [][2]int{{-1, 7}, {7, 1}} {
		if got := TruncatedPoissonMean(3, r[0], r[1]); !math.IsNaN(got) {
			t.Errorf("TruncatedPoissonMean(3, %d, %d) = %v; want NaN", r[0], r[1], got)
		}
	}
}

// The mean rises with λ (a Poisson family has a monotone likelihood ratio in k) and stays in
// [lo, hi] from λ = 1e-9 to 1e6.
func TestTruncatedPoissonMeanMonotone(t *testing.T) {
	for _, r := range [][2]int{{1, 7}, {0, 10}, {5, 1000}, {0, math.MaxInt}} {
		prev := math.Inf(-1)
		for i := 0; i <= 1500; i++ {
			lambda := 1e-9 * math.Pow(10, float64(i)/100)
			got := TruncatedPoissonMean(lambda, r[0], r[1])
			if !(got >= float64(r[0]) && got <= float64(r[1])) {
				t.Errorf("TruncatedPoissonMean(%v, %d, %d) = %v outside the range", lambda, r[0], r[1], got)
			}
			if got < prev-1e-13*math.Abs(prev) {
				t.Errorf("TruncatedPoissonMean(%v, %d, %d) = %.17g fell from %.17g", lambda, r[0], r[1], got, prev)
			}
			prev = got
		}
	}
}

func BenchmarkTruncatedPoissonMean(b *testing.B) {
	lambda := 1e-3
	for b.Loop() {
		TruncatedPoissonMean(lambda, 1, 7)
		if lambda *= 1.1; lambda > 1e6 {
			lambda = 1e-3
		}
	}
}
