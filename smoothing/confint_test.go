package smoothing

import (
	"math"
	"testing"

	"gonum.org/v1/gonum/stat/distuv"
)

// TestClopperPearsonIssueVector is the test vector of the issue: all n = 100,000
// samples agree and α = 0.001, so p̲A = α^(1/n) = 0.99993092 and R = 3.8115·σ.
func TestClopperPearsonIssueVector(t *testing.T) {
	pl := ClopperPearsonLower(100000, 100000, 0.001)
	if math.Abs(pl-0.99993092) > 1e-8 {
		t.Errorf("p̲A = %.10f, want 0.99993092 ± 1e-8", pl)
	}
	// The closed form α^(1/n) against bisection of the Beta(n, 1) CDF x^n, and against
	// gonum's general Beta quantile (used for 0 < k < n).
	if q := betaQuantileByBisection(100000, 0.001); math.Abs(pl-q) > 1e-12 {
		t.Errorf("p̲A = %.15f, bisection of the Beta(n, 1) CDF gives %.15f", pl, q)
	}
	if q := (distuv.Beta{Alpha: 100000, Beta: 1}).Quantile(0.001); math.Abs(pl-q) > 1e-12 {
		t.Errorf("p̲A = %.15f, distuv.Beta quantile %.15f", pl, q)
	}
	if r := distuv.UnitNormal.Quantile(pl); math.Abs(r-3.8115) > 1e-4 {
		t.Errorf("Φ⁻¹(p̲A) = %.6f, want 3.8115", r)
	}
}

// betaQuantileByBisection inverts the Beta(a, 1) CDF, x^a, at p by bisection,
// independently of gonum's InvRegIncBeta.
func betaQuantileByBisection(a, p float64) float64 {
	lo, hi := 0.0, 1.0
	for range 200 {
		mid := (lo + hi) / 2
		if math.Pow(mid, a) < p {
			lo = mid
		} else {
			hi = mid
		}
	}
	return (lo + hi) / 2
}

// clopperPearsonRefs are statsmodels 0.13.5 values (Debian bookworm packages
// python3-statsmodels and python3-scipy 1.10.1, `apt-get install python3-statsmodels`;
// PyPI is not reachable here), printed by
//
//	/usr/bin/python3 -c '
//	from statsmodels.stats.proportion import proportion_confint
//	for k, n, a in [(0,10,0.05), (10,10,0.05), ..., (9990,10000,0.0002)]:  # the rows below
//	    lo, hi = proportion_confint(k, n, alpha=a, method="beta")
//	    print("{%d, %d, %r, %r, %r}," % (k, n, a, float(lo), float(hi)))'
//
// Cohen et al.'s one-sided bound at α is the lower end at alpha = 2α (the rows with
// alpha = 0.002 are α = 0.001, the paper's).
var clopperPearsonRefs = []struct {
	k, n   int
	alpha  float64
	lo, hi float64
}{
	{0, 10, 0.05, 0.0, 0.30849710781876083},
	{10, 10, 0.05, 0.6915028921812392, 1.0},
	{3, 10, 0.05, 0.06673951117773447, 0.6524528500599973},
	{1, 1, 0.002, 0.001, 1.0},
	{0, 1, 0.002, 0.0, 0.999},
	{7, 20, 0.01, 0.11387976326673241, 0.6565685842319211},
	{55, 100, 0.002, 0.39214682722125527, 0.701080674107892},
	{99, 100, 0.002, 0.9113731112960424, 0.999989995046714},
	{60000, 100000, 0.002, 0.5952010472945846, 0.6047855338333881},
	{99990, 100000, 0.002, 0.9997586773435911, 0.9999703939022321},
	{100000, 100000, 0.002, 0.9999309248330094, 1.0},
	{0, 100000, 0.002, 0.0, 6.907516699060702e-05},
	{500, 1000, 0.1, 0.473517731235691, 0.5264822687643089},
	{9990, 10000, 0.0002, 0.9972262353051372, 0.9997801670844019},
}

func TestClopperPearsonStatsmodels(t *testing.T) {
	const tol = 1e-11 // relative
	close := func(got, want float64) bool {
		return math.Abs(got-want) <= tol*math.Max(math.Abs(want), 1e-300) || got == want
	}
	for _, c := range clopperPearsonRefs {
		lo, hi := ClopperPearson(c.k, c.n, c.alpha)
		if !close(lo, c.lo) || !close(hi, c.hi) {
			t.Errorf("ClopperPearson(%d, %d, %v) = [%.17g, %.17g], statsmodels [%.17g, %.17g]", c.k, c.n, c.alpha, lo, hi, c.lo, c.hi)
		}
		if got := ClopperPearsonLower(c.k, c.n, c.alpha/2); !close(got, c.lo) {
			t.Errorf("ClopperPearsonLower(%d, %d, %v) = %.17g, statsmodels lower at alpha=%v: %.17g", c.k, c.n, c.alpha/2, got, c.alpha, c.lo)
		}
	}
}

// TestClopperPearsonCoverage checks the defining property independently of the Beta
// quantile: at p = p̲A the binomial upper tail P(X ≥ k) equals α.
func TestClopperPearsonCoverage(t *testing.T) {
	for _, c := range []struct {
		k, n  int
		alpha float64
	}{{1, 5, 0.05}, {37, 50, 0.001}, {900, 1000, 0.01}, {9000, 10000, 0.001}, {51000, 100000, 0.001}} {
		pl := ClopperPearsonLower(c.k, c.n, c.alpha)
		if tail := binomTailBySum(c.k, c.n, pl); math.Abs(tail-c.alpha) > 1e-9*c.alpha {
			t.Errorf("k=%d n=%d α=%v: P(X ≥ k | p̲A=%.12g) = %.12g, want α", c.k, c.n, c.alpha, pl, tail)
		}
	}
}

// binomTailBySum is P(X ≥ k), X ~ Binomial(n, p), by summing the pmf in log space.
func binomTailBySum(k, n int, p float64) float64 {
	var s float64
	for x := k; x <= n; x++ {
		lg1, _ := math.Lgamma(float64(n + 1))
		lg2, _ := math.Lgamma(float64(x + 1))
		lg3, _ := math.Lgamma(float64(n - x + 1))
		s += math.Exp(lg1 - lg2 - lg3 + float64(x)*math.Log(p) + float64(n-x)*math.Log1p(-p))
	}
	return s
}

func TestClopperPearsonInvalid(t *testing.T) {
	for _, c := range []struct {
		k, n  int
		alpha float64
	}{{-1, 10, 0.05}, {11, 10, 0.05}, {0, 0, 0.05}, {5, 10, 0}, {5, 10, 1}, {5, 10, math.NaN()}} {
		if v := ClopperPearsonLower(c.k, c.n, c.alpha); !math.IsNaN(v) {
			t.Errorf("ClopperPearsonLower(%d, %d, %v) = %v, want NaN", c.k, c.n, c.alpha, v)
		}
		if lo, hi := ClopperPearson(c.k, c.n, c.alpha); !math.IsNaN(lo) || !math.IsNaN(hi) {
			t.Errorf("ClopperPearson(%d, %d, %v) = %v, %v, want NaN", c.k, c.n, c.alpha, lo, hi)
		}
	}
}
