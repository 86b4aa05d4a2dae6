package nets

import (
	"fmt"
	"math"
)

// BatchNormalization is the inference form of the ONNX BatchNormalization operator
// (https://onnx.ai/onnx/operators/onnx__BatchNormalization.html; Ioffe & Szegedy,
// "Batch Normalization", ICML 2015, Algorithm 2): with per-channel inputs scale γ,
// bias β, running mean μ and running variance σ²,
//
//	Y[n,c,…] = γ[c] · (X[n,c,…] − μ[c]) / √(σ²[c] + ε) + β[c].
//
// X is (N,C,…) of any rank ≥ 2. The statistics are inputs, not fields, and receive
// gradients like the rest. Training mode (batch statistics, running-average outputs)
// is not supported: networks are trained here without it and imported already frozen.
type BatchNormalization struct {
	Epsilon  float64
	Momentum float64 // kept for export only: it matters only in training mode
}

func newBatchNormalization(spec NodeSpec) (Op, error) {
	a := spec.Attrs
	if t := a.Int("training_mode", 0); t != 0 {
		return nil, unsupported("training_mode %d: only inference BatchNormalization", t)
	}
	if s := a.Int("spatial", 1); s != 1 { // opset < 9: per-activation statistics
		return nil, unsupported("spatial %d: only per-channel statistics", s)
	}
	if spec.NumOutputs > 1 {
		return nil, unsupported("%d outputs: the running and saved statistics outputs exist only in training mode", spec.NumOutputs)
	}
	if spec.NumInputs != 0 && spec.NumInputs != 5 {
		return nil, fmt.Errorf("%d inputs: want X, scale, B, input_mean, input_var", spec.NumInputs)
	}
	eps := a.Float("epsilon", 1e-5)
	if !(eps >= 0) || math.IsInf(eps, 0) {
		return nil, fmt.Errorf("epsilon %v: must be finite and non-negative", eps)
	}
	return BatchNormalization{Epsilon: eps, Momentum: a.Float("momentum", 0.9)}, nil
}

func (BatchNormalization) OpType() string { return "BatchNormalization" }

func (b BatchNormalization) Attrs() Attrs {
	a := NewAttrs()
	a.SetFloat("epsilon", b.Epsilon)
	a.SetFloat("momentum", b.Momentum)
	return a
}

// Affine returns the per-channel map Y = a[c]·X + b[c] that the inputs define:
// a = γ/√(σ²+ε), b = β − μ·a. Bound propagation uses it directly.
func (b BatchNormalization) Affine(in []*Tensor) (scale, shift []float64, err error) {
	if len(in) != 5 {
		return nil, nil, fmt.Errorf("%d inputs: want X, scale, B, input_mean, input_var", len(in))
	}
	x := in[0]
	if x == nil || x.Rank() < 2 {
		return nil, nil, fmt.Errorf("input of shape %v: want (N,C,…)", shapeOf(x))
	}
	c := x.Shape[1]
	names := [...]string{"scale", "B", "input_mean", "input_var"}
	for i, t := range in[1:] {
		if t == nil || t.Rank() != 1 || t.Shape[0] != c {
			return nil, nil, fmt.Errorf("%s of shape %v: want (%d) for input %v", names[i], shapeOf(t), c, x.Shape)
		}
	}
	g, beta, mu, v := in[1].Data, in[2].Data, in[3].Data, in[4].Data
	scale, shift = make([]float64, c), make([]float64, c)
	for k := 0; k < c; k++ {
		if !(v[k]+b.Epsilon > 0) {
			return nil, nil, fmt.Errorf("channel %d: variance %v + epsilon %v is not positive", k, v[k], b.Epsilon)
		}
		scale[k] = g[k] / math.Sqrt(v[k]+b.Epsilon)
		shift[k] = beta[k] - mu[k]*scale[k]
	}
	return scale, shift, nil
}

func (b BatchNormalization) Forward(in []*Tensor) ([]*Tensor, error) {
	scale, shift, err := b.Affine(in)
	if err != nil {
		return nil, err
	}
	x := in[0]
	y := NewTensor(x.Shape...)
	c := len(scale)
	area := NumElements(x.Shape[2:])
	for pl := 0; pl < x.Shape[0]*c; pl++ {
		a, s := scale[pl%c], shift[pl%c]
		src := x.Data[pl*area : (pl+1)*area]
		dst := y.Data[pl*area : (pl+1)*area]
		for i, v := range src {
			dst[i] = a*v + s
		}
	}
	return []*Tensor{y}, nil
}

// Backward, with r = 1/√(σ²+ε) and x̂ = (x−μ)·r, summing over n and the spatial
// positions of channel c:
//
//	∂L/∂x = g·γr,  ∂L/∂γ = Σ g·x̂,  ∂L/∂β = Σ g,  ∂L/∂μ = −γr·Σ g,  ∂L/∂σ² = −½·γr²·Σ g·x̂.
func (b BatchNormalization) Backward(in, out, gradOut []*Tensor, need []bool) ([]*Tensor, error) {
	scale, _, err := b.Affine(in)
	if err != nil {
		return nil, err
	}
	x := in[0]
	var gy *Tensor
	if len(gradOut) > 0 {
		gy = gradOut[0]
	}
	if gy == nil || !SameShape(gy.Shape, x.Shape) {
		return nil, fmt.Errorf("output gradient of shape %v: want %v", shapeOf(gy), x.Shape)
	}
	wants := func(i int) bool { return i < len(need) && need[i] }
	grads := make([]*Tensor, 5)
	c := len(scale)
	area := NumElements(x.Shape[2:])
	if wants(0) {
		dx := NewTensor(x.Shape...)
		for pl := 0; pl < x.Shape[0]*c; pl++ {
			a := scale[pl%c]
			src := gy.Data[pl*area : (pl+1)*area]
			dst := dx.Data[pl*area : (pl+1)*area]
			for i, g := range src {
				dst[i] = a * g
			}
		}
		grads[0] = dx
	}
	if !wants(1) && !wants(2) && !wants(3) && !wants(4) {
		return grads, nil
	}
	// Per-channel sums Σg and Σg·(x−μ).
	sg, sgx := make([]float64, c), make([]float64, c)
	mu := in[3].Data
	for pl := 0; pl < x.Shape[0]*c; pl++ {
		k := pl % c
		xs := x.Data[pl*area : (pl+1)*area]
		s1, s2 := 0.0, 0.0
		for i, g := range gy.Data[pl*area : (pl+1)*area] {
			s1 += g
			s2 += g * (xs[i] - mu[k])
		}
		sg[k] += s1
		sgx[k] += s2
	}
	gamma, v := in[1].Data, in[4].Data
	for i := 1; i < 5; i++ {
		if wants(i) {
			grads[i] = NewTensor(c)
		}
	}
	for k := 0; k < c; k++ {
		r := 1 / math.Sqrt(v[k]+b.Epsilon)
		if wants(1) {
			grads[1].Data[k] = sgx[k] * r
		}
		if wants(2) {
			grads[2].Data[k] = sg[k]
		}
		if wants(3) {
			grads[3].Data[k] = -gamma[k] * r * sg[k]
		}
		if wants(4) {
			grads[4].Data[k] = -0.5 * gamma[k] * r * r * r * sgx[k]
		}
	}
	return grads, nil
}
