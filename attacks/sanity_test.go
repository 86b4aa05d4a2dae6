package attacks

import (
	"context"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/certify-dev/certify/nets"
)

// softmaxOutput is a model that ends in a softmax: it outputs probabilities.
type softmaxOutput struct{ net nets.Differentiable }

func (s softmaxOutput) Logits(x *nets.Tensor) (*nets.Tensor, error) {
	z, err := s.net.Logits(x)
	if err != nil {
		return nil, err
	}
	k := z.Shape[1]
	for i := 0; i < z.Shape[0]; i++ {
		row := z.Data[i*k : (i+1)*k]
		m, sum := math.Inf(-1), 0.0
		for _, v := range row {
			m = max(m, v)
		}
		for j, v := range row {
			row[j] = math.Exp(v - m)
			sum += row[j]
		}
		for j := range row {
			row[j] /= sum
		}
	}
	return z, nil
}

// noisyOutput adds fresh noise to the logits at every call: a randomised defence.
type noisyOutput struct {
	net nets.Classifier
	mu  *sync.Mutex
	rng *rand.Rand
}

func (n noisyOutput) Logits(x *nets.Tensor) (*nets.Tensor, error) {
	z, err := n.net.Logits(x)
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for i := range z.Data {
		z.Data[i] += 0.1 * n.rng.NormFloat64()
	}
	return z, nil
}

// nanGrad returns NaN gradients for every other row.
type nanGrad struct{ net nets.Differentiable }

func (n nanGrad) Logits(x *nets.Tensor) (*nets.Tensor, error) { return n.net.Logits(x) }

func (n nanGrad) LossGrad(x *nets.Tensor, labels []int, loss nets.Loss) ([]float64, *nets.Tensor, error) {
	v, g, err := n.net.LossGrad(x, labels, loss)
	if err != nil {
		return nil, nil, err
	}
	per := g.Len() / g.Shape[0]
	for i := 0; i < g.Shape[0]; i += 2 {
		g.Data[i*per] = math.NaN()
	}
	return v, g, nil
}

func checksOf(ws []Warning) string {
	var s []string
	for _, w := range ws {
		s = append(s, w.Check)
	}
	return strings.Join(s, ",")
}

// TestSanityShippedMLPSilent: no check fires on the shipped MLP, nor on the EOT
// wrapper (deterministic by construction).
func TestSanityShippedMLPSilent(t *testing.T) {
	g, x, labels := shippedMLP(t, 32)
	ws, err := Sanity(g, x, labels)
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) > 0 {
		t.Fatalf("warnings on the shipped MLP: %v", ws)
	}
	e := EOT{Net: g, Transform: gaussianNoise(0.05), Samples: 3, Seed: 1}
	if ws, err := SanityDeterminism(e, x, labels, 3); err != nil || len(ws) > 0 {
		t.Fatalf("EOT wrapper: %v, %v", ws, err)
	}
}

// TestSanityFires: each check fires on a model built to fail it, and only it.
func TestSanityFires(t *testing.T) {
	g, x, labels := shippedMLP(t, 16)
	for _, c := range []struct {
		name string
		m    nets.Classifier
		want string
	}{
		{"softmax output", softmaxOutput{g}, "probabilities,no-gradients"},
		{"quantised input (zero gradients)", quantisedExact{g}, "zero-gradients"},
		{"NaN gradients", nanGrad{g}, "non-finite-gradients"},
		{"black box", mnScoresOnly{g}, "no-gradients"},
		{"randomised", noisyOutput{net: g, mu: &sync.Mutex{}, rng: rand.New(rand.NewPCG(1, 2))}, "no-gradients,randomness"},
	} {
		ws, err := Sanity(c.m, x, labels)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := checksOf(ws); got != c.want {
			t.Errorf("%s: checks %q fired, want %q (%v)", c.name, got, c.want, ws)
		}
		for _, w := range ws {
			t.Logf("%s: %v", c.name, w)
		}
	}
	// All-zero gradients say so.
	ws, _ := SanityGradients(quantisedExact{g}, x, labels)
	if len(ws) != 1 || !strings.Contains(ws[0].Message, "16 of 16") || !strings.Contains(ws[0].Message, "All of them") {
		t.Errorf("zero-gradient warning %v", ws)
	}
	// Values in [0,1] that do not sum to 1 are not probabilities.
	lin := linearModel(t, [][]float64{{0.1, 0.1}, {0.2, 0.1}, {0.05, 0}}, []float64{0, 0, 0})
	if ws, err := SanityProbabilities(lin, nets.FromData([]float64{0.5, 0.5, 1, 1}, 2, 2)); err != nil || len(ws) > 0 {
		t.Errorf("scores in [0,1] summing to %v flagged: %v %v", 0.25, ws, err)
	}
}

func TestSanityGradientMasking(t *testing.T) {
	ws, err := SanityGradientMasking([]bool{true, false, false, true}, []bool{true, true, false, false})
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) != 1 || ws[0].Check != "gradient-masking" || !strings.Contains(ws[0].Message, "1 of 4") || !strings.Contains(ws[0].Message, "samples 1") {
		t.Fatalf("warnings %v", ws)
	}
	if ws, _ := SanityGradientMasking([]bool{true, true}, []bool{false, true}); len(ws) != 0 {
		t.Fatalf("black ⊆ white flagged: %v", ws)
	}
	if _, err := SanityGradientMasking([]bool{true}, nil); err == nil {
		t.Fatal("length mismatch accepted")
	}
}

// noiseAttack is the weakest black-box attack: one random vertex of the L∞ ball.
func noiseAttack(t *testing.T, m nets.Classifier, b Budget, x *nets.Tensor, labels []int) []bool {
	t.Helper()
	adv := x.Clone()
	per := x.Len() / len(labels)
	for i := range labels {
		r := RowRand(1, i)
		for j := i * per; j < (i+1)*per; j++ {
			adv.Data[j] = min(max(x.Data[j]+b.Eps*float64(2*r.IntN(2)-1), b.Lo), b.Hi)
		}
	}
	res, err := Check(m, b, x, adv, labels, nil)
	if err != nil {
		t.Fatal(err)
	}
	return res.Success
}

// TestSanityGradientMaskingOnModels: on the shipped MLP PGD breaks everything random
// noise breaks (silent); behind quantisation with exact (zero) gradients PGD breaks
// nothing and the noise does break samples (fires); through BPDA it is silent again.
func TestSanityGradientMaskingOnModels(t *testing.T) {
	g, x, labels := shippedMLP(t, 16)
	b := Budget{Norm: LInf, Eps: 0.25, Lo: 0, Hi: 1}
	pgd := NewPGD(b, 1)
	for _, c := range []struct {
		name string
		m    nets.Classifier
		fire bool
	}{
		{"shipped MLP", g, false},
		{"quantised, exact gradients", quantisedExact{g}, true},
		{"quantised, BPDA", BPDA{Pre: quantise8, Net: g}, false},
	} {
		pgd.RandomStart = false
		white, err := pgd.Attack(context.Background(), c.m, x, labels)
		if err != nil {
			t.Fatal(err)
		}
		black := noiseAttack(t, c.m, b, x, labels)
		ws, err := SanityGradientMasking(white.Success, black)
		if err != nil {
			t.Fatal(err)
		}
		if (len(ws) > 0) != c.fire {
			t.Errorf("%s: warnings %v, want fired = %v", c.name, ws, c.fire)
		}
	}
}
