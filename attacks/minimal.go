package attacks

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"

	"github.com/certify-dev/certify/nets"
)

// MinimalNorm is implemented by the minimal-perturbation attacks (DeepFool, C&W,
// EAD). They do not search inside a fixed radius: they look for the adversarial
// point closest to x. Their two entry points differ only in what counts as success:
//
//   - MinNorm ignores the budget's radius Eps (the norm and the domain [Lo,Hi] still
//     apply): Result.Success[i] says that some misclassified point was found for
//     row i and Result.Dist[i] is its distance in the budget's norm, however large.
//     This is what a report of median minimal distances needs (see MedianDist).
//   - Attack (and Run) is MinNorm followed by the budget: a row whose closest
//     adversarial point lies beyond Eps is a failure inside the budget and is reset
//     to x. Because the attack keeps the closest point it found, a row fails inside
//     the budget only if every adversarial point it visited lay beyond Eps.
//
// A row that the model already misclassifies is its own closest adversarial point,
// at distance 0.
type MinimalNorm interface {
	Detailed
	MinNorm(ctx context.Context, m nets.Classifier, x *nets.Tensor, labels []int) (*Result, error)
}

// MedianDist returns the median of Dist over the successful rows of r, and how many
// rows that is (NaN and 0 when none succeeded).
func MedianDist(r *Result) (median float64, n int) {
	var d []float64
	for i, ok := range r.Success {
		if ok {
			d = append(d, r.Dist[i])
		}
	}
	if len(d) == 0 {
		return math.NaN(), 0
	}
	slices.Sort(d)
	if len(d)%2 == 1 {
		return d[len(d)/2], len(d)
	}
	return (d[len(d)/2-1] + d[len(d)/2]) / 2, len(d)
}

// minNormRows is the number of rows a minimal-norm attack optimises together; a
// chunk's model calls are split further into pieces of at most minNormCall rows. Both
// are fixed, so which rows share a model call — and so every floating-point sum
// inside the model — does not depend on the number of cores; and minNormCall is
// small enough that nets.Graph (which splits batches of at least 8 rows across
// cores) runs each call in one piece. Chunks run in parallel on all cores.
const (
	minNormRows = 8
	minNormCall = 8
)

// minNormChunks runs f on consecutive chunks [lo,hi) of minNormRows rows of an
// n-row batch, at most GOMAXPROCS chunks at a time, and returns the first error in
// chunk order. f is expected to check ctx between its iterations.
func minNormChunks(ctx context.Context, n int, f func(lo, hi int) error) error {
	nc := (n + minNormRows - 1) / minNormRows
	errs := make([]error, nc)
	next := make(chan int, nc)
	for c := 0; c < nc; c++ {
		next <- c
	}
	close(next)
	var wg sync.WaitGroup
	for w := 0; w < min(runtime.GOMAXPROCS(0), nc); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range next {
				if err := ctx.Err(); err != nil {
					errs[c] = err
					continue
				}
				lo := c * minNormRows
				errs[c] = f(lo, min(lo+minNormRows, n))
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// minNormInputs checks a batch and its labels and that x lies in the budget's
// domain, and returns the number of values per row.
func minNormInputs(b Budget, x *nets.Tensor, labels []int) (int, error) {
	if x == nil || x.Rank() < 2 || x.Shape[0] == 0 {
		return 0, fmt.Errorf("input must be a non-empty batch, got shape %v", minNormShape(x))
	}
	if x.Shape[0] != len(labels) {
		return 0, fmt.Errorf("batch of %d rows with %d labels", x.Shape[0], len(labels))
	}
	per := x.Len() / x.Shape[0]
	for i, v := range x.Data {
		if math.IsNaN(v) || v < b.Lo || v > b.Hi {
			return 0, fmt.Errorf("row %d, value %d is %g, outside the domain [%g,%g]", i/per, i%per, v, b.Lo, b.Hi)
		}
	}
	return per, nil
}

func minNormShape(x *nets.Tensor) []int {
	if x == nil {
		return nil
	}
	return x.Shape
}

// minNormStack stacks the given rows (each per values long) into a batch shaped like
// x's rows.
func minNormStack(rows [][]float64, rowShape []int) *nets.Tensor {
	per := nets.NumElements(rowShape)
	t := nets.NewTensor(append([]int{len(rows)}, rowShape...)...)
	for i, r := range rows {
		copy(t.Data[i*per:(i+1)*per], r)
	}
	return t
}

// minNormPieces runs f on the pieces [lo,hi) of minNormCall rows of an n-row batch,
// at most GOMAXPROCS at a time, and returns the first error in piece order.
func minNormPieces(n int, f func(lo, hi int) error) error {
	np := (n + minNormCall - 1) / minNormCall
	if np == 1 {
		return f(0, n)
	}
	errs := make([]error, np)
	next := make(chan int, np)
	for p := 0; p < np; p++ {
		next <- p
	}
	close(next)
	var wg sync.WaitGroup
	for w := 0; w < min(runtime.GOMAXPROCS(0), np); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range next {
				errs[p] = f(p*minNormCall, min((p+1)*minNormCall, n))
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// minNormRowsOf returns rows [lo,hi) of a batch, sharing its data.
func minNormRowsOf(x *nets.Tensor, lo, hi int) *nets.Tensor {
	per := x.Len() / x.Shape[0]
	return nets.FromData(x.Data[lo*per:hi*per], append([]int{hi - lo}, x.Shape[1:]...)...)
}

// minNormLogits evaluates the model on a batch, in calls of minNormCall rows run in
// parallel, and checks the output. It returns the logits and the number of classes.
func minNormLogits(m nets.Classifier, x *nets.Tensor) (*nets.Tensor, int, error) {
	n := x.Shape[0]
	parts := make([]*nets.Tensor, (n+minNormCall-1)/minNormCall)
	err := minNormPieces(n, func(lo, hi int) error {
		z, err := m.Logits(minNormRowsOf(x, lo, hi))
		if err != nil {
			return err
		}
		if z.Rank() != 2 || z.Shape[0] != hi-lo || z.Shape[1] < 2 {
			return fmt.Errorf("model returned logits of shape %v for %d rows (want [%d, classes ≥ 2])", z.Shape, hi-lo, hi-lo)
		}
		if z.HasNaN() {
			return fmt.Errorf("model returned NaN or Inf logits")
		}
		parts[lo/minNormCall] = z
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	k := parts[0].Shape[1]
	out := nets.NewTensor(n, k)
	for p, z := range parts {
		if z.Shape[1] != k {
			return nil, 0, fmt.Errorf("model returned %d and %d classes for two parts of a batch", k, z.Shape[1])
		}
		copy(out.Data[p*minNormCall*k:], z.Data)
	}
	return out, k, nil
}

// minNormGrad calls the model's LossGrad on a batch, in calls of minNormCall rows
// run in parallel, and checks what comes back: one finite value and a finite
// gradient per row.
func minNormGrad(d nets.Differentiable, x *nets.Tensor, labels []int, loss nets.Loss) ([]float64, *nets.Tensor, error) {
	n, per := x.Shape[0], x.Len()/x.Shape[0]
	vals := make([]float64, n)
	grad := nets.NewTensor(x.Shape...)
	err := minNormPieces(n, func(lo, hi int) error {
		v, g, err := d.LossGrad(minNormRowsOf(x, lo, hi), labels[lo:hi], loss)
		if err != nil {
			return err
		}
		if len(v) != hi-lo || g == nil || g.Len() != (hi-lo)*per {
			return fmt.Errorf("model returned %d values and a gradient of %d values for %d rows of %d", len(v), minNormGradLen(g), hi-lo, per)
		}
		if g.HasNaN() {
			return fmt.Errorf("model returned a NaN or Inf gradient")
		}
		for _, f := range v {
			if math.IsNaN(f) || math.IsInf(f, 0) {
				return fmt.Errorf("model returned a NaN or Inf loss")
			}
		}
		copy(vals[lo:], v)
		copy(grad.Data[lo*per:], g.Data)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return vals, grad, nil
}

// minNormMargin returns max_{j≠y} z_j − z_y for one row of logits: positive exactly when
// the row is misclassified (ties count as correct).
func minNormMargin(z []float64, y int) float64 {
	best := math.Inf(-1)
	for j, v := range z {
		if j != y && v > best {
			best = v
		}
	}
	return best - z[y]
}

// logitOfLabel is the "loss" z_label: its gradient with respect to the logits is the
// unit vector e_label, so LossGrad with it returns ∇_x z_label. Batching copies of a
// row with labels k = 0, 1, … gives the Jacobian of the logits row by row.
type logitOfLabel struct{}

func (logitOfLabel) Eval(logits *nets.Tensor, labels []int) ([]float64, *nets.Tensor, error) {
	if logits.Rank() != 2 || logits.Shape[0] != len(labels) {
		return nil, nil, fmt.Errorf("logit loss: logits of shape %v for %d labels", logits.Shape, len(labels))
	}
	k := logits.Shape[1]
	vals := make([]float64, len(labels))
	grad := nets.NewTensor(logits.Shape...)
	for i, y := range labels {
		if y < 0 || y >= k {
			return nil, nil, fmt.Errorf("logit loss: class %d outside [0,%d)", y, k)
		}
		vals[i] = logits.Data[i*k+y]
		grad.Data[i*k+y] = 1
	}
	return vals, grad, nil
}

// minNormBudget is the budget MinNorm checks against: the attack's norm and domain,
// no radius.
func minNormBudget(b Budget) Budget {
	b.Eps = math.Inf(1)
	return b
}

// minNormDomain checks the parts of a budget that MinNorm uses.
func minNormDomain(b Budget) error {
	if !(b.Lo < b.Hi) || math.IsInf(b.Lo, 0) || math.IsInf(b.Hi, 0) {
		return fmt.Errorf("budget: domain [%g,%g] must be a finite non-empty interval", b.Lo, b.Hi)
	}
	return nil
}

// minNormWithin turns a MinNorm result into a result inside the budget: rows whose
// closest adversarial point lies beyond Eps are reset to x, then Check re-verifies
// everything against the budget.
func minNormWithin(m nets.Classifier, b Budget, x *nets.Tensor, labels []int, r *Result) (*Result, error) {
	adv := r.Adv.Clone()
	per := x.Len() / x.Shape[0]
	for i := range labels {
		row := adv.Data[i*per : (i+1)*per]
		if !b.Contains(row, x.Data[i*per:(i+1)*per]) {
			copy(row, x.Data[i*per:(i+1)*per])
		}
	}
	return Check(m, b, x, adv, labels, r.Queries)
}

// minNormClamp limits v to [lo,hi].
func minNormClamp(v, lo, hi float64) float64 { return min(max(v, lo), hi) }

// minNormGradLen is g's length, 0 for nil (for error messages).
func minNormGradLen(g *nets.Tensor) int {
	if g == nil {
		return 0
	}
	return g.Len()
}

// minNormAttack is the Attack of a minimal-norm attack: its MinNorm result, keeping
// only the points inside the budget.
func minNormAttack(ctx context.Context, name string, a MinimalNorm, b Budget, m nets.Classifier, x *nets.Tensor, labels []int) (*Result, error) {
	if err := b.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	r, err := a.MinNorm(ctx, m, x, labels)
	if err != nil {
		return nil, err
	}
	return minNormWithin(m, b, x, labels, r)
}

// minNormOptimise runs a per-chunk minimal-norm optimiser over every row of x in
// fixed chunks on all cores and checks the points it writes into adv.
func minNormOptimise(ctx context.Context, name string, b Budget, m nets.Classifier, x *nets.Tensor, labels []int,
	chunk func(ctx context.Context, d nets.Differentiable, x, adv *nets.Tensor, labels, queries []int, lo, hi int) error) (*Result, error) {
	d, err := Differentiable(m, name)
	if err != nil {
		return nil, err
	}
	if _, err := minNormInputs(b, x, labels); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	adv := x.Clone()
	queries := make([]int, len(labels))
	err = minNormChunks(ctx, len(labels), func(lo, hi int) error {
		return chunk(ctx, d, x, adv, labels, queries, lo, hi)
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return Check(m, minNormBudget(b), x, adv, labels, queries)
}

// checkSearch checks the knobs C&W and EAD share: the optimisation steps, the
// binary search steps on c, the learning rate, the first c and the confidence κ.
func checkSearch(name string, steps, searchSteps int, lr, c0, confidence float64) error {
	switch {
	case steps < 0 || searchSteps < 0:
		return fmt.Errorf("%s: %d steps, %d search steps", name, steps, searchSteps)
	case !(lr > 0) || math.IsInf(lr, 0):
		return fmt.Errorf("%s: learning rate %g must be positive and finite", name, lr)
	case !(c0 > 0) || math.IsInf(c0, 0):
		return fmt.Errorf("%s: initial constant %g must be positive and finite", name, c0)
	case !(confidence >= 0) || math.IsInf(confidence, 0):
		return fmt.Errorf("%s: confidence %g must be finite and ≥ 0", name, confidence)
	}
	return nil
}
