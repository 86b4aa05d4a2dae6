package main

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/certify-dev/certify/attacks"
	"github.com/certify-dev/certify/nets"
)

// smoothAdv is the attack on a smoothed classifier of Salman et al., "Provably
// Robust Deep Learning via Adversarially Trained Smoothed Classifiers" (NeurIPS
// 2019), Section 3 (SmoothAdv, eq. (S) with its "soft" smoothed classifier): PGD in
// the L2 ball of radius Eps on
//
//	ℓ(x') = −log G_y(x'),   G(x') = E_δ[softmax(f(x'+δ))] ≈ (1/m) Σ_{i≤m} softmax(f(x'+δ_i)),
//
// δ_i ~ N(0, σ²I), with m = Noise draws per step. The expectation is taken by EOT
// (attacks.EOT with additive Gaussian noise, so the gradient through the noise is
// exact): a fresh set of draws at every iterate. As in the reference code
// (github.com/Hadisalman/smoothing-adversarial, attacks.py, PGD_L2 with several
// noise vectors): δ starts at 0; each of the Steps steps moves by 2·Eps/Steps along
// the L2-normalised gradient (a random direction when it is zero), clips x' to the
// data domain [Lo, Hi], then projects δ onto the ball.
//
// The gradient: ∇ℓ = −∇G_y/G_y points along −∇G_y, and the normalised step only
// needs the direction, so the attack descends G_y, the mean over the draws of the
// softmax probability of y (softmaxProb), which EOT averages.
type smoothAdv struct {
	Sigma  float64 // noise level σ of the smoothed classifier
	Eps    float64 // L2 radius
	Steps  int     // T ≥ 1
	Noise  int     // m ≥ 1
	Lo, Hi float64 // data domain
}

// run attacks the single sample x ([1, ...input shape]) of label y and returns the
// last iterate, which lies in the ball and the domain. rng seeds the EOT draws and
// draws the random directions.
func (a smoothAdv) run(ctx context.Context, f nets.Differentiable, x *nets.Tensor, y int, rng *rand.Rand) (*nets.Tensor, error) {
	if a.Steps < 1 || a.Noise < 1 || !(a.Sigma > 0) || !(a.Eps >= 0) {
		return nil, fmt.Errorf("smoothadv: %d steps, %d noise draws, σ = %g, radius %g", a.Steps, a.Noise, a.Sigma, a.Eps)
	}
	sigma := a.Sigma
	eot := attacks.EOT{
		Net: f,
		Transform: func(dst, x []float64, r *rand.Rand) {
			for i, v := range x {
				dst[i] = v + sigma*r.NormFloat64()
			}
		},
		Samples: a.Noise,
		Seed:    rng.Uint64(),
	}
	step := 2 * a.Eps / float64(a.Steps)
	delta := make([]float64, x.Len())
	adv := x.Clone()
	for t := 0; t < a.Steps; t++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		_, g, err := eot.LossGrad(adv, []int{y}, softmaxProb{})
		if err != nil {
			return nil, fmt.Errorf("smoothadv: step %d: %w", t, err)
		}
		dir := g.Data
		norm := l2(dir)
		if norm == 0 || math.IsNaN(norm) || math.IsInf(norm, 0) {
			dir = make([]float64, len(delta))
			for i := range dir {
				dir[i] = rng.NormFloat64()
			}
			norm = l2(dir)
		}
		for i, v := range x.Data {
			// Descend G_y: δ ← δ − step·∇G_y/‖∇G_y‖, then clip x+δ to the domain.
			delta[i] = min(max(v+delta[i]-step*dir[i]/norm, a.Lo), a.Hi) - v
		}
		for n := l2(delta); n > a.Eps; n = l2(delta) {
			// eps/n·δ can round to a norm an ulp above eps: shrink until inside.
			s := math.Min(a.Eps/n, math.Nextafter(1, 0))
			for i := range delta {
				delta[i] *= s
			}
		}
		for i, v := range x.Data {
			adv.Data[i] = v + delta[i]
		}
	}
	return adv, nil
}

func l2(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x * x
	}
	return math.Sqrt(s)
}

// softmaxProb is the loss p_y = softmax(z)_y, whose gradient with respect to the
// logits is p_y·(e_y − p).
type softmaxProb struct{}

func (softmaxProb) Eval(logits *nets.Tensor, labels []int) ([]float64, *nets.Tensor, error) {
	if logits.Rank() != 2 || logits.Shape[0] != len(labels) {
		return nil, nil, fmt.Errorf("softmax probability: logits of shape %v for %d labels", logits.Shape, len(labels))
	}
	k := logits.Shape[1]
	vals := make([]float64, len(labels))
	grad := nets.NewTensor(logits.Shape...)
	p := make([]float64, k)
	for r, y := range labels {
		if y < 0 || y >= k {
			return nil, nil, fmt.Errorf("softmax probability: label %d outside [0,%d)", y, k)
		}
		z := logits.Data[r*k : (r+1)*k]
		m := math.Inf(-1)
		for _, v := range z {
			m = math.Max(m, v)
		}
		s := 0.0
		for j, v := range z {
			p[j] = math.Exp(v - m)
			s += p[j]
		}
		for j := range p {
			p[j] /= s
		}
		vals[r] = p[y]
		gz := grad.Data[r*k : (r+1)*k]
		for j := range gz {
			gz[j] = -p[y] * p[j]
		}
		gz[y] += p[y]
	}
	return vals, grad, nil
}
