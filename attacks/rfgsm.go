package attacks

import (
	"context"
	"fmt"
	"math"

	"github.com/certify-dev/certify/nets"
)

// RFGSM is R+FGSM of Tramèr, Kurakin, Papernot, Goodfellow, Boneh & McDaniel,
// "Ensemble Adversarial Training: Attacks and Defenses", ICLR 2018, eq. (5): a random
// step first, to leave the sharp curvature of the loss at the data point, then an
// FGSM step of the remaining budget from there:
//
//	L∞: x' = x + α·sign(N(0, I)),   x'' = Π(x' + (ε − α)·sign(∇ₓ J(x', y)))
//	L2: x' = x + α·v/‖v‖₂ (v ~ N(0, I)), x'' = Π(x' + (ε − α)·∇/‖∇‖₂)
//
// with 0 ≤ α ≤ ε (the paper: α = ε/2), so x” stays in the ball by the triangle
// inequality. Π clips to the domain; x' is clipped too (a model is only asked about
// points of the domain), which keeps x” in the ball. The random direction of row i
// comes from RowRand(Seed, Row(ctx, i)) (see WithRows). One gradient evaluation per row.
type RFGSM struct {
	Budget Budget
	// Alpha is the length of the random step, in [0, Eps].
	Alpha float64
	// Loss is the J being ascended; nil means cross-entropy.
	Loss nets.Loss
	Seed uint64
}

// NewRFGSM returns R+FGSM with α = ε/2 and cross-entropy, the paper's setting.
func NewRFGSM(b Budget, seed uint64) RFGSM {
	return RFGSM{Budget: b, Alpha: b.Eps / 2, Loss: nets.CrossEntropy{}, Seed: seed}
}

// Name is "rfgsm".
func (RFGSM) Name() string { return "rfgsm" }

// Run returns the R+FGSM points, rows that are not misclassified reset to x.
func (a RFGSM) Run(ctx context.Context, m nets.Classifier, x *nets.Tensor, labels []int) (*nets.Tensor, error) {
	r, err := a.Attack(ctx, m, x, labels)
	if err != nil {
		return nil, err
	}
	return r.Adv, nil
}

// Attack runs R+FGSM on every row and re-checks the result.
func (a RFGSM) Attack(ctx context.Context, m nets.Classifier, x *nets.Tensor, labels []int) (*Result, error) {
	d, per, err := wbCheck(a.Name(), m, a.Budget, x, labels, LInf, L2)
	if err != nil {
		return nil, err
	}
	if math.IsNaN(a.Alpha) || a.Alpha < 0 || a.Alpha > a.Budget.Eps {
		return nil, fmt.Errorf("%s: random step %g outside [0, ε=%g]", a.Name(), a.Alpha, a.Budget.Eps)
	}
	if err := wbCtxErr(ctx, a.Name(), 0); err != nil {
		return nil, err
	}
	adv := x.Clone()
	noise := make([]float64, per)
	for i := range labels {
		r := RowRand(a.Seed, Row(ctx, i))
		for k := range noise {
			noise[k] = r.NormFloat64()
		}
		row, xi := adv.Data[i*per:(i+1)*per], x.Data[i*per:(i+1)*per]
		// One step of length α along the noise (sign for L∞, normalised for L2)
		// from x, clipped to the domain: wbAscend with the noise as "gradient".
		wbAscend(Budget{Norm: a.Budget.Norm, Eps: a.Alpha, Lo: a.Budget.Lo, Hi: a.Budget.Hi}, row, xi, noise, a.Alpha)
	}
	ev, err := wbEval(ctx, d, adv, labels, wbSameLoss(wbLossOrCE(a.Loss)), true)
	if err != nil {
		return nil, wbWrap(a.Name(), err)
	}
	queries := make([]int, len(labels))
	for i := range labels {
		wbAscend(a.Budget, adv.Data[i*per:(i+1)*per], x.Data[i*per:(i+1)*per], ev.grad.Data[i*per:(i+1)*per], a.Budget.Eps-a.Alpha)
		queries[i] = 1
	}
	return wbChecked(a.Name(), m, a.Budget, x, adv, labels, queries)
}
