package bounds

import "math"

// Floating-point soundness (Options.SoundFP).
//
// Error model (Higham, "Accuracy and Stability of Numerical Algorithms", 2nd ed.,
// SIAM 2002, §2.2 and §3.1): for IEEE double precision with round-to-nearest, unit
// roundoff u = 2⁻⁵³, every basic operation satisfies
//
//	fl(x op y) = (x op y)(1 + δ) + η,   |δ| ≤ u,  |η| ≤ η₀ = 2⁻¹⁰⁷⁴,
//
// η accounting for gradual underflow (η = 0 for + and −). A dot product or sum of n
// products, evaluated in any order, with or without fused multiply-adds (so also
// inside BLAS), then satisfies (Higham (3.5), Lemma 3.1, plus n underflow terms)
//
//	|fl(Σ aᵢbᵢ) − Σ aᵢbᵢ| ≤ γₙ·Σ|aᵢbᵢ| + n·η₀,   γₙ = n·u/(1 − n·u).
//
// Every bound that SoundFP produces is widened outward by such a term, evaluated on
// magnitudes (|W|·max(|l|,|u|) etc.) that the bound computation already has, and the
// last rounding of each widened bound is covered by one step of math.Nextafter
// outward. The widening covers two things at once:
//
//   - the rounding of the bound computation itself, so that the bound holds for the
//     network evaluated in exact real arithmetic (on the same float64 weights); and
//   - the rounding of the network's own float64 evaluation (nets' Forward, in any
//     summation order, e.g. OpenBLAS blocking that depends on the batch size), so
//     that the bound also holds for the values g.Forward actually returns.
//
// For a linear op y = W·x + b over a box x ∈ [l, h] with m = max(|l|, |h|) this is
// the vector ε = c·γₙ·(|W|·m + |b|) + c'·n·η₀ for a small constant c: the error of the
// network's evaluation is at most γₙ(|W||x| + |b|) ≤ γₙ(|W|m + |b|), and the error of
// computing W·mid, |W|·rad (IBP) or A·W (CROWN's back-substitution, whose effect on
// the bound is |A|·γₙ|W|·m) has the same form. Nonlinear relaxations (ReLU chords,
// sigmoid tangents) get their intercepts moved outward by a margin that covers the
// rounding of their slopes and intercepts and, for sigmoid and tanh, the error of
// the library exp and tanh (< 1 ulp; we allow 8).
//
// The constants below are generous rather than tight: the widening is of relative
// size 1e-15…1e-13 on the shipped models, far below any margin a verifier reports.
// The model assumes no overflow (bounds that overflow become ±Inf, which is sound for
// a lower or upper bound but useless) and n·u < 0.01, i.e. dot products shorter than
// 10¹³ terms.

const (
	unitRoundoff = 0x1p-53 // u
	// tiny stands in for η₀ = 2⁻¹⁰⁷⁴ (the underflow error of one operation is at
	// most η₀/2): a normal number far above it, so that error terms never become
	// subnormal — subnormal arithmetic runs 100× slower on x86 — while staying far
	// below anything a bound can resolve (2⁻⁶⁰⁰ ≈ 2.4e-181).
	tiny = 0x1p-600
)

// gamma returns an upper bound on γₙ = n·u/(1−n·u). It uses n+2 in place of n: the
// slack (≈ 2u) absorbs the roundings of evaluating γₙ·S for a computed S (whose own
// relative error is at most γₙ, and γₙ·(2γₙ + u) < 2u for n < 6·10⁷).
func gamma(n int) float64 {
	nu := float64(n+2) * unitRoundoff
	return nu / (1 - nu) * (1 + 0x1p-30)
}

// down and up move x one float64 outward: they cover one rounding to nearest of x
// (|fl(z) − z| ≤ ulp(fl(z))/2). A result between 0 and ±tiny becomes ±tiny (further
// out, so still sound), which keeps bounds and error weights out of the subnormals.
func down(x float64) float64 {
	r := math.Nextafter(x, math.Inf(-1))
	if r < 0 && r > -tiny {
		return -tiny
	}
	return r
}

func up(x float64) float64 {
	r := math.Nextafter(x, math.Inf(1))
	if r > 0 && r < tiny {
		return tiny
	}
	return r
}

// underflow bounds the underflow errors of n products (n·η₀ ≤ n·tiny), times 4 for
// the products in the error terms themselves.
func underflow(n int) float64 { return 4 * float64(n+1) * tiny }

// widenBox returns [down(lo − e), up(hi + e)] elementwise, in place; e[i] must bound
// every error in lo[i] and hi[i] except their final rounding, which the outward step
// covers. e == nil widens by the final step (and tiny) only.
func widenBox(lo, hi, e []float64) {
	for i := range lo {
		ei := tiny
		if e != nil {
			ei = e[i]
		}
		lo[i] = down(lo[i] - ei)
		hi[i] = up(hi[i] + ei)
	}
}

// sumUp returns an upper bound on the exact sum Σ tᵢ of n non-negative terms whose
// float sum was computed as s (Higham (3.5) applied to a sum, solved for the exact
// value: Σ tᵢ ≤ (s + n·η₀)/(1 − γₙ)).
func sumUp(s float64, n int) float64 {
	return up((s + underflow(n)) * (1 + 2*gamma(n)))
}
