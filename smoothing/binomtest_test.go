package smoothing

import (
	"math"
	"testing"
)

// binomTestRefs are scipy 1.10.1 values (Debian bookworm package python3-scipy),
// printed by
//
//	/usr/bin/python3 -c '
//	from scipy.stats import binomtest
//	for k, n, p in [(0,10,0.5), (3,10,0.5), ..., (1,1,0.5)]:  # the rows below
//	    print("{%d, %d, %r, %r}," % (k, n, p, float(binomtest(k, n, p).pvalue)))'
//
// binomtest's alternative is two-sided by default.
var binomTestRefs = []struct {
	k, n int
	p    float64
	want float64
}{
	{0, 10, 0.5, 0.001953125},
	{3, 10, 0.5, 0.34375},
	{5, 10, 0.5, 1.0},
	{10, 10, 0.5, 0.001953125},
	{7, 20, 0.5, 0.26317596435546875},
	{60, 100, 0.5, 0.05688793364098088},
	{50, 100, 0.5, 1.0},
	{99, 100, 0.5, 1.5934990285464438e-28},
	{3, 10, 0.3, 1.0},
	{1, 10, 0.3, 0.2995766784999998},
	{8, 10, 0.3, 0.0015903863999999995},
	{51000, 100000, 0.5, 2.588716038346895e-10},
	{50500, 100000, 0.5, 0.0015823598788515165},
	{100000, 100000, 0.5, 0.0}, // 2^-99999 underflows in scipy's float64
	{520, 1000, 0.5, 0.2174482932041409},
	{40, 1000, 0.05, 0.16736875164155246},
	{65, 1000, 0.05, 0.034969857277144925},
	{0, 5, 0.2, 0.5904},
	{1, 1, 0.5, 1.0},
}

// TestBinomTestPScipy compares with scipy to 1e-9 relative: gonum's regularized
// incomplete beta (and lgamma-based pmf) are accurate to about 1e-10 relative at
// n = 100,000; e.g. for (51000, 100000, 0.5) the exact value, 2·Σ_{x≥51000} C(n,x)/2^n
// in Python integers, is 2.5887160383468979e-10, scipy's is 6e-16 away and ours 1e-10.
func TestBinomTestPScipy(t *testing.T) {
	for _, c := range binomTestRefs {
		got := BinomTestP(c.k, c.n, c.p)
		if math.Abs(got-c.want) > 1e-9*c.want && !(c.want == 0 && got < 1e-300) {
			t.Errorf("BinomTestP(%d, %d, %v) = %.17g, scipy %.17g", c.k, c.n, c.p, got, c.want)
		}
	}
}

// TestBinomTestPBySum compares with the definition summed term by term.
func TestBinomTestPBySum(t *testing.T) {
	for _, n := range []int{1, 2, 7, 30, 201} {
		for _, p := range []float64{0.5, 0.13, 0.71} {
			for k := 0; k <= n; k++ {
				want := binomTestBySum(k, n, p)
				if got := BinomTestP(k, n, p); math.Abs(got-want) > 1e-10*math.Max(want, 1e-280) {
					t.Errorf("BinomTestP(%d, %d, %v) = %.17g, sum %.17g", k, n, p, got, want)
				}
			}
		}
	}
}

// binomTestBySum is Σ pmf(x) over pmf(x) ≤ pmf(k)(1+1e-7), capped at 1.
func binomTestBySum(k, n int, p float64) float64 {
	pmf := func(x int) float64 {
		lg1, _ := math.Lgamma(float64(n + 1))
		lg2, _ := math.Lgamma(float64(x + 1))
		lg3, _ := math.Lgamma(float64(n - x + 1))
		return math.Exp(lg1 - lg2 - lg3 + float64(x)*math.Log(p) + float64(n-x)*math.Log1p(-p))
	}
	if float64(k) == p*float64(n) {
		return 1
	}
	d := pmf(k) * (1 + 1e-7)
	var s float64
	for x := 0; x <= n; x++ {
		if v := pmf(x); v <= d {
			s += v
		}
	}
	return math.Min(1, s)
}

func TestBinomTestPEdges(t *testing.T) {
	for _, c := range []struct {
		k, n int
		p    float64
		want float64
	}{{0, 5, 0, 1}, {1, 5, 0, 0}, {5, 5, 1, 1}, {4, 5, 1, 0}} {
		if got := BinomTestP(c.k, c.n, c.p); got != c.want {
			t.Errorf("BinomTestP(%d, %d, %v) = %v, want %v", c.k, c.n, c.p, got, c.want)
		}
	}
	for _, c := range []struct {
		k, n int
		p    float64
	}{{-1, 5, 0.5}, {6, 5, 0.5}, {0, 0, 0.5}, {1, 5, -0.1}, {1, 5, 1.1}, {1, 5, math.NaN()}} {
		if got := BinomTestP(c.k, c.n, c.p); !math.IsNaN(got) {
			t.Errorf("BinomTestP(%d, %d, %v) = %v, want NaN", c.k, c.n, c.p, got)
		}
	}
}
