package bounds

import (
	"fmt"
	"math"

	"github.com/certify-dev/certify/nets"
)

// affineLayer is the rule of every op that maps each output element to an affine
// function of at most one element of each input:
//
//	y[n, j] = t[n, j] + Σ_k s_k[n, j] · x_k[n, src_k[n, j]],
//
// which covers Add and Sub (of a constant or of two bounded tensors), Mul and Div
// by a constant, BatchNormalization (s, t per channel), and the pure data
// movements Flatten, Reshape, Transpose, Concat, Pad, Identity and Dropout
// (s = 1, t = the padding or constant parts). Numpy broadcasting is just a src map
// that repeats elements. Both rules are exact: IBP takes, per term, the end of
// x_k's interval that the sign of s_k selects; CROWN's back-substitution scatters
// a[j]·s_k[j] to x_k[src_k[j]] and adds a·t to the constant term.
//
// The src maps are per sample: output sample n may only read input sample n, which
// is checked (an op that mixes samples is refused).
type affineLayer struct {
	base
	so       int // per-sample output size
	outShape []int
	terms    []affineTerm // per node input; empty for constant inputs
	t        []float64    // [N·So]; nil: 0
	// movement: the network computes y without rounding (data movement only).
	movement bool
	// extra is an op-specific addition to the SoundFP error weight (BN's folded
	// parameters); nil: none.
	extra []float64
}

// affineTerm is one bounded input's part of an affineLayer.
type affineTerm struct {
	name   string
	si     int
	src    []int32   // [N·So] local input index, −1: none; nil: the identity (si = So)
	s      []float64 // [N·So]; nil: 1
	fanout int       // the most outputs reading one input element
}

func (tm *affineTerm) active() bool { return tm.name != "" }

// index returns the local input index read by output element g = n·So + j.
func (tm *affineTerm) index(g, j int) int {
	if tm.src == nil {
		return j
	}
	return int(tm.src[g])
}

func (tm *affineTerm) scale(g int) float64 {
	if tm.s == nil {
		return 1
	}
	return tm.s[g]
}

func (l *affineLayer) interval() (Box, error) {
	total := l.e.n * l.so
	out := Box{Lo: nets.NewTensor(l.outShape...), Hi: nets.NewTensor(l.outShape...)}
	fp := l.e.opt.SoundFP && !l.movement
	var e []float64
	if fp {
		e = make([]float64, total)
	}
	for g := 0; g < total; g++ {
		n, j := g/l.so, g%l.so
		lo, hi, m := 0.0, 0.0, 0.0
		if l.t != nil {
			lo, hi, m = l.t[g], l.t[g], math.Abs(l.t[g])
		}
		for k := range l.terms {
			tm := &l.terms[k]
			if !tm.active() {
				continue
			}
			q := tm.index(g, j)
			if q < 0 {
				continue
			}
			b := l.in[k].box
			xl, xh := b.Lo.Data[n*tm.si+q], b.Hi.Data[n*tm.si+q]
			s := tm.scale(g)
			if tm.s == nil {
				lo += xl
				hi += xh
			} else if s >= 0 {
				lo += s * xl
				hi += s * xh
			} else {
				lo += s * xh
				hi += s * xl
			}
			if fp {
				m += math.Abs(s) * max(math.Abs(xl), math.Abs(xh))
			}
		}
		out.Lo.Data[g], out.Hi.Data[g] = lo, hi
		if fp {
			// A few roundings of ours and of the network's (x·c + t, x/c, a·x + b).
			e[g] = up(8*unitRoundoff*m + 4*tiny)
			if l.extra != nil {
				e[g] = up(e[g] + l.extra[g])
			}
		}
	}
	if fp {
		widenBox(out.Lo.Data, out.Hi.Data, e)
	}
	return out, nil
}

func (l *affineLayer) linearize() error {
	if !l.e.opt.SoundFP {
		return nil
	}
	total := l.e.n * l.so
	eps := make([]float64, total)
	gt := gamma(l.so) // the constant term's dot product
	any := l.t != nil || l.extra != nil || !l.movement
	for k := range l.terms {
		tm := &l.terms[k]
		if !tm.active() {
			continue
		}
		mag := l.e.mag(tm.name)
		c := gamma(tm.fanout) // back's sums over the outputs reading one input
		if tm.fanout <= 1 {
			c = 0
		}
		if !l.movement {
			c += 12 * unitRoundoff // products a·s, and the network's own roundings
		}
		if c == 0 {
			continue
		}
		any = true
		for g := 0; g < total; g++ {
			n, j := g/l.so, g%l.so
			if q := tm.index(g, j); q >= 0 {
				eps[g] += c * math.Abs(tm.scale(g)) * mag[n*tm.si+q]
			}
		}
	}
	if !any {
		return nil
	}
	for g := range eps {
		if l.t != nil {
			eps[g] += gt * math.Abs(l.t[g])
		}
		if l.extra != nil {
			eps[g] += l.extra[g]
		}
		eps[g] = up(eps[g]*(1+8*unitRoundoff) + 4*tiny)
	}
	l.epsv = eps
	return nil
}

func (l *affineLayer) back(p *pass, a []float64) ([][]float64, error) {
	out := make([][]float64, len(l.in))
	passed := false // a may be handed on unchanged once
	for k := range l.terms {
		tm := &l.terms[k]
		if !tm.active() {
			continue
		}
		if tm.src == nil && tm.s == nil && !passed {
			out[k], passed = a, true
			continue
		}
		ax := make([]float64, p.rows()*tm.si)
		for i := 0; i < p.n; i++ {
			g0 := (p.s0 + i) * l.so
			for r := 0; r < p.r; r++ {
				row := i*p.r + r
				ar, axr := a[row*l.so:(row+1)*l.so], ax[row*tm.si:(row+1)*tm.si]
				switch {
				case tm.src == nil && tm.s == nil:
					copy(axr, ar)
				case tm.src == nil:
					for j, v := range ar {
						axr[j] = v * tm.s[g0+j]
					}
				default:
					for j, v := range ar {
						if q := tm.src[g0+j]; q >= 0 {
							axr[q] += v * tm.scale(g0+j)
						}
					}
				}
			}
		}
		out[k] = ax
	}
	if l.t != nil {
		p.addDot(a, l.t, l.so, false)
	}
	return out, nil
}

func (l *affineLayer) fwd(p *pass, x [][]float64, _ []float64) ([]float64, error) {
	if l.t == nil {
		// A pure reshape (one term, identity map, scale 1) returns its input.
		var only *affineTerm
		count := 0
		for k := range l.terms {
			if l.terms[k].active() {
				only, count = &l.terms[k], count+1
			}
		}
		if count == 1 && only.src == nil && only.s == nil {
			for k := range l.terms {
				if l.terms[k].active() {
					return x[k], nil
				}
			}
		}
	}
	y := make([]float64, p.rows()*l.so)
	for i := 0; i < p.n; i++ {
		g0 := (p.s0 + i) * l.so
		for r := 0; r < p.r; r++ {
			row := i*p.r + r
			yr := y[row*l.so : (row+1)*l.so]
			if l.t != nil {
				copy(yr, l.t[g0:g0+l.so])
			}
			for k := range l.terms {
				tm := &l.terms[k]
				if !tm.active() {
					continue
				}
				xr := x[k][row*tm.si : (row+1)*tm.si]
				for j := range yr {
					if q := tm.index(g0+j, j); q >= 0 {
						yr[j] += tm.scale(g0+j) * xr[q]
					}
				}
			}
		}
	}
	return y, nil
}

// indexTensor returns a tensor of the given shape holding off, off+1, … (exact in
// float64 below 2⁵³).
func indexTensor(shape []int, off float64) *nets.Tensor {
	t := nets.NewTensor(shape...)
	for i := range t.Data {
		t.Data[i] = off + float64(i)
	}
	return t
}

// localize turns the global source index gsrc[g] (into an input of per-sample size
// si; negative: none) of every output element g (per-sample size so) into a local
// one, checking that output sample n reads only input sample n. It also returns
// the largest fan-out and whether the map is the identity.
func (e *engine) localize(gsrc []float64, si, so int) (src []int32, fanout int, identity bool, err error) {
	src = make([]int32, len(gsrc))
	identity = si == so
	count := make([]int32, e.n*si)
	for g, v := range gsrc {
		if v < 0 {
			src[g], identity = -1, false
			continue
		}
		q := int(v)
		n := g / so
		if e.n > 1 && q/si != n {
			return nil, 0, false, fmt.Errorf("%w: output sample %d reads input sample %d: the op mixes the batch", ErrUnsupported, n, q/si)
		}
		src[g] = int32(q % si)
		if int(src[g]) != g%so {
			identity = false
		}
		count[q]++
		fanout = max(fanout, int(count[q]))
	}
	return src, fanout, identity, nil
}

// broadcastTerm returns the term of bounded input k of an elementwise binary op
// whose other input has shape other: the src map of numpy broadcasting, found by
// broadcasting x's element indices with nets.Add (the op's own rule).
func (l *affineLayer) broadcastTerm(k int, other []int) (affineTerm, error) {
	x := l.in[k]
	idx := indexTensor(x.box.Lo.Shape, 0)
	bc, err := forward1(nets.Add{}, idx, nets.NewTensor(other...))
	if err != nil {
		return affineTerm{}, err
	}
	if len(l.outShape) == 0 {
		l.outShape = bc.Shape
		l.so = len(bc.Data) / l.e.n
		if l.so*l.e.n != len(bc.Data) {
			return affineTerm{}, fmt.Errorf("%w: output of shape %v does not split into %d samples", ErrUnsupported, bc.Shape, l.e.n)
		}
	}
	tm := affineTerm{name: x.name, si: len(x.box.Lo.Data) / l.e.n}
	src, fan, id, err := l.e.localize(bc.Data, tm.si, l.so)
	if err != nil {
		return affineTerm{}, err
	}
	if !id {
		tm.src = src
	}
	tm.fanout = fan
	return tm, nil
}

// stretch returns the constant c broadcast against shape other, to the output.
func stretch(c *nets.Tensor, other []int) ([]float64, error) {
	t, err := forward1(nets.Add{}, nets.NewTensor(other...), c)
	if err != nil {
		return nil, err
	}
	return t.Data, nil
}

// newLinearBinary builds Add (sign +1) or Sub (sign −1): y = a ± b, either operand
// constant or both bounded.
func newLinearBinary(b base, op string, sign float64) (layer, error) {
	if len(b.in) != 2 || b.in[0].shape() == nil || b.in[1].shape() == nil {
		return nil, fmt.Errorf("%s: want 2 inputs", op)
	}
	l := &affineLayer{base: b, terms: make([]affineTerm, 2)}
	for k := 0; k < 2; k++ {
		if !b.in[k].bounded() {
			continue
		}
		tm, err := l.broadcastTerm(k, b.in[1-k].shape())
		if err != nil {
			return nil, err
		}
		if k == 1 && sign < 0 {
			tm.s = make([]float64, b.e.n*l.so)
			for i := range tm.s {
				tm.s[i] = -1
			}
		}
		l.terms[k] = tm
	}
	for k := 0; k < 2; k++ {
		if b.in[k].bounded() {
			continue
		}
		t, err := stretch(b.in[k].c, b.in[1-k].shape())
		if err != nil {
			return nil, err
		}
		if k == 1 && sign < 0 {
			for i := range t {
				t[i] = -t[i]
			}
		}
		l.t = t
	}
	return l, nil
}

// newScaling builds y = x·c (div false) or y = x / c (div true) for a bounded x and
// a constant c, in either operand order for Mul.
func newScaling(b base, op string, div bool) (layer, error) {
	k := 0
	if !b.in[0].bounded() {
		k = 1
	}
	c := b.in[1-k].c
	if c == nil {
		return nil, fmt.Errorf("%s: input %d is absent", op, 1-k)
	}
	l := &affineLayer{base: b, terms: make([]affineTerm, 2)}
	tm, err := l.broadcastTerm(k, c.Shape)
	if err != nil {
		return nil, err
	}
	s, err := stretch(c, b.in[k].box.Lo.Shape)
	if err != nil {
		return nil, err
	}
	for i, v := range s {
		if math.IsNaN(v) || math.IsInf(v, 0) || (div && v == 0) {
			return nil, fmt.Errorf("%s by the constant %v", op, v)
		}
		if div {
			s[i] = 1 / v
		}
	}
	tm.s = s
	l.terms[k] = tm
	return l, nil
}
