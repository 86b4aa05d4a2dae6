package defenses

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/certify-dev/certify/attacks"
	"github.com/certify-dev/certify/nets"
)

// Stochastic is a gradient-masking exhibit of the "stochastic gradients" kind
// (Athalye, Carlini & Wagner, ICML 2018, Sec. 3.3; randomised defences such as Xie
// et al., ICLR 2018, and Dhillon et al., ICLR 2018): a network f that sees a random
// transformation of its input at test time,
//
//	Logits(x) = f(t(x)),   t(x) = m ⊙ (x + σ·n),   n ~ N(0, I),  m_i ~ Bernoulli(1 − p),
//
// Gaussian noise of standard deviation σ and pixel dropout of rate p (a dropped
// pixel is set to 0, not rescaled). One draw per row, from InputRand(Seed, x): a
// call is reproducible and independent of the batch and cores, and every point an
// attacker visits meets a fresh draw. Per pixel, n_i is drawn first (when σ > 0),
// then the dropout coin (when p > 0), pixel after pixel.
//
// The naive gradient is the true derivative of the draw taken: m ⊙ ∇f(t(x)). The
// adaptive target is Expectation over Transformation (their Sec. 4.3):
// attacks.EOT around f with this same transformation, Samples draws per
// evaluation, seeded with Seed (so EOT's first draw of a row is the one the model
// answers with), whose gradient is the mean of the draws' gradients ∇f(t_s(x))
// (through t as the identity: exact for the noise, straight-through for the mask).
type Stochastic struct {
	// Net is the differentiable network f.
	Net nets.Differentiable
	// Sigma σ ≥ 0 is the standard deviation of the noise.
	Sigma float64
	// Dropout p in [0, 1) is the probability that a pixel is set to 0.
	Dropout float64
	// Seed seeds the draws.
	Seed uint64
	// Samples is the number of EOT draws of the adaptive target; 0 means 20.
	Samples int
	// Shape is the per-sample input shape.
	Shape []int
}

// InputShape implements Model.
func (s Stochastic) InputShape() ([]int, error) { return slices.Clone(s.Shape), nil }

func checkNoise(sigma, p float64) error {
	if math.IsNaN(sigma) || math.IsInf(sigma, 0) || sigma < 0 {
		return fmt.Errorf("sigma %g: want a finite number >= 0", sigma)
	}
	if math.IsNaN(p) || p < 0 || p >= 1 {
		return fmt.Errorf("dropout %g: want a probability in [0, 1)", p)
	}
	if sigma == 0 && p == 0 {
		return errors.New("sigma and dropout are both 0: no randomness (give sigma > 0 or dropout > 0)")
	}
	return nil
}

func (s Stochastic) check(x *nets.Tensor) error {
	if s.Net == nil {
		return errors.New("stochastic: no network")
	}
	if err := checkNoise(s.Sigma, s.Dropout); err != nil {
		return fmt.Errorf("stochastic: %w", err)
	}
	if s.Samples < 0 {
		return fmt.Errorf("stochastic: %d EOT samples", s.Samples)
	}
	if x != nil && (x.Rank() < 2 || x.Shape[0] == 0) {
		return fmt.Errorf("stochastic: input of shape %v: want a non-empty batch", x.Shape)
	}
	return nil
}

// draw writes one draw t(x) of row x into dst and, when mask is not nil, the
// dropout mask m into mask.
func (s Stochastic) draw(dst, mask, x []float64, rng *rand.Rand) {
	for i, v := range x {
		if s.Sigma > 0 {
			v += s.Sigma * rng.NormFloat64()
		}
		keep := 1.0
		if s.Dropout > 0 && rng.Float64() < s.Dropout {
			keep = 0
		}
		dst[i] = keep * v
		if mask != nil {
			mask[i] = keep
		}
	}
}

// Transform writes one draw t(x) of row x into dst, all randomness from rng (the
// attacks.EOT transformation).
func (s Stochastic) Transform(dst, x []float64, rng *rand.Rand) { s.draw(dst, nil, x, rng) }

// Draw returns the draw t(x_i) every row of x is answered with, and the masks.
func (s Stochastic) Draw(x *nets.Tensor) (tx, mask *nets.Tensor, err error) {
	if x == nil {
		return nil, nil, errors.New("stochastic: no input")
	}
	if err := s.check(x); err != nil {
		return nil, nil, err
	}
	tx, mask = nets.NewTensor(x.Shape...), nets.NewTensor(x.Shape...)
	per := x.Len() / x.Shape[0]
	for i := 0; i < x.Shape[0]; i++ {
		row := x.Data[i*per : (i+1)*per]
		s.draw(tx.Data[i*per:(i+1)*per], mask.Data[i*per:(i+1)*per], row, InputRand(s.Seed, row))
	}
	return tx, mask, nil
}

// Logits implements nets.Classifier: f(t(x)), one draw per row.
func (s Stochastic) Logits(x *nets.Tensor) (*nets.Tensor, error) {
	tx, _, err := s.Draw(x)
	if err != nil {
		return nil, err
	}
	return s.Net.Logits(tx)
}

// LossGrad implements nets.Differentiable with the naive gradient of the draw
// taken: L(f(t(x))) and m ⊙ ∇f(t(x)).
func (s Stochastic) LossGrad(x *nets.Tensor, labels []int, loss nets.Loss) ([]float64, *nets.Tensor, error) {
	tx, mask, err := s.Draw(x)
	if err != nil {
		return nil, nil, err
	}
	vals, g, err := s.Net.LossGrad(tx, labels, crossEntropyIfNil(loss))
	if err != nil {
		return nil, nil, err
	}
	if g == nil || !nets.SameShape(g.Shape, x.Shape) {
		return nil, nil, fmt.Errorf("stochastic: gradient of shape %v for input %v", shapeOf(g), x.Shape)
	}
	g = g.Clone()
	for i, m := range mask.Data {
		g.Data[i] *= m
	}
	return vals, g, nil
}

// AdaptiveTarget implements Adaptive: "eot", attacks.EOT over this transformation.
func (s Stochastic) AdaptiveTarget() (AdaptiveTarget, error) {
	if err := s.check(nil); err != nil {
		return AdaptiveTarget{}, err
	}
	n := s.Samples
	if n == 0 {
		n = 20
	}
	return AdaptiveTarget{Name: "eot", Model: attacks.EOT{Net: s.Net, Transform: s.Transform, Samples: n, Seed: s.Seed}}, nil
}

// stochasticParams are the params of a "stochastic" spec.
type stochasticParams struct {
	Sigma   float64 `json:"sigma"`
	Dropout float64 `json:"dropout"`
	Seed    uint64  `json:"seed"`
	Samples int     `json:"eot_samples"`
}

// buildStochastic builds a "stochastic" spec:
//
//	{"kind": "stochastic", "model": "net.onnx",
//	 "params": {"sigma": 0.25, "dropout": 0.1, "seed": 1, "eot_samples": 20}}
//
// sigma ≥ 0 finite, dropout in [0, 1), not both 0; eot_samples ≥ 1 is the number of
// draws of the adaptive EOT target (20 when absent).
func buildStochastic(l *Loader, s Spec) (Model, error) {
	p := stochasticParams{Samples: 20}
	if err := l.Params(s, &p); err != nil {
		return nil, err
	}
	if err := checkNoise(p.Sigma, p.Dropout); err != nil {
		return nil, fmt.Errorf("params: %w", err)
	}
	if p.Samples < 1 {
		return nil, fmt.Errorf("params: eot_samples %d: want at least 1", p.Samples)
	}
	net, shape, err := loadSingleNet(l, s)
	if err != nil {
		return nil, err
	}
	return Stochastic{Net: net, Sigma: p.Sigma, Dropout: p.Dropout, Seed: p.Seed, Samples: p.Samples, Shape: shape}, nil
}

// Reseeded implements Randomised: the same transformation, drawn from seed.
func (s Stochastic) Reseeded(seed uint64) Model {
	s.Seed = seed
	return s
}
