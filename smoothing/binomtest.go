package smoothing

import (
	"math"

	"gonum.org/v1/gonum/mathext"
	"gonum.org/v1/gonum/stat/combin"
)

// binomRelErr is scipy's tolerance for "as likely as the observation": outcomes with
// pmf ≤ pmf(k)·(1+1e-7) count as at least as extreme.
const binomRelErr = 1 + 1e-7

// BinomTestP is the two-sided exact binomial test p-value of k successes in n under p (scipy binomtest).
//
// The p-value is the probability, under Binomial(n, p), of the outcomes no more likely
// than k (the "minimum likelihood" two-sided test, as scipy.stats.binomtest with
// alternative="two-sided"):
//
//	P = Σ_{x : pmf(x) ≤ pmf(k)·(1+1e-7)} pmf(x),  capped at 1.
//
// The pmf is unimodal, so the sum is the tail beyond k plus the tail beyond the
// first outcome on the far side of the mean np that is no more likely; that outcome
// is found by bisection and both tails come from the regularized incomplete beta
// function, so tiny p-values keep their relative accuracy (about 1e-10 at n = 100,000,
// the accuracy of gonum's incomplete beta). It is 1 when k = np.
// It returns NaN unless 0 ≤ k ≤ n, n ≥ 1 and 0 ≤ p ≤ 1.
func BinomTestP(k, n int, p float64) float64 {
	if !validBinomial(k, n) || !(p >= 0 && p <= 1) {
		return math.NaN()
	}
	switch p {
	case 0:
		return boolP(k == 0)
	case 1:
		return boolP(k == n)
	}
	mean := p * float64(n)
	if float64(k) == mean {
		return 1
	}
	logPMF := func(x int) float64 {
		return combin.LogGeneralizedBinomial(float64(n), float64(x)) + float64(x)*math.Log(p) + float64(n-x)*math.Log1p(-p)
	}
	limit := logPMF(k) + math.Log(binomRelErr)
	var pval float64
	if float64(k) < mean {
		// Far side [ceil(np), n], where the pmf decreases: the first x no more likely than k.
		lo, hi := int(math.Ceil(mean)), n+1
		for lo < hi {
			mid := lo + (hi-lo)/2
			if logPMF(mid) <= limit {
				hi = mid
			} else {
				lo = mid + 1
			}
		}
		pval = binomCDF(k, n, p) + binomSF(lo, n, p)
	} else {
		// Far side [0, floor(np)], where the pmf increases: the last x no more likely than k.
		lo, hi := -1, int(math.Floor(mean))
		for lo < hi {
			mid := hi - (hi-lo)/2
			if logPMF(mid) <= limit {
				lo = mid
			} else {
				hi = mid - 1
			}
		}
		pval = binomCDF(lo, n, p) + binomSF(k, n, p)
	}
	return math.Min(1, pval)
}

// binomCDF is P(X ≤ x) for X ~ Binomial(n, p): I_{1−p}(n−x, x+1).
func binomCDF(x, n int, p float64) float64 {
	switch {
	case x < 0:
		return 0
	case x >= n:
		return 1
	}
	return mathext.RegIncBeta(float64(n-x), float64(x+1), 1-p)
}

// binomSF is P(X ≥ x) for X ~ Binomial(n, p): I_p(x, n−x+1).
func binomSF(x, n int, p float64) float64 {
	switch {
	case x <= 0:
		return 1
	case x > n:
		return 0
	}
	return mathext.RegIncBeta(float64(x), float64(n-x+1), p)
}

func boolP(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
