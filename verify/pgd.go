package verify

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/certify-dev/certify/bounds"
	"github.com/certify-dev/certify/nets"
)

// boxAscent is projected signed-gradient ascent (Madry et al., ICLR 2018) of a
// loss that is ≥ 0 exactly at a counterexample, from the points xs, each kept
// in its own box [lo[i], hi[i]]. The step is a fraction of the box width that
// decays geometrically from 1/4 to 1/100 over the steps, so that boxes of very
// different widths (VNN-COMP properties mix them) are searched alike. After every
// gradient, the indices whose loss is ≥ 0 go to check, which re-checks them by
// a plain forward pass and reports whether the search is over.
type boxAscent struct {
	g      *nets.Graph
	shape  []int // per-sample input shape
	loss   nets.Loss
	steps  int
	lo, hi [][]float64
	labels []int // passed to loss
	check  func(cand []int, xs [][]float64) (bool, error)
}

// run ascends from xs, modified in place. It returns whether check ended it;
// when ctx ends first it returns ctx's error.
func (a boxAscent) run(ctx context.Context, xs [][]float64) (bool, error) {
	if len(xs) == 0 {
		return false, nil
	}
	per := nets.NumElements(a.shape)
	batch := nets.NewTensor(append([]int{len(xs)}, a.shape...)...)
	for step := 0; step < a.steps; step++ {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		for i, x := range xs {
			copy(batch.Data[i*per:(i+1)*per], x)
		}
		vals, grad, err := a.g.LossGrad(batch, a.labels, a.loss)
		if err != nil {
			return false, fmt.Errorf("gradient: %w", err)
		}
		var cand []int
		for i, v := range vals {
			if v >= 0 {
				cand = append(cand, i)
			}
		}
		if len(cand) > 0 {
			if done, err := a.check(cand, xs); err != nil || done {
				return done, err
			}
		}
		frac := 0.25 * math.Pow(0.04, float64(step)/float64(max(a.steps-1, 1)))
		for i, x := range xs {
			g := grad.Data[i*per : (i+1)*per]
			lo, hi := a.lo[i], a.hi[i]
			for j := range x {
				w := (hi[j] - lo[j]) * frac
				switch {
				case g[j] > 0:
					x[j] += w
				case g[j] < 0:
					x[j] -= w
				}
				x[j] = math.Min(math.Max(x[j], lo[j]), hi[j])
			}
		}
	}
	return false, nil
}

// specViolation is the loss of falsifying specs: for sample i, −min_r (C_r·y +
// D_r) of spec labels[i], ≥ 0 exactly where some row is ≤ 0 (the spec fails).
// Its gradient is −C of the least row.
type specViolation struct {
	specs []bounds.Spec
}

func (v specViolation) Eval(logits *nets.Tensor, labels []int) ([]float64, *nets.Tensor, error) {
	n := len(labels)
	if n == 0 || logits.Len()%n != 0 {
		return nil, nil, fmt.Errorf("spec violation: %d outputs for %d samples", logits.Len(), n)
	}
	per := logits.Len() / n
	vals := make([]float64, n)
	grad := nets.NewTensor(logits.Shape...)
	for i, l := range labels {
		if l < 0 || l >= len(v.specs) {
			return nil, nil, fmt.Errorf("spec violation: spec %d of %d", l, len(v.specs))
		}
		s := v.specs[l]
		y := logits.Data[i*per : (i+1)*per]
		best, arg := math.Inf(1), -1
		for r, c := range s.C {
			if len(c) != per {
				return nil, nil, fmt.Errorf("spec violation: row over %d outputs, network has %d", len(c), per)
			}
			val := s.D[r]
			for j, cj := range c {
				val += cj * y[j]
			}
			if val < best {
				best, arg = val, r
			}
		}
		if arg < 0 {
			continue // no rows: nothing can fail
		}
		vals[i] = -best
		g := grad.Data[i*per : (i+1)*per]
		for j, cj := range s.C[arg] {
			g[j] = -cj
		}
	}
	return vals, grad, nil
}

// falsifySpec searches the box [xlo, xhi] (one sample of per-sample shape
// shape) for a point where spec s fails: signed-gradient ascent of
// specViolation from the centre and starts−1 random points. A point is returned
// only after a forward pass confirms a row ≤ 0 there.
func falsifySpec(ctx context.Context, g *nets.Graph, shape []int, xlo, xhi []float64, s bounds.Spec, starts, steps int, seed uint64) (*nets.Tensor, error) {
	rng := newRand(seed)
	xs := make([][]float64, starts)
	los, his, labels := make([][]float64, starts), make([][]float64, starts), make([]int, starts)
	for i := range xs {
		xs[i] = make([]float64, len(xlo))
		for j := range xlo {
			t := 0.5
			if i > 0 {
				t = rng.Float64()
			}
			xs[i][j] = min(max(xlo[j]+(xhi[j]-xlo[j])*t, xlo[j]), xhi[j])
		}
		los[i], his[i] = xlo, xhi
	}
	var found *nets.Tensor
	a := boxAscent{g: g, shape: shape, loss: specViolation{specs: []bounds.Spec{s}}, steps: steps, lo: los, hi: his, labels: labels,
		check: func(cand []int, xs [][]float64) (bool, error) {
			for _, i := range cand {
				x := nets.FromData(append([]float64(nil), xs[i]...), append([]int{1}, shape...)...)
				ok, err := violates(g, s, x)
				if err != nil || ok {
					if ok {
						found = x
					}
					return ok, err
				}
			}
			return false, nil
		}}
	if _, err := a.run(ctx, xs); err != nil && ctx.Err() == nil {
		return nil, err
	}
	return found, nil
}

// violates reports whether some row of s is ≤ 0 at the single input x.
func violates(g *nets.Graph, s bounds.Spec, x *nets.Tensor) (bool, error) {
	y, err := g.Logits(x)
	if err != nil {
		return false, fmt.Errorf("evaluating a candidate counterexample: %w", err)
	}
	val, err := specValue(s, y.Data)
	if err != nil {
		return false, err
	}
	return val <= 0, nil
}

// newRand is the generator of the random starts of falsifySpec.
func newRand(seed uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, 0x62616270676421))
}
