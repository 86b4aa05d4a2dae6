package attacks

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"

	"github.com/certify-dev/certify/nets"
)

// This file holds what the score- and decision-based attacks (Square, NES, SPSA,
// SimBA, HopSkipJump, Genetic) share: the input checks, the margin loss, a per-row
// query oracle that counts queries and keeps the first success, and two drivers that
// run rows on all cores with results independent of the number of cores.

// bbChunk is the most rows one Logits call of a black-box attack carries. It is
// fixed, so which rows share a call — and so the floating-point results, which BLAS
// may round differently with the shape of a product — are the same on any number
// of cores whatever the model does with a batch; Graph.Logits runs a batch this
// small in one piece. Calls run in parallel across rows or chunks instead.
const bbChunk = 16

// errBBStop ends a row's search: it succeeded, or its query budget cannot pay for
// the next query. bbRows treats it as a normal end.
var errBBStop = errors.New("row finished")

// bbCheck validates a black-box attack's inputs: the budget, in one of the norms
// the attack supports, a batch of at least one row, one label per row, and every
// input value inside the budget's domain (Check requires that of a failed row,
// which is returned unchanged).
func bbCheck(b Budget, x *nets.Tensor, labels []int, norms ...Norm) (n, per int, err error) {
	if err := b.Validate(); err != nil {
		return 0, 0, err
	}
	supported := false
	for _, nm := range norms {
		supported = supported || nm == b.Norm
	}
	if !supported {
		return 0, 0, fmt.Errorf("norm %v not supported (supported: %v)", b.Norm, norms)
	}
	if x == nil || x.Rank() < 2 || x.Shape[0] == 0 || x.Len() == 0 {
		var shape []int
		if x != nil {
			shape = x.Shape
		}
		return 0, 0, fmt.Errorf("input of shape %v: want [batch, ...sample shape] with at least one row", shape)
	}
	n = x.Shape[0]
	if len(labels) != n {
		return 0, 0, fmt.Errorf("%d labels for a batch of %d rows", len(labels), n)
	}
	per = x.Len() / n
	for i, y := range labels {
		if y < 0 {
			return 0, 0, fmt.Errorf("row %d: negative label %d", i, y)
		}
	}
	for j, v := range x.Data {
		if !(v >= b.Lo && v <= b.Hi) {
			return 0, 0, fmt.Errorf("row %d: input value %g at offset %d outside the domain [%g,%g]", j/per, v, j%per, b.Lo, b.Hi)
		}
	}
	return n, per, nil
}

// bbMargin is the margin loss on logits, z_y − max_{j≠y} z_j (Carlini & Wagner 2017):
// the black-box attacks minimise it; it is negative when the sample is misclassified.
func bbMargin(z []float64, y int) float64 {
	best := math.Inf(-1)
	for j, v := range z {
		if j != y && v > best {
			best = v
		}
	}
	return z[y] - best
}

// bbFooled reports whether the predicted class — the first maximum of z, as in
// nets.Tensor.Argmax and so in Check — differs from y.
func bbFooled(z []float64, y int) bool {
	best := 0
	for j, v := range z {
		if v > z[best] {
			best = j
		}
	}
	return best != y
}

// bbLogits runs m on rows points of the given sample shape, stored one after the
// other in pts, in calls of at most bbChunk rows, and returns the logits row-major
// with the number of classes. It checks the model's answer and that every label
// names one of its classes.
func bbLogits(m nets.Classifier, shape []int, pts []float64, rows int, labels ...int) ([]float64, int, error) {
	per := len(pts) / rows
	var out []float64
	k := 0
	for lo := 0; lo < rows; lo += bbChunk {
		hi := min(lo+bbChunk, rows)
		t, err := m.Logits(nets.FromData(pts[lo*per:hi*per], append([]int{hi - lo}, shape...)...))
		if err != nil {
			return nil, 0, err
		}
		if t == nil || t.Rank() != 2 || t.Shape[0] != hi-lo || t.Shape[1] < 2 || (k != 0 && t.Shape[1] != k) {
			var s []int
			if t != nil {
				s = t.Shape
			}
			return nil, 0, fmt.Errorf("model returned logits of shape %v for %d inputs: want [%d, classes ≥ 2]", s, hi-lo, hi-lo)
		}
		if k == 0 {
			k = t.Shape[1]
			out = make([]float64, 0, rows*k)
		}
		out = append(out, t.Data...)
	}
	for _, y := range labels {
		if y >= k {
			return nil, 0, fmt.Errorf("label %d but the model has %d classes", y, k)
		}
	}
	return out, k, nil
}

// bbParallel runs job(i) for i in [0,n) on GOMAXPROCS goroutines and returns the
// error of the lowest failing job. Jobs must not share state, so the results do not
// depend on the order or the number of cores. Jobs not started when ctx is done
// fail with ctx.Err().
func bbParallel(ctx context.Context, n int, job func(i int) error) error {
	errs := make([]error, n)
	next := make(chan int, n)
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	var wg sync.WaitGroup
	for w := 0; w < min(runtime.GOMAXPROCS(0), n); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := ctx.Err(); err != nil {
					errs[i] = err
					continue
				}
				errs[i] = job(i)
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

// bbOracle answers one row's queries and keeps its accounts: the queries spent
// against the row's query budget, and the first queried point that is both inside
// the threat model around x and misclassified — the attack's success, after which
// the row stops.
type bbOracle struct {
	m      nets.Classifier
	shape  []int // sample shape, without the batch dimension
	b      Budget
	x      []float64
	y      int
	limit  int       // query budget
	used   int       // queries spent
	adv    []float64 // first success, nil until found
	margin []float64 // margins of the last query's points
}

func newBBOracle(m nets.Classifier, shape []int, b Budget, x []float64, y, limit int) *bbOracle {
	return &bbOracle{m: m, shape: shape, b: b, x: x, y: y, limit: limit}
}

// left is the number of queries the row may still spend.
func (o *bbOracle) left() int { return o.limit - o.used }

// done reports whether the row found an adversarial example.
func (o *bbOracle) done() bool { return o.adv != nil }

// query evaluates rows points stored one after the other in pts and returns their
// logits (row-major) and the number of classes; o.margin holds their margins. The
// first point that fools the model inside the budget is kept in o.adv, and the
// query then returns errBBStop, as it does (without querying) when fewer than rows
// queries are left.
func (o *bbOracle) query(pts []float64, rows int) ([]float64, int, error) {
	if rows > o.left() || o.done() {
		return nil, 0, errBBStop
	}
	z, k, err := bbLogits(o.m, o.shape, pts, rows, o.y)
	if err != nil {
		return nil, 0, err
	}
	o.used += rows
	per := len(o.x)
	o.margin = o.margin[:0]
	for r := 0; r < rows; r++ {
		zr := z[r*k : (r+1)*k]
		o.margin = append(o.margin, bbMargin(zr, o.y))
		if o.adv == nil && bbFooled(zr, o.y) {
			if p := pts[r*per : (r+1)*per]; o.b.Contains(p, o.x) {
				o.adv = append([]float64(nil), p...)
			}
		}
	}
	if o.done() {
		return nil, 0, errBBStop
	}
	return z, k, nil
}

// decide is the decision-based view of query: whether each point is misclassified.
func (o *bbOracle) decide(pts []float64, rows int, dst []bool) ([]bool, error) {
	z, k, err := o.query(pts, rows)
	if err != nil {
		return nil, err
	}
	dst = dst[:0]
	for r := 0; r < rows; r++ {
		dst = append(dst, bbFooled(z[r*k:(r+1)*k], o.y))
	}
	return dst, nil
}

// bbRows is the frame of the per-row black-box attacks: it checks the inputs, runs
// attack on every row (rows in parallel, each with its own oracle; the attack draws
// its randomness from RowRand(seed, Row(ctx, i))), writes each row's success (or x) into the
// result and re-checks it with Check. errBBStop from attack is a normal end.
func bbRows(ctx context.Context, name string, b Budget, norms []Norm, m nets.Classifier, x *nets.Tensor, labels []int, limit int,
	attack func(o *bbOracle, i int) error) (*Result, error) {
	n, per, err := bbCheck(b, x, labels, norms...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	adv := x.Clone()
	queries := make([]int, n)
	shape := x.Shape[1:]
	err = bbParallel(ctx, n, func(i int) error {
		o := newBBOracle(m, shape, b, x.Data[i*per:(i+1)*per], labels[i], limit)
		err := attack(o, i)
		if errors.Is(err, errBBStop) {
			err = nil
		}
		queries[i] = o.used
		if o.adv != nil {
			copy(adv.Data[i*per:(i+1)*per], o.adv)
		}
		if err != nil {
			return fmt.Errorf("row %d: %w", i, err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	r, err := Check(m, b, x, adv, labels, queries)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return r, nil
}

// bbStepper is one row's search that asks about one point at a time (Square, SimBA).
// Steppers of many rows advance in bbLockstep so each model call carries many rows.
type bbStepper interface {
	// active reports whether the row wants another query (not yet successful,
	// budget left).
	active() bool
	// propose writes the next point to query into dst.
	propose(dst []float64)
	// observe receives the logits of the proposed point.
	observe(z []float64) error
}

// bbLockstep advances the steppers in rounds: each round, the rows still active are
// split in order into chunks of bbChunk, and each chunk — proposals, one Logits
// call, observations — runs on one core. Which rows share a call depends only on
// which rows are still active, so results do not depend on the number of cores.
// ctx is checked between rounds.
func bbLockstep(ctx context.Context, m nets.Classifier, shape []int, per int, labels []int, rows []bbStepper) error {
	var act []int
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		act = act[:0]
		for i, s := range rows {
			if s.active() {
				act = append(act, i)
			}
		}
		if len(act) == 0 {
			return nil
		}
		chunks := (len(act) + bbChunk - 1) / bbChunk
		err := bbParallel(ctx, chunks, func(c int) error {
			idx := act[c*bbChunk : min((c+1)*bbChunk, len(act))]
			pts := make([]float64, len(idx)*per)
			ys := make([]int, len(idx))
			for j, i := range idx {
				rows[i].propose(pts[j*per : (j+1)*per])
				ys[j] = labels[i]
			}
			z, k, err := bbLogits(m, shape, pts, len(idx), ys...)
			if err != nil {
				return err
			}
			for j, i := range idx {
				if err := rows[i].observe(z[j*k : (j+1)*k]); err != nil {
					return fmt.Errorf("row %d: %w", i, err)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
}

// bbGrid is the layout Square and SimBA give a sample: C channels of H×W. Samples of
// rank 3 are [C,H,W]; rank 2 [H,W] (C = 1); rank 1 a row of W values (C = H = 1);
// higher ranks [C, H, rest flattened].
type bbGrid struct{ c, h, w int }

func bbGridOf(shape []int) bbGrid {
	switch len(shape) {
	case 1:
		return bbGrid{1, 1, shape[0]}
	case 2:
		return bbGrid{1, shape[0], shape[1]}
	}
	return bbGrid{shape[0], shape[1], nets.NumElements(shape[2:])}
}
