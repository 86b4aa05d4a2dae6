package attacks

import (
	"context"
	"math"
	"testing"

	"github.com/certify-dev/certify/nets"
)

// transferPGD is PGD run to the end (no early stop) from x with the margin loss: on
// a linear surrogate it ends at the corner x − ε·sign(w) of the ε-box (40 steps of
// 0.01 cover ε = 0.1 from any start).
func transferPGD(eps float64) PGD {
	return PGD{Budget: Budget{Norm: LInf, Eps: eps, Lo: 0, Hi: 1}, Steps: 40, Step: 0.01, Restarts: 1,
		Loss: nets.Margin{}, Seed: 1}
}

// TestTransferLinear: crafted on the linear surrogate, the points are the corners
// x_i − ε·sign(w) for the rows the surrogate misclassifies there (t_i < ε), x_i
// otherwise; the target is another linear model, z₀ = w'·x + c', with w' = w but
// two signs flipped and a bias shifted by β = 0.03·A, A = w'·sign(w), so its margin
// at the corner is β + (t_i − ε)·A: it transfers exactly for t_i < ε − 0.03. Each
// row costs one query of the target.
func TestTransferLinear(t *testing.T) {
	lin := newBBLinear(t, 0.02, 0.05, 0.08, 0.15)
	d := len(lin.w)
	wt := append([]float64(nil), lin.w...)
	wt[0], wt[1] = -wt[0], -wt[1]
	sum, A := 0.0, 0.0
	for j := range wt {
		sum += wt[j]
		A += wt[j] * math.Copysign(1, lin.w[j])
	}
	zero := make([]float64, d)
	target := linearModel(t, [][]float64{wt, zero, zero}, []float64{-0.5*sum + 0.03*A, 0, -100})
	const eps = 0.1
	tr := NewTransfer(Budget{Norm: LInf, Eps: eps, Lo: 0, Hi: 1}, lin.g, transferPGD(eps))
	r, err := tr.Attack(context.Background(), target, lin.x, lin.labels)
	if err != nil {
		t.Fatal(err)
	}
	for i, ti := range lin.t {
		want := ti < eps-0.03
		if r.Success[i] != want || r.Queries[i] != 1 {
			t.Errorf("row %d (t = %g): success %v with %d queries, want %v with 1", i, ti, r.Success[i], r.Queries[i], want)
		}
		if r.Success[i] {
			for j := 0; j < d; j++ {
				corner := lin.x.Data[i*d+j] - eps*math.Copysign(1, lin.w[j])
				if math.Abs(r.Adv.Data[i*d+j]-corner) > 1e-12 {
					t.Fatalf("row %d: point %v, not the corner", i, r.Adv.Data[i*d:(i+1)*d])
				}
			}
		}
	}
}

// TestTransferSelf: transferring from the target itself is the crafting attack:
// the same points and successes, at one query a row.
func TestTransferSelf(t *testing.T) {
	g, x, labels := shippedMLP(t, 8)
	b := Budget{Norm: LInf, Eps: 0.05, Lo: 0, Hi: 1}
	p := NewPGD(b, 3)
	direct, err := p.Attack(context.Background(), g, x, labels)
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewTransfer(b, g, p).Attack(context.Background(), g, x, labels)
	if err != nil {
		t.Fatal(err)
	}
	for i := range labels {
		if r.Success[i] != direct.Success[i] || r.Queries[i] != 1 {
			t.Errorf("row %d: success %v (%d queries), PGD %v", i, r.Success[i], r.Queries[i], direct.Success[i])
		}
	}
	for j := range r.Adv.Data {
		if r.Adv.Data[j] != direct.Adv.Data[j] {
			t.Fatalf("points differ at %d", j)
		}
	}
}

// TestTransferBudget: points crafted with a larger radius than the transfer's
// budget are an error, not a success.
func TestTransferBudget(t *testing.T) {
	lin := newBBLinear(t, 0.05)
	tr := NewTransfer(Budget{Norm: LInf, Eps: 0.05, Lo: 0, Hi: 1}, lin.g, transferPGD(0.1))
	if _, err := tr.Attack(context.Background(), lin.g, lin.x, lin.labels); err == nil {
		t.Fatal("no error for points outside the budget")
	}
}
