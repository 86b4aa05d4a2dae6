package nets

import (
	"fmt"
	"math"
)

// Adam is the optimizer of Kingma & Ba, "Adam: A Method for Stochastic
// Optimization", ICLR 2015, Algorithm 1, with bias-corrected moment estimates:
//
//	g ← ∇L(w) + λ·w
//	m ← β₁·m + (1−β₁)·g,   v ← β₂·v + (1−β₂)·g²
//	m̂ = m / (1−β₁ᵗ),       v̂ = v / (1−β₂ᵗ)
//	w ← w − η · m̂ / (√v̂ + ε)
//
// WeightDecay λ ≥ 0 is the coupled L2 penalty of the original Adam (not AdamW).
// NewAdam gives the paper's defaults β₁ = 0.9, β₂ = 0.999, ε = 1e-8.
type Adam struct {
	Beta1, Beta2, Eps float64
	WeightDecay       float64
	m, v              [][]float64
	t                 int
}

// NewAdam returns Adam with the paper's default hyperparameters.
func NewAdam() *Adam { return &Adam{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8} }

// Step implements Optimizer.
func (o *Adam) Step(params, grads []*Tensor, lr float64) error {
	if err := checkStep("adam", params, grads, len(o.m)); err != nil {
		return err
	}
	if o.Beta1 < 0 || o.Beta1 >= 1 || o.Beta2 < 0 || o.Beta2 >= 1 || o.Eps <= 0 || o.WeightDecay < 0 {
		return fmt.Errorf("adam: β₁ %g, β₂ %g must lie in [0,1), ε %g be positive, weight decay %g non-negative",
			o.Beta1, o.Beta2, o.Eps, o.WeightDecay)
	}
	if o.m == nil {
		o.m = make([][]float64, len(params))
		o.v = make([][]float64, len(params))
		for i, p := range params {
			o.m[i] = make([]float64, p.Len())
			o.v[i] = make([]float64, p.Len())
		}
	}
	o.t++
	c1 := 1 - math.Pow(o.Beta1, float64(o.t))
	c2 := 1 - math.Pow(o.Beta2, float64(o.t))
	for i, p := range params {
		m, v := o.m[i], o.v[i]
		for k, gk := range grads[i].Data {
			gk += o.WeightDecay * p.Data[k]
			m[k] = o.Beta1*m[k] + (1-o.Beta1)*gk
			v[k] = o.Beta2*v[k] + (1-o.Beta2)*gk*gk
			p.Data[k] -= lr * (m[k] / c1) / (math.Sqrt(v[k]/c2) + o.Eps)
		}
	}
	return nil
}
