package defenses

import (
	"errors"
	"fmt"

	"github.com/certify-dev/certify/attacks"
	"github.com/certify-dev/certify/nets"
)

// Transform is an input transformation t applied to one image at a time, the first
// half of a preprocessing defense f∘t (Guo et al., "Countering Adversarial Images
// using Input Transformations", ICLR 2018; Xu, Evans & Qi, "Feature Squeezing",
// NDSS 2018). Images are channel-major (C, H, W), as one row of a [batch, C, H, W]
// tensor, with values in [0, 1].
type Transform interface {
	// Name is the transformation's spec kind: "blur", "jpeg", "bit-depth".
	Name() string
	// Apply writes t(src) to dst for one image of c channels, h rows and w
	// columns; dst and src hold c·h·w values each and do not overlap.
	Apply(dst, src []float64, c, h, w int) error
}

// DifferentiableTransform is a Transform with a derivative that an attack may
// follow: VJP writes the vector-Jacobian product J_t(x)ᵀ·g to dst for one image x
// and a gradient g with respect to t(x). A Transformed wrapper around it has the
// exact gradient of f∘t, so there is nothing for an adaptive attack to repair.
type DifferentiableTransform interface {
	Transform
	VJP(dst, x, g []float64, c, h, w int) error
}

// Transformed is the wrapper x ↦ f(t(x)): the transformation t applied to every row
// of a batch, then the differentiable network f.
//
// Its LossGrad is the naive gradient, the true derivative of what Logits computes
// (as a naive white-box attacker would take it):
//
//	∇_x L(f(t(x))) = J_t(x)ᵀ · ∇L(f)(t(x))
//
// when t is a DifferentiableTransform, and 0 otherwise: the transformations that are
// not (bit-depth reduction, JPEG) are piecewise constant in x, since they quantise
// their input, so their derivative is 0 almost everywhere and undefined on the
// jumps. That zero gradient is the gradient masking of Athalye, Carlini & Wagner
// ("Obfuscated Gradients Give a False Sense of Security", ICML 2018, Section 4.1):
// a gradient attack on it never moves. AdaptiveTarget repairs it with BPDA.
//
// Inputs must be [batch, C, H, W] with C = 1 or 3 (grey or RGB images), matching
// the base network's input shape.
type Transformed struct {
	// T is the transformation t.
	T Transform
	// Net is the network f.
	Net nets.Differentiable

	shape []int // per-sample input shape of Net: [C, H, W], -1 for a dynamic size
}

// NewTransformed wraps the network base (which must be differentiable) behind t.
// base's input shape must be an image [C, H, W] with C = 1 or 3.
func NewTransformed(t Transform, base Model) (*Transformed, error) {
	if t == nil || base == nil {
		return nil, errors.New("transformed model: transformation and network must both be set")
	}
	net, ok := base.(nets.Differentiable)
	if !ok {
		return nil, fmt.Errorf("%s: the network has no gradients (a %T); this wrapper needs a differentiable one", t.Name(), base)
	}
	shape, err := base.InputShape()
	if err != nil {
		return nil, fmt.Errorf("%s: input shape of the network: %w", t.Name(), err)
	}
	if len(shape) != 3 || (shape[0] != 1 && shape[0] != 3) {
		return nil, fmt.Errorf("%s: the network takes inputs of shape %v; this wrapper works on images [C, H, W] with C = 1 or 3", t.Name(), shape)
	}
	return &Transformed{T: t, Net: net, shape: append([]int(nil), shape...)}, nil
}

// InputShape implements Model: the base network's input shape.
func (m *Transformed) InputShape() ([]int, error) {
	if m.shape == nil {
		return nil, errors.New("transformed model: not built by NewTransformed")
	}
	return append([]int(nil), m.shape...), nil
}

// checkBatch returns the image dimensions of a batch x, or an error naming the
// problem.
func (m *Transformed) checkBatch(x *nets.Tensor) (c, h, w int, err error) {
	if x == nil || x.Rank() != 4 {
		return 0, 0, 0, fmt.Errorf("%s: input of shape %v; want a batch of images [batch, C, H, W]", m.T.Name(), shapeOf(x))
	}
	c, h, w = x.Shape[1], x.Shape[2], x.Shape[3]
	if c != 1 && c != 3 {
		return 0, 0, 0, fmt.Errorf("%s: input of shape %v has %d channels; want 1 (grey) or 3 (RGB)", m.T.Name(), x.Shape, c)
	}
	for i, d := range m.shape {
		if d >= 0 && x.Shape[i+1] != d {
			return 0, 0, 0, fmt.Errorf("%s: input of shape %v; the network takes [batch %v]", m.T.Name(), x.Shape, m.shape)
		}
	}
	return c, h, w, nil
}

// minTransformRows is the fewest rows a core is given: enough values that the
// goroutine is worth starting.
func minTransformRows(per int) int { return max(1, 1<<14/max(1, per)) }

// Apply returns t(x), t applied to every row of the batch x, rows in parallel.
// Its signature is that of attacks.BPDA's Pre.
func (m *Transformed) Apply(x *nets.Tensor) (*nets.Tensor, error) {
	c, h, w, err := m.checkBatch(x)
	if err != nil {
		return nil, err
	}
	out := nets.NewTensor(x.Shape...)
	per := c * h * w
	err = nets.ParallelRows(x.Shape[0], minTransformRows(per), func(_, lo, hi int) error {
		for i := lo; i < hi; i++ {
			if err := m.T.Apply(out.Data[i*per:(i+1)*per], x.Data[i*per:(i+1)*per], c, h, w); err != nil {
				return fmt.Errorf("%s: row %d: %w", m.T.Name(), i, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Logits implements nets.Classifier: f(t(x)).
func (m *Transformed) Logits(x *nets.Tensor) (*nets.Tensor, error) {
	tx, err := m.Apply(x)
	if err != nil {
		return nil, err
	}
	return m.Net.Logits(tx)
}

// LossGrad implements nets.Differentiable: the loss of f(t(x)) and its naive
// gradient, J_t(x)ᵀ·∇(L∘f)(t(x)) for a DifferentiableTransform and 0 otherwise (see
// Transformed). A nil loss is cross-entropy.
func (m *Transformed) LossGrad(x *nets.Tensor, labels []int, loss nets.Loss) ([]float64, *nets.Tensor, error) {
	if loss == nil {
		loss = nets.CrossEntropy{}
	}
	tx, err := m.Apply(x)
	if err != nil {
		return nil, nil, err
	}
	dt, ok := m.T.(DifferentiableTransform)
	if !ok {
		z, err := m.Net.Logits(tx)
		if err != nil {
			return nil, nil, err
		}
		vals, _, err := loss.Eval(z, labels)
		if err != nil {
			return nil, nil, err
		}
		return vals, nets.NewTensor(x.Shape...), nil
	}
	vals, g, err := m.Net.LossGrad(tx, labels, loss)
	if err != nil {
		return nil, nil, err
	}
	if g == nil || !nets.SameShape(g.Shape, x.Shape) {
		return nil, nil, fmt.Errorf("%s: the network's gradient has shape %v for inputs %v", m.T.Name(), shapeOf(g), x.Shape)
	}
	c, h, w := x.Shape[1], x.Shape[2], x.Shape[3]
	per := c * h * w
	gx := nets.NewTensor(x.Shape...)
	err = nets.ParallelRows(x.Shape[0], minTransformRows(per), func(_, lo, hi int) error {
		for i := lo; i < hi; i++ {
			r := x.Data[i*per : (i+1)*per]
			if err := dt.VJP(gx.Data[i*per:(i+1)*per], r, g.Data[i*per:(i+1)*per], c, h, w); err != nil {
				return fmt.Errorf("%s: gradient of row %d: %w", m.T.Name(), i, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return vals, gx, nil
}

// AdaptiveTarget implements Adaptive. For a DifferentiableTransform (blur) the
// wrapper's own gradient is already exact, so the target is the wrapper itself,
// named "exact": an adaptive attack is the plain white-box attack. Otherwise it is
// BPDA with the identity as backward pass (the straight-through estimator, Athalye
// et al. 2018, Section 4.1.1): the forward pass f(t(x)) is exact and the gradient
// is ∇(L∘f) taken at t(x), which is sound since t(x) ≈ x.
func (m *Transformed) AdaptiveTarget() (AdaptiveTarget, error) {
	if _, ok := m.T.(DifferentiableTransform); ok {
		return AdaptiveTarget{Name: "exact", Model: m}, nil
	}
	return AdaptiveTarget{Name: "bpda", Model: attacks.BPDA{Pre: m.Apply, Net: m.Net}}, nil
}

// buildTransformed makes the wrapper of one spec around its single "model".
func buildTransformed(l *Loader, s Spec, t Transform) (Model, error) {
	if len(s.Models) > 0 {
		return nil, fmt.Errorf(`%s wraps one network: give "model", not "models"`, s.Kind)
	}
	_, base, err := l.Differentiable(s.Model)
	if err != nil {
		return nil, fmt.Errorf("base model: %w", err)
	}
	return NewTransformed(t, base)
}
