package defenses

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/certify-dev/certify/attacks"
	"github.com/certify-dev/certify/nets"
)

// Shattered is a gradient-masking exhibit of the "shattered gradients" kind
// (Athalye, Carlini & Wagner, "Obfuscated Gradients Give a False Sense of
// Security", ICML 2018, Sec. 3.1): a network f behind an input quantiser with k
// levels, in the manner of thermometer encoding and input discretisation (Buckman,
// Roy, Raffel & Goodfellow, ICLR 2018),
//
//	Logits(x) = f(q(x)),   q(v) = round((k−1)·clip(v, 0, 1)) / (k−1)   per pixel,
//
// round to nearest, halves away from zero; inputs are taken to live in [0, 1].
// q is piecewise constant, so the true derivative of f∘q is 0 wherever it exists,
// and that is the naive gradient LossGrad returns: a white-box attack following it
// never moves. The adaptive attack is BPDA with the straight-through estimator
// (their Sec. 4.1.1): the forward pass f(q(x)), the backward pass ∇f at q(x), as if q
// were the identity.
type Shattered struct {
	// Net is the differentiable network f.
	Net nets.Differentiable
	// Levels k ≥ 2 is the number of quantisation levels.
	Levels int
	// Shape is the per-sample input shape.
	Shape []int
}

// InputShape implements Model.
func (s Shattered) InputShape() ([]int, error) { return slices.Clone(s.Shape), nil }

func (s Shattered) check(x *nets.Tensor) error {
	if s.Net == nil {
		return errors.New("shattered: no network")
	}
	if s.Levels < 2 {
		return fmt.Errorf("shattered: %d levels: want at least 2", s.Levels)
	}
	if x == nil || x.Rank() < 2 || x.Shape[0] == 0 {
		return fmt.Errorf("shattered: input of shape %v: want a non-empty batch", shapeOf(x))
	}
	return nil
}

// QuantiseInPlace replaces every value v of x by q(v).
func (s Shattered) QuantiseInPlace(x *nets.Tensor) {
	k := float64(s.Levels - 1)
	for i, v := range x.Data {
		x.Data[i] = math.Round(k*min(max(v, 0), 1)) / k
	}
}

// Logits implements nets.Classifier: f(q(x)).
func (s Shattered) Logits(x *nets.Tensor) (*nets.Tensor, error) {
	if err := s.check(x); err != nil {
		return nil, err
	}
	qx := x.Clone()
	s.QuantiseInPlace(qx)
	return s.Net.Logits(qx)
}

// LossGrad implements nets.Differentiable with the true derivative: the loss of
// f(q(x)) and a zero gradient (q is flat almost everywhere).
func (s Shattered) LossGrad(x *nets.Tensor, labels []int, loss nets.Loss) ([]float64, *nets.Tensor, error) {
	z, err := s.Logits(x)
	if err != nil {
		return nil, nil, err
	}
	vals, _, err := crossEntropyIfNil(loss).Eval(z, labels)
	if err != nil {
		return nil, nil, fmt.Errorf("shattered: %w", err)
	}
	return vals, nets.NewTensor(x.Shape...), nil
}

// AdaptiveTarget implements Adaptive: "bpda", attacks.BPDA with q as the
// preprocessing and the identity as its backward pass.
func (s Shattered) AdaptiveTarget() (AdaptiveTarget, error) {
	if s.Net == nil || s.Levels < 2 {
		return AdaptiveTarget{}, fmt.Errorf("shattered: network %v, %d levels: not usable", s.Net != nil, s.Levels)
	}
	pre := func(x *nets.Tensor) (*nets.Tensor, error) {
		s.QuantiseInPlace(x) // BPDA hands Pre a copy
		return x, nil
	}
	return AdaptiveTarget{Name: "bpda", Model: attacks.BPDA{Pre: pre, Net: s.Net}}, nil
}

// shatteredParams are the params of a "shattered" spec.
type shatteredParams struct {
	Levels *int `json:"levels"`
}

// buildShattered builds a "shattered" spec:
//
//	{"kind": "shattered", "model": "net.onnx", "params": {"levels": 4}}
//
// levels (required) is an integer ≥ 2.
func buildShattered(l *Loader, s Spec) (Model, error) {
	var p shatteredParams
	if err := l.Params(s, &p); err != nil {
		return nil, err
	}
	if p.Levels == nil {
		return nil, errors.New(`params: give "levels", the number of quantisation levels (>= 2)`)
	}
	if *p.Levels < 2 {
		return nil, fmt.Errorf("params: levels %d: want at least 2", *p.Levels)
	}
	net, shape, err := loadSingleNet(l, s)
	if err != nil {
		return nil, err
	}
	return Shattered{Net: net, Levels: *p.Levels, Shape: shape}, nil
}

// loadSingleNet loads the one differentiable network ("model") a single-network wrapper
// is built around, with its input shape.
func loadSingleNet(l *Loader, s Spec) (nets.Differentiable, []int, error) {
	if len(s.Models) > 0 {
		return nil, nil, errors.New(`this wrapper takes one network in "model", not "models"`)
	}
	d, m, err := l.Differentiable(s.Model)
	if err != nil {
		return nil, nil, err
	}
	shape, err := m.InputShape()
	if err != nil {
		return nil, nil, fmt.Errorf("model %s: %w", s.Model, err)
	}
	return d, shape, nil
}
