package defenses

import (
	"fmt"
	"math"

	"github.com/certify-dev/certify/attacks"
	"github.com/certify-dev/certify/nets"
)

// maxSqueezeBits bounds the bit depth of the squeezer: beyond it the squeeze is the
// identity at float precision of image data.
const maxSqueezeBits = 16

// SqueezeDetector is the feature-squeezing detector of Xu, Evans & Qi, "Feature
// Squeezing: Detecting Adversarial Examples in Deep Neural Networks", NDSS 2018,
// with their bit-depth squeezer (Section 3.1; median smoothing is not implemented):
//
//	q(x) = round(clip(x, 0, 1)·(2^b − 1)) / (2^b − 1),
//	s(x) = ‖softmax(f(x)) − softmax(f(q(x)))‖₁ − τ,   rejected ⇔ s(x) > 0,
//
// the L1 distance of the predictions on the input and on its squeezed copy (in
// [0, 2]) against a threshold τ calibrated on clean data (CalibrateSqueeze). Logits
// are f(x)'s K logits and the reject column max_j f_j(x) + s(x) (see withReject).
//
// q is piecewise constant, so LossGrad, the true derivative of what the detector
// computes, sees nothing of the squeezed branch (its gradient is zero there). The
// detector-aware target (Carlini & Wagner, AISec 2017) differentiates the squeezed
// branch straight through (BPDA, Athalye et al. ICML 2018: q's Jacobian replaced by
// the identity, f's taken at q(x)) and ascends EvasionLoss.
type SqueezeDetector struct {
	// Base is the classifier f; gradients need it to be nets.Differentiable.
	Base Model
	// Bits is the bit depth b of the squeezer, 1 to 16.
	Bits int
	// Threshold τ in [0, 2].
	Threshold float64
	classes   int
}

// NewSqueezeDetector wraps base with a b-bit squeezer and the threshold τ ∈ [0, 2].
func NewSqueezeDetector(base Model, bits int, threshold float64) (*SqueezeDetector, error) {
	if bits < 1 || bits > maxSqueezeBits {
		return nil, fmt.Errorf("squeeze detector: bits %d: want 1 to %d", bits, maxSqueezeBits)
	}
	if err := checkThreshold(threshold, 0, 2); err != nil {
		return nil, fmt.Errorf("squeeze detector: %w (an L1 distance of two probability vectors)", err)
	}
	k, err := classesOf(base)
	if err != nil {
		return nil, fmt.Errorf("squeeze detector: base: %w", err)
	}
	return &SqueezeDetector{Base: base, Bits: bits, Threshold: threshold, classes: k}, nil
}

func buildSqueezeDetector(l *Loader, s Spec) (Model, error) {
	p := struct {
		Bits      *int     `json:"bits"`
		Threshold *float64 `json:"threshold"`
	}{}
	if err := l.Params(s, &p); err != nil {
		return nil, err
	}
	if p.Bits == nil {
		return nil, fmt.Errorf(`params: no "bits" (the squeezer's bit depth, 1 to %d)`, maxSqueezeBits)
	}
	if p.Threshold == nil {
		return nil, fmt.Errorf(`params: no "threshold" (the L1 distance of predictions above which an input is rejected, in [0,2])`)
	}
	if *p.Bits < 1 || *p.Bits > maxSqueezeBits {
		return nil, fmt.Errorf("params: bits %d: want 1 to %d", *p.Bits, maxSqueezeBits)
	}
	base, err := l.Model(s.Model)
	if err != nil {
		return nil, err
	}
	return NewSqueezeDetector(base, *p.Bits, *p.Threshold)
}

// squeezeBits returns q(x) for b bits (a new tensor).
func squeezeBits(x *nets.Tensor, bits int) *nets.Tensor {
	levels := math.Exp2(float64(bits)) - 1
	out := x.Clone()
	for i, v := range out.Data {
		out.Data[i] = math.Round(min(max(v, 0), 1)*levels) / levels
	}
	return out
}

// InputShape is the base's.
func (d *SqueezeDetector) InputShape() ([]int, error) { return d.Base.InputShape() }

// Reject is the index of the reject column, K.
func (d *SqueezeDetector) Reject() int { return d.classes }

// forward returns f(x), f(q(x)) and the shifted scores s.
func (d *SqueezeDetector) forward(x *nets.Tensor) (z1, z2 *nets.Tensor, s []float64, err error) {
	if z1, err = d.Base.Logits(x); err != nil {
		return nil, nil, nil, err
	}
	if z2, err = d.Base.Logits(squeezeBits(x, d.Bits)); err != nil {
		return nil, nil, nil, fmt.Errorf("squeezed input: %w", err)
	}
	if !nets.SameShape(z1.Shape, z2.Shape) || z1.Rank() != 2 {
		return nil, nil, nil, fmt.Errorf("squeeze detector: logits of shapes %v and %v", z1.Shape, z2.Shape)
	}
	s = squeezeDistance(z1, z2)
	for i := range s {
		s[i] -= d.Threshold
	}
	return z1, z2, s, nil
}

// squeezeDistance returns ‖softmax(z1_i) − softmax(z2_i)‖₁ per row.
func squeezeDistance(z1, z2 *nets.Tensor) []float64 {
	n, k := z1.Shape[0], z1.Shape[1]
	p1, p2 := make([]float64, k), make([]float64, k)
	out := make([]float64, n)
	for i := 0; i < n; i++ {
		softmaxRow(z1.Data[i*k:(i+1)*k], p1)
		softmaxRow(z2.Data[i*k:(i+1)*k], p2)
		for j := range p1 {
			out[i] += math.Abs(p1[j] - p2[j])
		}
	}
	return out
}

// Logits returns f(x)'s logits and the reject column.
func (d *SqueezeDetector) Logits(x *nets.Tensor) (*nets.Tensor, error) {
	z1, _, s, err := d.forward(x)
	if err != nil {
		return nil, err
	}
	return withReject(z1, s)
}

// LossGrad is the naive gradient: the true derivative of loss over the K+1 logits,
// zero through the squeezer.
func (d *SqueezeDetector) LossGrad(x *nets.Tensor, labels []int, loss nets.Loss) ([]float64, *nets.Tensor, error) {
	return d.lossGrad(x, labels, loss, false)
}

// lossGrad differentiates loss(withReject(z1, s)) with z1 = f(x), z2 = f(q(x)),
// s = ‖p1 − p2‖₁ − τ, p = softmax(z), σ = sign(p1 − p2):
//
//	∂s/∂z1_k = p1_k (σ_k − Σ_j σ_j p1_j),   ∂s/∂z2_k = −p2_k (σ_k − Σ_j σ_j p2_j),
//
// through f at x, and, when bpda, through f at q(x) with q's Jacobian taken as the
// identity.
func (d *SqueezeDetector) lossGrad(x *nets.Tensor, labels []int, loss nets.Loss, bpda bool) ([]float64, *nets.Tensor, error) {
	f, ok := d.Base.(nets.Differentiable)
	if !ok {
		return nil, nil, fmt.Errorf("squeeze detector: base %T has no gradients", d.Base)
	}
	if loss == nil {
		loss = nets.CrossEntropy{}
	}
	z1, z2, s, err := d.forward(x)
	if err != nil {
		return nil, nil, err
	}
	zr, err := withReject(z1, s)
	if err != nil {
		return nil, nil, err
	}
	vals, g, err := loss.Eval(zr, labels)
	if err != nil {
		return nil, nil, err
	}
	dz1, ds := rejectBackward(z1, g)
	n, k := z1.Shape[0], z1.Shape[1]
	dz2 := nets.NewTensor(n, k)
	p1, p2, sg := make([]float64, k), make([]float64, k), make([]float64, k)
	for i := 0; i < n; i++ {
		softmaxRow(z1.Data[i*k:(i+1)*k], p1)
		softmaxRow(z2.Data[i*k:(i+1)*k], p2)
		m1, m2 := 0.0, 0.0
		for j := range sg {
			sg[j] = sign(p1[j] - p2[j])
			m1 += sg[j] * p1[j]
			m2 += sg[j] * p2[j]
		}
		for j := range sg {
			dz1.Data[i*k+j] += ds[i] * p1[j] * (sg[j] - m1)
			dz2.Data[i*k+j] = -ds[i] * p2[j] * (sg[j] - m2)
		}
	}
	grad, err := vjp(f, x, dz1)
	if err != nil {
		return nil, nil, err
	}
	if bpda {
		g2, err := vjp(f, squeezeBits(x, d.Bits), dz2)
		if err != nil {
			return nil, nil, fmt.Errorf("squeezed input: %w", err)
		}
		for i, v := range g2.Data {
			grad.Data[i] += v
		}
	}
	return vals, grad, nil
}

func sign(v float64) float64 {
	switch {
	case v > 0:
		return 1
	case v < 0:
		return -1
	}
	return 0
}

// AdaptiveTarget is the two-stage detector-aware attack of squeeze_refine.go: BPDA
// on the squeezed branch f∘q (cross-entropy), then Refine makes f(x) agree with
// f(q(x)) with q(x) frozen.
func (d *SqueezeDetector) AdaptiveTarget() (AdaptiveTarget, error) {
	f, ok := d.Base.(nets.Differentiable)
	if !ok {
		return AdaptiveTarget{}, fmt.Errorf("squeeze detector: base %T has no gradients", d.Base)
	}
	squeeze := func(x *nets.Tensor) (*nets.Tensor, error) { return squeezeBits(x, d.Bits), nil }
	return AdaptiveTarget{Name: "detector-aware", Model: attacks.BPDA{Pre: squeeze, Net: f}, Refine: d.squeezeRefine}, nil
}

// StraightThrough is the detector (its K+1 logits) with the squeezer's gradient
// passed straight through (BPDA): the one-loss detector-aware model, for attacks
// on the detector's own output. Ascending EvasionLoss on it is weak (see
// squeeze_refine.go), hence the two-stage AdaptiveTarget.
func (d *SqueezeDetector) StraightThrough() nets.Differentiable { return squeezeBPDA{d} }

// squeezeBPDA is a SqueezeDetector whose gradient passes the squeezer straight
// through.
type squeezeBPDA struct{ d *SqueezeDetector }

func (b squeezeBPDA) Logits(x *nets.Tensor) (*nets.Tensor, error) { return b.d.Logits(x) }

func (b squeezeBPDA) LossGrad(x *nets.Tensor, labels []int, loss nets.Loss) ([]float64, *nets.Tensor, error) {
	return b.d.lossGrad(x, labels, loss, true)
}

// CalibrateSqueeze returns the threshold τ at which the b-bit squeeze detector on
// base rejects a fraction fpr of the clean rows x: exactly ⌈fpr·n⌉ of them have an
// L1 distance above τ (fewer only when distances tie at the cut; see calibrate).
func CalibrateSqueeze(base nets.Differentiable, bits int, x *nets.Tensor, fpr float64) (float64, error) {
	if bits < 1 || bits > maxSqueezeBits {
		return 0, fmt.Errorf("calibrate squeeze: bits %d: want 1 to %d", bits, maxSqueezeBits)
	}
	z1, err := base.Logits(x)
	if err != nil {
		return 0, fmt.Errorf("calibrate squeeze: %w", err)
	}
	z2, err := base.Logits(squeezeBits(x, bits))
	if err != nil {
		return 0, fmt.Errorf("calibrate squeeze: squeezed input: %w", err)
	}
	if !nets.SameShape(z1.Shape, z2.Shape) || z1.Rank() != 2 {
		return 0, fmt.Errorf("calibrate squeeze: logits of shapes %v and %v", z1.Shape, z2.Shape)
	}
	t, err := calibrate(squeezeDistance(z1, z2), fpr)
	if err != nil {
		return 0, fmt.Errorf("calibrate squeeze: %w", err)
	}
	return t, nil
}
