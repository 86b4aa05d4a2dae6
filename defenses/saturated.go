package defenses

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/certify-dev/certify/nets"
)

// Saturated is a gradient-masking exhibit of the "vanishing gradients" kind
// (Athalye, Carlini & Wagner, ICML 2018, Sec. 3.2): a network f whose logits are
// multiplied by a temperature T,
//
//	Logits(x) = T·f(x),
//
// which leaves every prediction unchanged (argmax is scale-invariant for T > 0). For
// T ≫ 1 the softmax saturates: the cross-entropy gradient with respect to the
// logits, T·(softmax(T·f) − e_y), is exactly 0 in float64 once every other class
// trails by more than about 745/T (exp underflows to 0 and 1 − 0 rounds to 0) — with
// T = 1000, any row with margin f_y − max_{j≠y} f_j ≳ 0.75. The naive gradient is
// the true one, ∇_x L(T·f(x)) = T·J_f(x)ᵀ ∇L(T·f(x)), so it is exactly 0 on
// confidently classified rows and an attack following cross-entropy never moves
// them. This is what defensive distillation at high temperature does (Papernot et
// al., S&P 2016), and what Carlini & Wagner ("Towards Evaluating the Robustness of
// Neural Networks", S&P 2017, Sec. VIII) undid: the adaptive target is f itself, the
// logits rescaled by 1/T ("logit-rescale"), which predicts the same and whose
// gradients are informative. (A T < 1 flattens the softmax instead; its gradients
// shrink by T but do not underflow, so it is not an exhibit of masking: we build
// the vanishing variant.)
type Saturated struct {
	// Net is the differentiable network f.
	Net nets.Differentiable
	// Temperature T > 0, finite, multiplies the logits.
	Temperature float64
	// Shape is the per-sample input shape.
	Shape []int
}

// InputShape implements Model.
func (s Saturated) InputShape() ([]int, error) { return slices.Clone(s.Shape), nil }

func (s Saturated) check() error {
	if s.Net == nil {
		return errors.New("saturated: no network")
	}
	if err := checkTemperature(s.Temperature); err != nil {
		return fmt.Errorf("saturated: %w", err)
	}
	return nil
}

func checkTemperature(t float64) error {
	if math.IsNaN(t) || math.IsInf(t, 0) || t <= 0 {
		return fmt.Errorf("temperature %g: want a finite number > 0", t)
	}
	return nil
}

// Logits implements nets.Classifier: T·f(x).
func (s Saturated) Logits(x *nets.Tensor) (*nets.Tensor, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	z, err := s.Net.Logits(x)
	if err != nil {
		return nil, err
	}
	out := z.Clone()
	for i := range out.Data {
		out.Data[i] *= s.Temperature
	}
	return out, nil
}

// LossGrad implements nets.Differentiable with the true gradient of L(T·f(x)).
func (s Saturated) LossGrad(x *nets.Tensor, labels []int, loss nets.Loss) ([]float64, *nets.Tensor, error) {
	if err := s.check(); err != nil {
		return nil, nil, err
	}
	return s.Net.LossGrad(x, labels, scaledLoss{inner: crossEntropyIfNil(loss), t: s.Temperature})
}

// AdaptiveTarget implements Adaptive: "logit-rescale", the network f without the
// temperature (cross-entropy on f(x) = Logits(x)/T).
func (s Saturated) AdaptiveTarget() (AdaptiveTarget, error) {
	if err := s.check(); err != nil {
		return AdaptiveTarget{}, err
	}
	return AdaptiveTarget{Name: "logit-rescale", Model: s.Net}, nil
}

// scaledLoss is inner evaluated on t·z: its gradient with respect to z is
// t·∇inner(t·z) (the chain rule).
type scaledLoss struct {
	inner nets.Loss
	t     float64
}

func (l scaledLoss) Eval(z *nets.Tensor, labels []int) ([]float64, *nets.Tensor, error) {
	tz := z.Clone()
	for i := range tz.Data {
		tz.Data[i] *= l.t
	}
	vals, g, err := l.inner.Eval(tz, labels)
	if err != nil {
		return nil, nil, err
	}
	g = g.Clone()
	for i := range g.Data {
		g.Data[i] *= l.t
	}
	return vals, g, nil
}

// saturatedParams are the params of a "saturated" spec.
type saturatedParams struct {
	Temperature float64 `json:"temperature"`
}

// buildSaturated builds a "saturated" spec:
//
//	{"kind": "saturated", "model": "net.onnx", "params": {"temperature": 1000}}
//
// temperature is finite and > 0; 1000 when absent.
func buildSaturated(l *Loader, s Spec) (Model, error) {
	p := saturatedParams{Temperature: 1000}
	if err := l.Params(s, &p); err != nil {
		return nil, err
	}
	if err := checkTemperature(p.Temperature); err != nil {
		return nil, fmt.Errorf("params: %w", err)
	}
	net, shape, err := loadSingleNet(l, s)
	if err != nil {
		return nil, err
	}
	return Saturated{Net: net, Temperature: p.Temperature, Shape: shape}, nil
}
