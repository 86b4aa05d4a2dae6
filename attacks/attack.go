// Package attacks searches for adversarial examples: inputs inside a perturbation
// budget around a sample that the model misclassifies. The white-box attacks need a
// nets.Differentiable model; the black-box ones only a nets.Classifier.
//
// Every attack takes its budget and a seed at construction and processes a batch;
// rows are independent, each with its own random stream derived from the seed and
// the row's index in the batch, so results do not depend on the number of cores.
package attacks

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/certify-dev/certify/nets"
)

// Norm is the norm of a perturbation budget.
type Norm int

const (
	LInf Norm = iota // max_i |δ_i|
	L2               // sqrt(Σ δ_i²)
	L1               // Σ |δ_i|
)

func (n Norm) String() string {
	switch n {
	case LInf:
		return "linf"
	case L2:
		return "l2"
	case L1:
		return "l1"
	}
	return fmt.Sprintf("Norm(%d)", int(n))
}

// ParseNorm accepts "linf", "l2" or "l1".
func ParseNorm(s string) (Norm, error) {
	switch s {
	case "linf", "Linf", "LInf", "inf":
		return LInf, nil
	case "l2", "L2":
		return L2, nil
	case "l1", "L1":
		return L1, nil
	}
	return 0, fmt.Errorf("unknown norm %q (want linf, l2 or l1)", s)
}

// Budget is the threat model: ‖x' − x‖_Norm ≤ Eps and Lo ≤ x'_i ≤ Hi (the data domain).
type Budget struct {
	Norm   Norm
	Eps    float64
	Lo, Hi float64
}

// Validate checks that the budget is usable.
func (b Budget) Validate() error {
	if math.IsNaN(b.Eps) || b.Eps < 0 || math.IsInf(b.Eps, 0) {
		return fmt.Errorf("budget: radius %g must be finite and >= 0", b.Eps)
	}
	if !(b.Lo < b.Hi) {
		return fmt.Errorf("budget: domain [%g,%g] is empty", b.Lo, b.Hi)
	}
	return nil
}

// Distance returns ‖a − b‖ in norm n for two equally long vectors.
func Distance(n Norm, a, b []float64) float64 {
	d := 0.0
	for i := range a {
		v := math.Abs(a[i] - b[i])
		switch n {
		case LInf:
			d = math.Max(d, v)
		case L2:
			d += v * v
		case L1:
			d += v
		}
	}
	if n == L2 {
		d = math.Sqrt(d)
	}
	return d
}

// Project moves adv (one sample's values) to the nearest point of the budget around
// x in the budget's norm: for L∞ clip to the ball then the domain (their intersection
// is a box, so this is the exact projection); for L2 and L1 project onto the ball
// (L1: Duchi et al. 2008's sorting algorithm) and then clip to the domain — not the
// exact projection onto the intersection, but a point inside it, which is what a
// projected step needs to stay feasible. L2/L1 results are pulled back to the ball
// after clipping, which clipping towards x's domain-feasible values never leaves.
func (b Budget) Project(adv, x []float64) {
	switch b.Norm {
	case LInf:
		for i := range adv {
			adv[i] = min(max(adv[i], x[i]-b.Eps, b.Lo), x[i]+b.Eps, b.Hi)
		}
		return
	case L2:
		d := Distance(L2, adv, x)
		if d > b.Eps {
			s := b.Eps / d
			for i := range adv {
				adv[i] = x[i] + (adv[i]-x[i])*s
			}
		}
	case L1:
		projectL1(adv, x, b.Eps)
	}
	for i := range adv {
		adv[i] = min(max(adv[i], b.Lo), b.Hi)
	}
}

// Contains reports whether adv lies in the budget around x, with a relative slack
// of 1e-9 for the rounding of the projection itself.
func (b Budget) Contains(adv, x []float64) bool {
	for _, v := range adv {
		if v < b.Lo || v > b.Hi || math.IsNaN(v) {
			return false
		}
	}
	return Distance(b.Norm, adv, x) <= b.Eps*(1+1e-9)+1e-12
}

// Result is what an attack found for a batch, row by row.
type Result struct {
	// Adv holds, per row, the adversarial example found, or the original row when
	// the attack failed.
	Adv *nets.Tensor
	// Success[i]: Adv row i is inside the budget and misclassified by the model
	// (re-checked by Check, never taken on the attack's word).
	Success []bool
	// Dist[i] is ‖Adv_i − x_i‖ in the budget's norm (0 when the attack failed).
	Dist []float64
	// Queries[i] counts model evaluations (forward passes, or gradient evaluations
	// for white-box attacks) spent on row i.
	Queries []int
}

// Attack is one attack with its budget and seed fixed.
type Attack interface {
	// Name is the attack's key in reports, e.g. "pgd".
	Name() string
	// Run attacks each row of x (true labels given) and returns the best
	// candidate per row (the row itself when none was found).
	Run(ctx context.Context, m nets.Classifier, x *nets.Tensor, labels []int) (*nets.Tensor, error)
}

// Detailed is implemented by attacks that also count their queries; Attack.Run is
// then Detailed.Attack(...).Adv.
type Detailed interface {
	Attack
	Attack(ctx context.Context, m nets.Classifier, x *nets.Tensor, labels []int) (*Result, error)
}

// Check re-verifies an attack's output: every row of adv must lie in the budget
// around x (else an error: a bug in the attack) and counts as a success only if m
// misclassifies it. Rows that fail are reset to x's row, so Result.Adv is always
// safe to use.
func Check(m nets.Classifier, b Budget, x, adv *nets.Tensor, labels []int, queries []int) (*Result, error) {
	if !nets.SameShape(x.Shape, adv.Shape) {
		return nil, fmt.Errorf("attack returned shape %v for input %v", adv.Shape, x.Shape)
	}
	n := x.Batch()
	per := x.Len() / n
	for i := 0; i < n; i++ {
		if !b.Contains(adv.Data[i*per:(i+1)*per], x.Data[i*per:(i+1)*per]) {
			return nil, fmt.Errorf("row %d: adversarial point outside the %v budget %g (distance %g) or the domain [%g,%g]",
				i, b.Norm, b.Eps, Distance(b.Norm, adv.Data[i*per:(i+1)*per], x.Data[i*per:(i+1)*per]), b.Lo, b.Hi)
		}
	}
	logits, err := m.Logits(adv)
	if err != nil {
		return nil, err
	}
	pred := logits.Argmax()
	r := &Result{Adv: adv.Clone(), Success: make([]bool, n), Dist: make([]float64, n), Queries: queries}
	if r.Queries == nil {
		r.Queries = make([]int, n)
	}
	for i := 0; i < n; i++ {
		row := r.Adv.Data[i*per : (i+1)*per]
		if pred[i] != labels[i] {
			r.Success[i] = true
			r.Dist[i] = Distance(b.Norm, row, x.Data[i*per:(i+1)*per])
		} else {
			copy(row, x.Data[i*per:(i+1)*per])
		}
	}
	return r, nil
}

// RowRand returns the random stream of row i of a batch attacked with seed: a PCG
// seeded by (seed, i), so a row's randomness depends on nothing else.
func RowRand(seed uint64, row int) *rand.Rand {
	return rand.New(rand.NewPCG(seed, uint64(row)*0x9e3779b97f4a7c15+1))
}

// Differentiable asserts that m exposes gradients, with an error that says what to
// do when it does not.
func Differentiable(m nets.Classifier, attack string) (nets.Differentiable, error) {
	d, ok := m.(nets.Differentiable)
	if !ok {
		return nil, fmt.Errorf("%s needs gradients, and the model (%T) gives only scores: use a black-box attack, or wrap the model with BPDA/EOT", attack, m)
	}
	return d, nil
}
