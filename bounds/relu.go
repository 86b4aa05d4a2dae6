package bounds

import (
	"fmt"
	"math"
)

// reluLayer relaxes y = max(0, x) on the pre-activation bounds [l, u] of each
// neuron (Zhang et al. 2018, §3.1; Singh et al., "An Abstract Domain for Certifying
// Neural Networks" (DeepPoly), POPL 2019, §4.2):
//
//   - u ≤ 0: y = 0 and l ≥ 0: y = x, exactly;
//   - l < 0 < u (unstable): the upper bound is the chord through (l, 0) and (u, u),
//     y ≤ u/(u−l)·(x − l); the lower bound is y ≥ α·x for any α ∈ [0, 1]. CROWN takes
//     the adaptive α = 1 if u ≥ −l else 0 ("CROWN-Ada", the slope of the smaller
//     triangle); alpha-CROWN optimises α (alpha.go).
//
// IBP is [max(0, l), max(0, u)], exact in floating point too.
type reluLayer struct {
	base
	s      int
	lo, hi []float64 // pre-activation bounds [N·S]
	// Per neuron [N·S]: CROWN's lower slope, the upper slope and intercept
	// (0, 0, 0 inactive; 1, 1, 0 active; adaptive, chord, chord's for unstable).
	lsl, usl, icpt []float64
	// split holds the Options.Splits of the input value (nil: none).
	split []int8
}

func newRelu(b base) (layer, error) {
	if len(b.in) != 1 || !b.in[0].bounded() {
		return nil, errArity("Relu", 1)
	}
	x := b.in[0].box
	l := &reluLayer{base: b, s: b.e.per(b.in[0].name), lo: x.Lo.Data, hi: x.Hi.Data}
	if sp, ok := b.e.opt.Splits[b.in[0].name]; ok {
		if len(sp) != len(l.lo) {
			return nil, fmt.Errorf("splits of %q: %d values, want %d", b.in[0].name, len(sp), len(l.lo))
		}
		l.split = sp
	}
	return l, nil
}

func (l *reluLayer) interval() (Box, error) {
	x := l.in[0].box
	out := Box{Lo: x.Lo.Clone(), Hi: x.Hi.Clone()}
	for i := range out.Lo.Data {
		out.Lo.Data[i] = max(out.Lo.Data[i], 0)
		out.Hi.Data[i] = max(out.Hi.Data[i], 0)
	}
	return out, nil
}

func (l *reluLayer) nonlinear() bool { return true }

func (l *reluLayer) linearize() error {
	n := len(l.lo)
	l.lsl, l.usl, l.icpt = make([]float64, n), make([]float64, n), make([]float64, n)
	fp := l.e.opt.SoundFP
	for g, lo := range l.lo {
		hi := l.hi[g]
		switch {
		case hi <= 0:
			continue
		case lo >= 0:
			l.lsl[g], l.usl[g] = 1, 1
			continue
		}
		sl := hi / (hi - lo)
		c := -sl * lo
		if fp {
			// Valid in exact arithmetic iff sl·l + c ≥ 0 and sl·u + c ≥ u (the
			// line then dominates the convex ReLU on [l, u]); cover both roundings.
			c = up(max(c, hi-sl*hi) + 4*unitRoundoff*(math.Abs(sl*lo)+hi) + tiny)
		}
		l.usl[g], l.icpt[g] = sl, c
		if hi >= -lo {
			l.lsl[g] = 1 // CROWN-Ada: the lower line of the smaller area
		}
	}
	if fp {
		m := l.e.mag(l.in[0].name)
		gs := gamma(l.s)
		l.epsv = make([]float64, n)
		for g := range l.epsv {
			// back's products a·slope (slope ≤ 1) and the intercept dot product.
			l.epsv[g] = up(2*unitRoundoff*m[g] + gs*l.icpt[g] + tiny)
		}
	}
	return nil
}

// back applies, per element, the lower line (slope lsl, or α for an unstable
// neuron, recognised by its positive chord intercept) where the coefficient is
// ≥ 0 and the upper one (slope usl, intercept icpt) where it is negative; stable
// neurons have equal lines (0 or 1, no intercept). Outside
// alpha-CROWN's recording passes a is overwritten: no one else holds it.
func (l *reluLayer) back(p *pass, a []float64) ([][]float64, error) {
	s := l.s
	ax := a
	if p.keep != nil {
		ax = make([]float64, len(a))
	}
	alpha, beta := p.alpha[l.k], p.beta[l.k]
	var mag []float64
	if beta != nil && l.e.opt.SoundFP {
		mag = l.e.mag(l.in[0].name)
	}
	for i := 0; i < p.n; i++ {
		g0 := (p.s0 + i) * s
		lsl, usl, icpt := l.lsl[g0:g0+s], l.usl[g0:g0+s], l.icpt[g0:g0+s]
		for r := 0; r < p.r; r++ {
			row := i*p.r + r
			ar, axr := a[row*s:(row+1)*s], ax[row*s:(row+1)*s]
			var al []float64
			if alpha != nil {
				al = alpha[row*s : (row+1)*s]
			}
			c := 0.0
			for j, v := range ar {
				switch {
				case v == 0:
				case v > 0 && al != nil && icpt[j] > 0: // unstable: α
					axr[j] = v * al[j]
				case v > 0:
					axr[j] = v * lsl[j]
				default:
					axr[j] = v * usl[j]
					c += v * icpt[j]
				}
			}
			if c != 0 {
				p.addBias(row, c)
			}
			if beta != nil {
				// β-CROWN: the split constraint s·z ≥ 0 with multiplier β
				// adds −β·s to the coefficient of z (Options.Splits).
				bt := beta[row*s : (row+1)*s]
				for j, sp := range l.split[g0 : g0+s] {
					if sp == 0 || bt[j] == 0 {
						continue
					}
					axr[j] -= bt[j] * float64(sp)
					if mag != nil {
						// One rounding of the sum, times |z| ≤ mag.
						p.err[row] = up(p.err[row] + 2*unitRoundoff*math.Abs(axr[j])*mag[g0+j])
					}
				}
			}
		}
	}
	return [][]float64{ax}, nil
}

func (l *reluLayer) fwd(p *pass, x [][]float64, aOut []float64) ([]float64, error) {
	s := l.s
	xin := x[0]
	y := make([]float64, len(xin))
	alpha := p.alpha[l.k]
	for i := 0; i < p.n; i++ {
		g0 := (p.s0 + i) * s
		for r := 0; r < p.r; r++ {
			row := i*p.r + r
			for j := 0; j < s; j++ {
				g, q := g0+j, row*s+j
				if aOut[q] >= 0 {
					sl := l.lsl[g]
					if alpha != nil && l.icpt[g] > 0 {
						sl = alpha[q]
					}
					y[q] = sl * xin[q]
				} else {
					y[q] = l.usl[g]*xin[q] + l.icpt[g]
				}
			}
		}
	}
	return y, nil
}

// betaGrad writes ∂bound/∂β for every split of the pass: β_j enters the bound
// only through the coefficient −β_j·s_j of z_j, so the derivative is −s_j·ẑ_j,
// ẑ_j the value of z_j at the bound's minimiser propagated forward (as for α).
func (l *reluLayer) betaGrad(p *pass, xIn, grad []float64) {
	s := l.s
	for i := 0; i < p.n; i++ {
		g0 := (p.s0 + i) * s
		for r := 0; r < p.r; r++ {
			row := i*p.r + r
			for j := 0; j < s; j++ {
				grad[row*s+j] = -float64(l.split[g0+j]) * xIn[row*s+j]
			}
		}
	}
}

// alphaGrad writes ∂bound/∂α for every lower slope of the pass: the bound depends on
// α_j only through the coefficient aOut_j⁺·α_j of x_j, so the derivative is
// aOut_j⁺·g_j, g_j = ∂bound/∂(coefficient of x_j), which is the value of x_j at the
// bound's minimiser propagated forward through the relaxed network (fwd). It is 0
// for stable neurons and where aOut_j < 0 (the chord is used there).
func (l *reluLayer) alphaGrad(p *pass, aOut, xIn, grad []float64) {
	s := l.s
	for i := 0; i < p.n; i++ {
		g0 := (p.s0 + i) * s
		for r := 0; r < p.r; r++ {
			row := i*p.r + r
			for j := 0; j < s; j++ {
				g, q := g0+j, row*s+j
				grad[q] = 0
				if l.icpt[g] > 0 && aOut[q] > 0 {
					grad[q] = aOut[q] * xIn[q]
				}
			}
		}
	}
}
