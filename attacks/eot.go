package attacks

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"

	"github.com/certify-dev/certify/nets"
)

// EOT is Expectation over Transformation (Athalye, Engstrom, Ilyas & Kwok,
// "Synthesizing Robust Adversarial Examples", ICML 2018; as an attack on randomised
// defences: Athalye, Carlini & Wagner, ICML 2018, Section 4.3): a model that applies
// a random transformation t ~ T to its input before a differentiable network f is
// replaced, for the attack, by its expectation, estimated with Samples draws:
//
//	Logits(x)      = (1/N) Σ_s f(t_s(x))                 (the mean of the logits)
//	LossGrad(x)    = (1/N) Σ_s L(f(t_s(x))),  (1/N) Σ_s ∇f at t_s(x)
//
// The gradient of each draw is taken through the identity for t (∂t(x)/∂x = I):
// exact for additive noise t(x) = x + n, the straight-through (BPDA) approximation for
// other transformations. A transformation with a useful Jacobian belongs inside Net.
//
// Randomness: the draws for a row come from a PCG seeded by Seed and a hash of the
// row's values, drawn in order s = 0 … N−1. So a call is reproducible, its result
// does not depend on the rest of the batch or on the number of cores, and every new
// point an attack visits gets fresh draws. A consequence: EOT is deterministic as a
// function of x, so the randomness sanity check (SanityDeterminism) stays silent on
// it, as it should for an EOT-wrapped model.
type EOT struct {
	// Net is the differentiable network f.
	Net nets.Differentiable
	// Transform writes one draw t(x) of one row x into dst (both len(x) long), with
	// rng its only source of randomness.
	Transform func(dst, x []float64, rng *rand.Rand)
	// Samples N ≥ 1 is the number of draws per evaluation. Zero means 20 (the EOT
	// iterations of AutoAttack's version for randomised defences).
	Samples int
	// Seed seeds the draws.
	Seed uint64
}

func (e EOT) samples() (int, error) {
	if e.Net == nil || e.Transform == nil {
		return 0, fmt.Errorf("eot: network and transformation must both be set")
	}
	switch {
	case e.Samples == 0:
		return 20, nil
	case e.Samples < 0:
		return 0, fmt.Errorf("eot: %d samples", e.Samples)
	}
	return e.Samples, nil
}

// Draws returns the N transformed copies of every row of x, row i's draws at rows
// i·N … i·N+N−1: the inputs Logits and LossGrad give to Net.
func (e EOT) Draws(x *nets.Tensor) (*nets.Tensor, error) {
	n, err := e.samples()
	if err != nil {
		return nil, err
	}
	if x == nil || x.Rank() < 2 || x.Shape[0] == 0 {
		return nil, fmt.Errorf("eot: input must be a non-empty batch, got shape %v", minNormShape(x))
	}
	b, per := x.Shape[0], x.Len()/x.Shape[0]
	out := nets.NewTensor(append([]int{b * n}, x.Shape[1:]...)...)
	buf := make([]byte, 8)
	for i := 0; i < b; i++ {
		row := x.Data[i*per : (i+1)*per]
		h := fnv.New64a()
		for _, v := range row {
			binary.LittleEndian.PutUint64(buf, math.Float64bits(v))
			h.Write(buf)
		}
		rng := rand.New(rand.NewPCG(e.Seed, h.Sum64()))
		for s := 0; s < n; s++ {
			dst := out.Data[(i*n+s)*per : (i*n+s+1)*per]
			e.Transform(dst, row, rng)
		}
	}
	return out, nil
}

// Logits implements nets.Classifier: the mean of the logits over the draws.
func (e EOT) Logits(x *nets.Tensor) (*nets.Tensor, error) {
	draws, err := e.Draws(x)
	if err != nil {
		return nil, err
	}
	n, _ := e.samples()
	z, k, err := minNormLogits(e.Net, draws)
	if err != nil {
		return nil, fmt.Errorf("eot: %w", err)
	}
	b := x.Shape[0]
	out := nets.NewTensor(b, k)
	for i := 0; i < b; i++ {
		for s := 0; s < n; s++ {
			for j := 0; j < k; j++ {
				out.Data[i*k+j] += z.Data[(i*n+s)*k+j]
			}
		}
		for j := 0; j < k; j++ {
			out.Data[i*k+j] /= float64(n)
		}
	}
	return out, nil
}

// LossGrad implements nets.Differentiable: the mean loss over the draws and the mean
// of the draws' gradients.
func (e EOT) LossGrad(x *nets.Tensor, labels []int, loss nets.Loss) ([]float64, *nets.Tensor, error) {
	draws, err := e.Draws(x)
	if err != nil {
		return nil, nil, err
	}
	b, per := x.Shape[0], x.Len()/x.Shape[0]
	if len(labels) != b {
		return nil, nil, fmt.Errorf("eot: batch of %d rows with %d labels", b, len(labels))
	}
	n, _ := e.samples()
	labs := make([]int, b*n)
	for i, y := range labels {
		for s := 0; s < n; s++ {
			labs[i*n+s] = y
		}
	}
	v, g, err := minNormGrad(e.Net, draws, labs, loss)
	if err != nil {
		return nil, nil, fmt.Errorf("eot: %w", err)
	}
	vals := make([]float64, b)
	grad := nets.NewTensor(x.Shape...)
	for i := 0; i < b; i++ {
		gi := grad.Data[i*per : (i+1)*per]
		for s := 0; s < n; s++ {
			vals[i] += v[i*n+s]
			for t, gv := range g.Data[(i*n+s)*per : (i*n+s+1)*per] {
				gi[t] += gv
			}
		}
		vals[i] /= float64(n)
		for t := range gi {
			gi[t] /= float64(n)
		}
	}
	return vals, grad, nil
}
