package attacks

import (
	"fmt"

	"github.com/certify-dev/certify/nets"
)

// BPDA is Backward Pass Differentiable Approximation (Athalye, Carlini & Wagner,
// "Obfuscated Gradients Give a False Sense of Security", ICML 2018, Section 4.1): a
// model f∘g made of a preprocessing g that is not differentiable, or whose gradient
// is useless (quantisation, JPEG compression, thermometer encoding: zero or undefined
// almost everywhere), followed by a differentiable network f. The forward pass is
// exact,
//
//	Logits(x) = f(g(x)),
//
// and the backward pass replaces g by a differentiable h with h(x) ≈ g(x):
//
//	∇_x L(f(g(x))) ≈ J_h(x)ᵀ · ∇L(f)(g(x)),
//
// the gradient of f taken at the true g(x). With Backward nil, h is the identity
// (the straight-through estimator of their Section 4.1.1): the gradient is ∇f at
// g(x), which needs g to keep the shape of its input. BPDA is a nets.Differentiable,
// so every white-box attack runs on it unchanged.
type BPDA struct {
	// Pre is the preprocessing g, applied to a batch. It is given a copy of the
	// attack's batch, so it may work in place.
	Pre func(x *nets.Tensor) (*nets.Tensor, error)
	// Net is the differentiable network f.
	Net nets.Differentiable
	// Backward, when set, is the vector-Jacobian product of the approximation h at
	// x: it maps d loss/d g(x) (a batch shaped like g(x)) to d loss/dx (shaped like
	// x). Nil means the identity.
	Backward func(x, grad *nets.Tensor) (*nets.Tensor, error)
}

func (b BPDA) pre(x *nets.Tensor) (*nets.Tensor, error) {
	if b.Pre == nil || b.Net == nil {
		return nil, fmt.Errorf("bpda: preprocessing and network must both be set")
	}
	gx, err := b.Pre(x.Clone())
	if err != nil {
		return nil, fmt.Errorf("bpda: preprocessing: %w", err)
	}
	if gx == nil || gx.Rank() == 0 || gx.Shape[0] != x.Shape[0] {
		return nil, fmt.Errorf("bpda: preprocessing returned shape %v for a batch of shape %v", minNormShape(gx), x.Shape)
	}
	return gx, nil
}

// Logits implements nets.Classifier: f(g(x)).
func (b BPDA) Logits(x *nets.Tensor) (*nets.Tensor, error) {
	gx, err := b.pre(x)
	if err != nil {
		return nil, err
	}
	return b.Net.Logits(gx)
}

// LossGrad implements nets.Differentiable: the loss of f(g(x)) and the BPDA gradient
// J_h(x)ᵀ·∇(L∘f)(g(x)), with J_h the identity when Backward is nil.
func (b BPDA) LossGrad(x *nets.Tensor, labels []int, loss nets.Loss) ([]float64, *nets.Tensor, error) {
	gx, err := b.pre(x)
	if err != nil {
		return nil, nil, err
	}
	vals, g, err := b.Net.LossGrad(gx, labels, loss)
	if err != nil {
		return nil, nil, err
	}
	if b.Backward != nil {
		if g, err = b.Backward(x, g); err != nil {
			return nil, nil, fmt.Errorf("bpda: backward approximation: %w", err)
		}
	}
	if g == nil || !nets.SameShape(g.Shape, x.Shape) {
		return nil, nil, fmt.Errorf("bpda: gradient of shape %v for input of shape %v (an identity backward pass needs a shape-preserving preprocessing)", minNormShape(g), x.Shape)
	}
	return vals, g, nil
}
