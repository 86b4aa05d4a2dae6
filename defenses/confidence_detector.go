package defenses

import (
	"fmt"

	"github.com/certify-dev/certify/nets"
)

// ConfidenceDetector is the baseline detector of Hendrycks & Gimpel, "A Baseline for
// Detecting Misclassified and Out-of-Distribution Examples in Neural Networks",
// ICLR 2017: reject an input when the classifier's maximum softmax probability is
// below a threshold τ,
//
//	s(x) = τ − max_j softmax(f(x))_j,   rejected ⇔ s(x) > 0,
//
// with τ calibrated on clean data (CalibrateConfidence). (The kernel-density
// statistic of Feinman et al. 2017 is not implemented.) Logits are f's K logits and
// the reject column max_j f_j(x) + s(x) (see withReject). The detector is smooth
// almost everywhere, so LossGrad is the exact gradient of a loss of those K+1 logits
// and the detector-aware target is the detector itself with EvasionLoss (Carlini &
// Wagner, AISec 2017).
type ConfidenceDetector struct {
	// Base is the classifier f; LossGrad needs it to be nets.Differentiable.
	Base Model
	// Threshold τ in [0, 1].
	Threshold float64
	classes   int
}

// NewConfidenceDetector wraps base with the threshold τ ∈ [0, 1].
func NewConfidenceDetector(base Model, threshold float64) (*ConfidenceDetector, error) {
	if err := checkThreshold(threshold, 0, 1); err != nil {
		return nil, fmt.Errorf("confidence detector: %w", err)
	}
	k, err := classesOf(base)
	if err != nil {
		return nil, fmt.Errorf("confidence detector: base: %w", err)
	}
	return &ConfidenceDetector{Base: base, Threshold: threshold, classes: k}, nil
}

func buildConfidenceDetector(l *Loader, s Spec) (Model, error) {
	p := struct {
		Threshold *float64 `json:"threshold"`
	}{}
	if err := l.Params(s, &p); err != nil {
		return nil, err
	}
	if p.Threshold == nil {
		return nil, fmt.Errorf(`params: no "threshold" (the max softmax probability below which an input is rejected, in [0,1])`)
	}
	base, err := l.Model(s.Model)
	if err != nil {
		return nil, err
	}
	return NewConfidenceDetector(base, *p.Threshold)
}

// InputShape is the base's.
func (d *ConfidenceDetector) InputShape() ([]int, error) { return d.Base.InputShape() }

// Reject is the index of the reject column, K.
func (d *ConfidenceDetector) Reject() int { return d.classes }

// scores returns s = τ − max softmax per row of z.
func (d *ConfidenceDetector) scores(z *nets.Tensor) []float64 {
	s := maxProb(z)
	for i := range s {
		s[i] = d.Threshold - s[i]
	}
	return s
}

// scoreGrad adds ds_i·∂s_i/∂z_i into dz: with p = softmax(z) and j* = argmax,
// ∂s/∂z_k = −p_{j*}(δ_{j*k} − p_k).
func (d *ConfidenceDetector) scoreGrad(z *nets.Tensor, ds []float64, dz *nets.Tensor) {
	n, k := z.Shape[0], z.Shape[1]
	p := make([]float64, k)
	for i := 0; i < n; i++ {
		row := z.Data[i*k : (i+1)*k]
		softmaxRow(row, p)
		top := argmax(row)
		for c := 0; c < k; c++ {
			dz.Data[i*k+c] += ds[i] * p[top] * p[c]
		}
		dz.Data[i*k+top] -= ds[i] * p[top]
	}
}

// maxProb returns max_j softmax(z)_j per row.
func maxProb(z *nets.Tensor) []float64 {
	n, k := z.Shape[0], z.Shape[1]
	out := make([]float64, n)
	p := make([]float64, k)
	for i := 0; i < n; i++ {
		row := z.Data[i*k : (i+1)*k]
		softmaxRow(row, p)
		out[i] = p[argmax(row)]
	}
	return out
}

// Logits returns f's logits and the reject column.
func (d *ConfidenceDetector) Logits(x *nets.Tensor) (*nets.Tensor, error) {
	z, err := d.Base.Logits(x)
	if err != nil {
		return nil, err
	}
	return withReject(z, d.scores(z))
}

// LossGrad is the exact gradient of loss over the K+1 logits, through the base's
// own LossGrad (the detector is a function of the logits).
func (d *ConfidenceDetector) LossGrad(x *nets.Tensor, labels []int, loss nets.Loss) ([]float64, *nets.Tensor, error) {
	f, ok := d.Base.(nets.Differentiable)
	if !ok {
		return nil, nil, fmt.Errorf("confidence detector: base %T has no gradients", d.Base)
	}
	return f.LossGrad(x, labels, rejectLoss{inner: loss, score: d.scores, scoreGrad: d.scoreGrad})
}

// AdaptiveTarget is the detector itself (its gradients are exact) with EvasionLoss.
func (d *ConfidenceDetector) AdaptiveTarget() (AdaptiveTarget, error) {
	if _, ok := d.Base.(nets.Differentiable); !ok {
		return AdaptiveTarget{}, fmt.Errorf("confidence detector: base %T has no gradients", d.Base)
	}
	return AdaptiveTarget{Name: "detector-aware", Model: d, Loss: EvasionLoss{Reject: d.classes}}, nil
}

// CalibrateConfidence returns the threshold τ at which the confidence detector
// rejects a fraction fpr of the clean rows x: exactly ⌈fpr·n⌉ of them have a
// maximum softmax probability below τ (fewer only when probabilities tie at the
// cut; see calibrate).
func CalibrateConfidence(base nets.Classifier, x *nets.Tensor, fpr float64) (float64, error) {
	z, err := base.Logits(x)
	if err != nil {
		return 0, fmt.Errorf("calibrate confidence: %w", err)
	}
	p := maxProb(z)
	for i := range p {
		p[i] = -p[i] // larger = more suspicious
	}
	t, err := calibrate(p, fpr)
	if err != nil {
		return 0, fmt.Errorf("calibrate confidence: %w", err)
	}
	return -t, nil
}
