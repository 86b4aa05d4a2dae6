package smoothing

import (
	"math"

	"gonum.org/v1/gonum/stat/distuv"
)

// ClopperPearsonLower is the one-sided (1−α) lower confidence bound on p from k successes in n.
//
// It is the exact (Clopper & Pearson, Biometrika 1934) bound used by CERTIFY in Cohen,
// Rosenfeld & Kolter (2019): the α quantile of Beta(k, n−k+1), i.e. the p at which
// P(Binomial(n, p) ≥ k) = α; it is 0 for k = 0, and α^(1/n) (the closed form of the
// quantile) for k = n. It equals the lower end of ClopperPearson(k, n, 2α), i.e. of
// statsmodels proportion_confint(k, n, alpha=2α, method="beta").
// It returns NaN unless 0 ≤ k ≤ n, n ≥ 1 and 0 < α < 1.
func ClopperPearsonLower(k, n int, alpha float64) float64 {
	if !validBinomial(k, n) || !(alpha > 0 && alpha < 1) {
		return math.NaN()
	}
	switch k {
	case 0:
		return 0
	case n:
		return math.Exp(math.Log(alpha) / float64(n))
	}
	return distuv.Beta{Alpha: float64(k), Beta: float64(n - k + 1)}.Quantile(alpha)
}

// ClopperPearson is the two-sided (1−α) interval (statsmodels proportion_confint method="beta").
//
// lo is the α/2 quantile of Beta(k, n−k+1) (0 for k = 0) and hi the 1−α/2 quantile
// of Beta(k+1, n−k) (1 for k = n); Clopper & Pearson (1934). The closed forms
// lo = (α/2)^(1/n) for k = n and hi = 1 − (α/2)^(1/n) for k = 0 are used at the edges.
// It returns NaNs unless 0 ≤ k ≤ n, n ≥ 1 and 0 < α < 1.
func ClopperPearson(k, n int, alpha float64) (lo, hi float64) {
	if !validBinomial(k, n) || !(alpha > 0 && alpha < 1) {
		return math.NaN(), math.NaN()
	}
	half := alpha / 2
	switch k {
	case 0:
		lo = 0
	case n:
		lo = math.Exp(math.Log(half) / float64(n))
	default:
		lo = distuv.Beta{Alpha: float64(k), Beta: float64(n - k + 1)}.Quantile(half)
	}
	switch k {
	case n:
		hi = 1
	case 0:
		hi = -math.Expm1(math.Log(half) / float64(n))
	default:
		hi = distuv.Beta{Alpha: float64(k + 1), Beta: float64(n - k)}.Quantile(1 - half)
	}
	return lo, hi
}

// validBinomial reports whether k successes in n ≥ 1 trials is possible.
func validBinomial(k, n int) bool { return n >= 1 && k >= 0 && k <= n }
