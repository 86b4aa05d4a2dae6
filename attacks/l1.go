package attacks

import (
	"math"
	"sort"
)

// projectL1 moves adv onto the L1 ball of radius eps around x, in place, by Duchi,
// Shalev-Shwartz, Singer & Chandra (ICML 2008), Fig. 1: soft-threshold δ = adv − x by
// the θ that makes ‖δ‖₁ = eps.
func projectL1(adv, x []float64, eps float64) {
	n := len(adv)
	abs := make([]float64, n)
	total := 0.0
	for i := range adv {
		abs[i] = math.Abs(adv[i] - x[i])
		total += abs[i]
	}
	if total <= eps {
		return
	}
	sorted := append([]float64(nil), abs...)
	sort.Sort(sort.Reverse(sort.Float64Slice(sorted)))
	cum, theta := 0.0, 0.0
	for j, u := range sorted {
		cum += u
		if t := (cum - eps) / float64(j+1); u > t {
			theta = t
		}
	}
	for i := range adv {
		d := adv[i] - x[i]
		m := math.Max(abs[i]-theta, 0)
		adv[i] = x[i] + math.Copysign(m, d)
	}
}
