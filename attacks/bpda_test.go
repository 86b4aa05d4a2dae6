package attacks

import (
	"context"
	"fmt"
	"math"
	"testing"

	"github.com/certify-dev/certify/nets"
)

// quantise8 rounds every value to the nearest multiple of 1/8, in place: a
// preprocessing defence whose gradient is zero almost everywhere.
func quantise8(x *nets.Tensor) (*nets.Tensor, error) {
	for i, v := range x.Data {
		x.Data[i] = math.Round(v*8) / 8
	}
	return x, nil
}

// quantisedExact is f∘g differentiated exactly: the gradient of rounding is zero
// almost everywhere, so the gradient of the composite is zero. It is what an attack
// sees of a quantisation defence without BPDA.
type quantisedExact struct{ net nets.Differentiable }

func (q quantisedExact) Logits(x *nets.Tensor) (*nets.Tensor, error) {
	gx, _ := quantise8(x.Clone())
	return q.net.Logits(gx)
}

func (q quantisedExact) LossGrad(x *nets.Tensor, labels []int, loss nets.Loss) ([]float64, *nets.Tensor, error) {
	gx, _ := quantise8(x.Clone())
	v, _, err := q.net.LossGrad(gx, labels, loss)
	return v, nets.NewTensor(x.Shape...), err
}

// TestBPDAStraightThrough: the wrapper's logits are f(g(x)) and its gradient is ∇f
// taken at g(x), exactly.
func TestBPDAStraightThrough(t *testing.T) {
	g, x, labels := shippedMLP(t, 6)
	b := BPDA{Pre: quantise8, Net: g}
	gx, _ := quantise8(x.Clone())
	wantZ, err := g.Logits(gx)
	if err != nil {
		t.Fatal(err)
	}
	z, err := b.Logits(x)
	if err != nil {
		t.Fatal(err)
	}
	wantV, wantG, err := g.LossGrad(gx, labels, nets.CrossEntropy{})
	if err != nil {
		t.Fatal(err)
	}
	v, grad, err := b.LossGrad(x, labels, nets.CrossEntropy{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range wantZ.Data {
		if z.Data[i] != wantZ.Data[i] {
			t.Fatalf("logit %d: %g, want f(g(x)) = %g", i, z.Data[i], wantZ.Data[i])
		}
	}
	for i := range wantV {
		if v[i] != wantV[i] {
			t.Fatalf("loss %d: %g, want %g", i, v[i], wantV[i])
		}
	}
	nonzero := 0
	for i := range wantG.Data {
		if grad.Data[i] != wantG.Data[i] {
			t.Fatalf("gradient %d: %g, want ∇f(g(x)) = %g", i, grad.Data[i], wantG.Data[i])
		}
		if grad.Data[i] != 0 {
			nonzero++
		}
	}
	if nonzero == 0 {
		t.Fatal("BPDA gradient is zero")
	}
	// The input is not modified by the in-place preprocessing.
	_, x2, _ := shippedMLP(t, 6)
	for i := range x.Data {
		if x.Data[i] != x2.Data[i] {
			t.Fatal("BPDA let the preprocessing modify the caller's batch")
		}
	}
}

// TestBPDAExactGradientIsZero: the true gradient of f∘g, by central differences on
// every pixel of a sample, is zero (rounding is locally constant), while BPDA's is
// not.
func TestBPDAExactGradientIsZero(t *testing.T) {
	g, x, labels := shippedMLP(t, 1)
	b := BPDA{Pre: quantise8, Net: g}
	per := x.Len()
	const h = 1e-6
	shape := append([]int{per}, x.Shape[1:]...)
	plus, minus := nets.NewTensor(shape...), nets.NewTensor(shape...)
	for i := 0; i < per; i++ {
		copy(plus.Data[i*per:], x.Data)
		copy(minus.Data[i*per:], x.Data)
		plus.Data[i*per+i] += h
		minus.Data[i*per+i] -= h
	}
	rep := make([]int, per)
	for i := range rep {
		rep[i] = labels[0]
	}
	vp, _, err := b.LossGrad(plus, rep, nets.CrossEntropy{})
	if err != nil {
		t.Fatal(err)
	}
	vm, _, err := b.LossGrad(minus, rep, nets.CrossEntropy{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range vp {
		if fd := (vp[i] - vm[i]) / (2 * h); fd != 0 {
			t.Fatalf("pixel %d: finite-difference gradient %g of f∘g, want 0", i, fd)
		}
	}
	_, grad, err := b.LossGrad(x, labels, nets.CrossEntropy{})
	if err != nil {
		t.Fatal(err)
	}
	norm := 0.0
	for _, v := range grad.Data {
		norm += v * v
	}
	if norm == 0 {
		t.Fatal("BPDA gradient is zero")
	}
}

// TestBPDAUnmasksPGD: PGD on the quantised MLP with exact (zero) gradients makes no
// progress; through BPDA it breaks most samples.
func TestBPDAUnmasksPGD(t *testing.T) {
	g, x, labels := shippedMLP(t, 16)
	bud := Budget{Norm: LInf, Eps: 0.15, Lo: 0, Hi: 1}
	pgd := NewPGD(bud, 1)
	pgd.RandomStart = false
	count := func(m nets.Classifier) int {
		r, err := pgd.Attack(context.Background(), m, x, labels)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, s := range r.Success {
			if s {
				n++
			}
		}
		return n
	}
	exact := quantisedExact{g}
	clean := 0
	for i, p := range mnPredictions(t, exact, x) {
		if p != labels[i] {
			clean++
		}
	}
	masked := count(exact)
	bpda := count(BPDA{Pre: quantise8, Net: g})
	t.Logf("PGD ε = 0.15 on the quantised MLP: %d of %d broken with exact gradients (%d misclassified clean), %d through BPDA", masked, len(labels), clean, bpda)
	if masked != clean {
		t.Errorf("exact (zero) gradients broke %d samples beyond the %d misclassified clean", masked-clean, clean)
	}
	if bpda < len(labels)/2 {
		t.Errorf("BPDA-PGD broke only %d of %d", bpda, len(labels))
	}
}

func TestBPDAErrors(t *testing.T) {
	g, x, labels := shippedMLP(t, 2)
	for name, b := range map[string]BPDA{
		"no preprocessing": {Net: g},
		"no network":       {Pre: quantise8},
		"failing preprocessing": {Net: g, Pre: func(*nets.Tensor) (*nets.Tensor, error) {
			return nil, fmt.Errorf("boom")
		}},
		"shape-changing preprocessing": {Net: g, Pre: func(x *nets.Tensor) (*nets.Tensor, error) {
			return nets.NewTensor(1, 784), nil
		}},
		"bad backward": {Net: g, Pre: quantise8, Backward: func(x, g *nets.Tensor) (*nets.Tensor, error) {
			return nets.NewTensor(2, 3), nil
		}},
	} {
		if _, _, err := b.LossGrad(x, labels, nets.CrossEntropy{}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// A custom backward pass is applied: here, twice the identity.
	b := BPDA{Net: g, Pre: quantise8, Backward: func(x, g *nets.Tensor) (*nets.Tensor, error) {
		out := g.Clone()
		for i := range out.Data {
			out.Data[i] *= 2
		}
		return out, nil
	}}
	_, g2, err := b.LossGrad(x, labels, nets.CrossEntropy{})
	if err != nil {
		t.Fatal(err)
	}
	_, g1, _ := BPDA{Net: g, Pre: quantise8}.LossGrad(x, labels, nets.CrossEntropy{})
	for i := range g1.Data {
		if g2.Data[i] != 2*g1.Data[i] {
			t.Fatalf("custom backward not applied at %d", i)
		}
	}
}
