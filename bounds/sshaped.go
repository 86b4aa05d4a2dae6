package bounds

import "math"

// sCurve is an S-shaped activation: increasing, convex on (−∞, 0], concave on
// [0, ∞), with |f| ≤ 1 and 0 < f' ≤ 1 (sigmoid and tanh).
type sCurve interface {
	name() string
	f(x float64) float64
	df(x float64) float64
}

// sShapedLayer relaxes y = f(x) for an S-shaped f on the pre-activation bounds
// [l, u] of each neuron with one lower and one upper line (Zhang et al. 2018, §3.2
// and Appendix A, "CROWN" for general activations; the same cases as DeepPoly's
// sigmoid and tanh transformers, Singh et al. 2019, §4.3):
//
//   - u ≤ 0 (f convex on [l, u]): upper = the chord through (l, f(l)), (u, f(u));
//     lower = the tangent at the midpoint (a convex function lies above its tangents).
//   - l ≥ 0 (concave): lower = the chord, upper = the tangent at the midpoint.
//   - l < 0 < u: upper = the tangent at the point d ∈ [0, u] whose tangent passes
//     through (l, f(l)), if the tangent at u passes above (l, f(l)); else the chord.
//     Soundness: for d ≥ 0 the tangent t_d dominates f on [0, u] (concavity), and on
//     [l, 0] the function t_d − f is concave (f is convex there), so it is ≥ 0 there
//     iff it is at x = l and x = 0; t_d(0) ≥ f(0) by concavity, and t_d(l) ≥ f(l) by
//     the choice of d (t_d(l) increases with d, since ∂t_d(l)/∂d = f”(d)(l − d) ≥
//     0). When even t_u(l) < f(l), the chord has slope below f'(u), so chord − f is
//     convex and decreasing on [0, u] (≥ 0 there) and concave on [l, 0] with
//     non-negative ends: the chord dominates f. The lower line mirrors this with a
//     tangent at d ∈ [l, 0] through (u, f(u)).
//
// d is found by bisection, keeping the end where the tangent is valid. With SoundFP
// the intercepts move outward by 64u·(1 + |l| + |u|): it covers the rounding of
// slopes (|Δf'| ≲ 2u absolute for |f| ≤ 1, times |x − d| ≤ |l| + |u|), of intercepts,
// of the bisection's test, and the library error of exp and tanh (a few ulp of
// |f| ≤ 1) in our evaluation and in the network's.
type sShapedLayer struct {
	base
	c              sCurve
	s              int
	al, tl, au, tu []float64 // lower and upper lines per neuron [N·S]
}

func newSShaped(b base, c sCurve) (layer, error) {
	if len(b.in) != 1 || !b.in[0].bounded() {
		return nil, errArity(c.name(), 1)
	}
	return &sShapedLayer{base: b, c: c, s: b.e.per(b.in[0].name)}, nil
}

// sMargin is the SoundFP widening of f's values (absolute, |f| ≤ 1): library
// error of our evaluation and of the network's, a few ulp each.
const sMargin = 16 * unitRoundoff

func (l *sShapedLayer) interval() (Box, error) {
	x := l.in[0].box
	out := Box{Lo: x.Lo.Clone(), Hi: x.Hi.Clone()}
	for i := range out.Lo.Data {
		out.Lo.Data[i] = l.c.f(out.Lo.Data[i])
		out.Hi.Data[i] = l.c.f(out.Hi.Data[i])
	}
	if l.e.opt.SoundFP {
		for i := range out.Lo.Data {
			out.Lo.Data[i] = down(out.Lo.Data[i] - sMargin - tiny)
			out.Hi.Data[i] = up(out.Hi.Data[i] + sMargin + tiny)
		}
	}
	return out, nil
}

func (l *sShapedLayer) nonlinear() bool { return true }

func (l *sShapedLayer) linearize() error {
	x := l.in[0].box
	n := len(x.Lo.Data)
	l.al, l.tl, l.au, l.tu = make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)
	fp := l.e.opt.SoundFP
	for g, lo := range x.Lo.Data {
		hi := x.Hi.Data[g]
		l.al[g], l.tl[g], l.au[g], l.tu[g] = relaxS(l.c, lo, hi)
		if fp {
			m := 64*unitRoundoff*(1+math.Abs(lo)+math.Abs(hi)) + tiny
			l.tl[g] = down(l.tl[g] - m)
			l.tu[g] = up(l.tu[g] + m)
		}
	}
	if fp {
		mag := l.e.mag(l.in[0].name)
		gs := gamma(l.s)
		l.epsv = make([]float64, n)
		for g := range l.epsv {
			sl := max(math.Abs(l.al[g]), math.Abs(l.au[g]))
			t := max(math.Abs(l.tl[g]), math.Abs(l.tu[g]))
			l.epsv[g] = up(2*unitRoundoff*sl*mag[g] + gs*t + tiny)
		}
	}
	return nil
}

// relaxS returns lower and upper lines y ≥ al·x + tl, y ≤ au·x + tu of the S-curve
// c on [lo, hi] (see sShapedLayer).
func relaxS(c sCurve, lo, hi float64) (al, tl, au, tu float64) {
	flo, fhi := c.f(lo), c.f(hi)
	if hi-lo <= 1e-10*(1+math.Abs(lo)+math.Abs(hi)) {
		// A (near-)point interval: constant bounds, by monotonicity.
		return 0, flo, 0, fhi
	}
	tangent := func(d float64) (float64, float64) {
		s := c.df(d)
		return s, c.f(d) - s*d
	}
	chord := func() (float64, float64) {
		k := (fhi - flo) / (hi - lo)
		return k, flo - k*lo
	}
	switch {
	case hi <= 0:
		au, tu = chord()
		al, tl = tangent(0.5*lo + 0.5*hi)
	case lo >= 0:
		al, tl = chord()
		au, tu = tangent(0.5*lo + 0.5*hi)
	default:
		// Upper: valid tangent points d ∈ [0, hi] are those with t_d(lo) ≥ f(lo).
		if valid := func(d float64) bool { return c.f(d)+c.df(d)*(lo-d) >= flo }; valid(hi) {
			a, b := 0.0, hi // invariant: b valid
			for i := 0; i < 50 && b-a > 1e-12*(1+b); i++ {
				if m := 0.5*a + 0.5*b; valid(m) {
					b = m
				} else {
					a = m
				}
			}
			au, tu = tangent(b)
		} else {
			au, tu = chord()
		}
		// Lower: valid d ∈ [lo, 0] are those with t_d(hi) ≤ f(hi).
		if valid := func(d float64) bool { return c.f(d)+c.df(d)*(hi-d) <= fhi }; valid(lo) {
			a, b := lo, 0.0 // invariant: a valid
			for i := 0; i < 50 && b-a > 1e-12*(1-a); i++ {
				if m := 0.5*a + 0.5*b; valid(m) {
					a = m
				} else {
					b = m
				}
			}
			al, tl = tangent(a)
		} else {
			al, tl = chord()
		}
	}
	return al, tl, au, tu
}

func (l *sShapedLayer) back(p *pass, a []float64) ([][]float64, error) {
	s := l.s
	ax := make([]float64, len(a))
	for i := 0; i < p.n; i++ {
		g0 := (p.s0 + i) * s
		for r := 0; r < p.r; r++ {
			row := i*p.r + r
			ar, axr := a[row*s:(row+1)*s], ax[row*s:(row+1)*s]
			c := 0.0
			for j, v := range ar {
				g := g0 + j
				if v >= 0 {
					axr[j] = v * l.al[g]
					c += v * l.tl[g]
				} else {
					axr[j] = v * l.au[g]
					c += v * l.tu[g]
				}
			}
			p.addBias(row, c)
		}
	}
	return [][]float64{ax}, nil
}

func (l *sShapedLayer) fwd(p *pass, x [][]float64, aOut []float64) ([]float64, error) {
	s := l.s
	xin := x[0]
	y := make([]float64, len(xin))
	for i := 0; i < p.n; i++ {
		g0 := (p.s0 + i) * s
		for r := 0; r < p.r; r++ {
			row := i*p.r + r
			for j := 0; j < s; j++ {
				g, q := g0+j, row*s+j
				if aOut[q] >= 0 {
					y[q] = l.al[g]*xin[q] + l.tl[g]
				} else {
					y[q] = l.au[g]*xin[q] + l.tu[g]
				}
			}
		}
	}
	return y, nil
}
