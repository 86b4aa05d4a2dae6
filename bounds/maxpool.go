package bounds

import (
	"fmt"
	"math"

	"github.com/certify-dev/certify/nets"
)

// maxPoolLayer relaxes MaxPool, y = max of the taps of its window inside the input
// (padding never wins), per output with the DeepPoly transformer (Singh et al.
// 2019, §4.4, "Maxpool"):
//
//   - if one tap i has l_i ≥ u_j for every other tap j, then y = x_i exactly;
//   - else y ≥ x_{i*} for the tap i* with the largest lower bound (y dominates every
//     tap) and y ≤ max_j u_j (a constant).
//
// IBP is [max_j l_j, max_j u_j], exact in floating point too.
type maxPoolLayer struct {
	base
	win     nets.Window2D
	planes  int // planes of one sample (rows of X per sample × channels)
	s, so   int // per-sample input and output sizes
	lo, hi  []float64
	pick    []int32   // [N·So]: local input index of i*
	exact   []bool    // [N·So]
	umax    []float64 // [N·So]
	windowN int
}

func newMaxPool(b base, op nets.MaxPool) (layer, error) {
	if len(b.in) != 1 || !b.in[0].bounded() {
		return nil, errArity("MaxPool", 1)
	}
	x := b.in[0].box.Lo
	win, err := op.Window(x)
	if err != nil {
		return nil, err
	}
	l := &maxPoolLayer{base: b, win: win, lo: x.Data, hi: b.in[0].box.Hi.Data}
	l.planes = x.Shape[0] * x.Shape[1] / b.e.n
	l.s = l.planes * win.InH * win.InW
	l.so = l.planes * win.OutH * win.OutW
	l.windowN = win.KH * win.KW
	return l, nil
}

// taps calls f with the local input index of every tap of output (plane, oh, ow)
// that lies inside the input.
func (l *maxPoolLayer) taps(plane, oh, ow int, f func(q int)) {
	w := l.win
	base := plane * w.InH * w.InW
	for i := 0; i < w.KH; i++ {
		ih := oh*w.StrideH - w.PadTop + i*w.DilH
		if ih < 0 || ih >= w.InH {
			continue
		}
		for j := 0; j < w.KW; j++ {
			iw := ow*w.StrideW - w.PadLeft + j*w.DilW
			if iw >= 0 && iw < w.InW {
				f(base + ih*w.InW + iw)
			}
		}
	}
}

// each calls f for every sample n and output o of a sample with the window's
// statistics: i* (largest lower bound), its lower bound, the largest upper bound
// and the largest upper bound of the other taps.
func (l *maxPoolLayer) each(f func(n, o, pick int, lstar, umax, uOther float64)) error {
	w := l.win
	for n := 0; n < l.e.n; n++ {
		off := n * l.s
		o := 0
		for pl := 0; pl < l.planes; pl++ {
			for oh := 0; oh < w.OutH; oh++ {
				for ow := 0; ow < w.OutW; ow++ {
					pick, lstar := -1, math.Inf(-1)
					u1, u2, u1at := math.Inf(-1), math.Inf(-1), -1 // top two upper bounds
					l.taps(pl, oh, ow, func(q int) {
						lq, uq := l.lo[off+q], l.hi[off+q]
						if pick < 0 || lq > lstar {
							pick, lstar = q, lq
						}
						if uq > u1 || u1at < 0 {
							u1, u2, u1at = uq, u1, q
						} else if uq > u2 {
							u2 = uq
						}
					})
					if pick < 0 {
						return fmt.Errorf("output (%d, %d, %d): window covers only padding", pl, oh, ow)
					}
					uOther := u1
					if u1at == pick {
						uOther = u2
					}
					f(n, o, pick, lstar, u1, uOther)
					o++
				}
			}
		}
	}
	return nil
}

func (l *maxPoolLayer) interval() (Box, error) {
	x := l.in[0].box.Lo
	shape := []int{x.Shape[0], x.Shape[1], l.win.OutH, l.win.OutW}
	out := Box{Lo: nets.NewTensor(shape...), Hi: nets.NewTensor(shape...)}
	err := l.each(func(n, o, _ int, lstar, umax, _ float64) {
		out.Lo.Data[n*l.so+o], out.Hi.Data[n*l.so+o] = lstar, umax
	})
	return out, err
}

func (l *maxPoolLayer) nonlinear() bool { return true }

func (l *maxPoolLayer) linearize() error {
	total := l.e.n * l.so
	l.pick, l.exact, l.umax = make([]int32, total), make([]bool, total), make([]float64, total)
	err := l.each(func(n, o, pick int, lstar, umax, uOther float64) {
		g := n*l.so + o
		l.pick[g], l.exact[g], l.umax[g] = int32(pick), lstar >= uOther, umax
	})
	if err != nil {
		return err
	}
	if l.e.opt.SoundFP {
		// back adds up to windowN coefficients into one input, and sums a·umax.
		mag := l.e.mag(l.in[0].name)
		gw, gs := gamma(l.windowN), gamma(l.so)
		l.epsv = make([]float64, total)
		for g := range l.epsv {
			n := g / l.so
			l.epsv[g] = up(gw*mag[n*l.s+int(l.pick[g])] + gs*math.Abs(l.umax[g]) + tiny)
		}
	}
	return nil
}

func (l *maxPoolLayer) back(p *pass, a []float64) ([][]float64, error) {
	ax := make([]float64, p.rows()*l.s)
	for i := 0; i < p.n; i++ {
		g0 := (p.s0 + i) * l.so
		for r := 0; r < p.r; r++ {
			row := i*p.r + r
			ar, axr := a[row*l.so:(row+1)*l.so], ax[row*l.s:(row+1)*l.s]
			c := 0.0
			for o, v := range ar {
				g := g0 + o
				if v >= 0 || l.exact[g] {
					axr[l.pick[g]] += v
				} else {
					c += v * l.umax[g]
				}
			}
			if c != 0 {
				p.addBias(row, c)
			}
		}
	}
	return [][]float64{ax}, nil
}

func (l *maxPoolLayer) fwd(p *pass, x [][]float64, aOut []float64) ([]float64, error) {
	y := make([]float64, p.rows()*l.so)
	for i := 0; i < p.n; i++ {
		g0 := (p.s0 + i) * l.so
		for r := 0; r < p.r; r++ {
			row := i*p.r + r
			xr := x[0][row*l.s : (row+1)*l.s]
			for o := 0; o < l.so; o++ {
				g, q := g0+o, row*l.so+o
				if aOut[q] >= 0 || l.exact[g] {
					y[q] = xr[l.pick[g]]
				} else {
					y[q] = l.umax[g]
				}
			}
		}
	}
	return y, nil
}
