package attacks

// Shared machinery of the gradient-based attacks (FGSM, R+FGSM, BIM, MI-FGSM, PGD,
// APGD, APGD-T): input checks, batched evaluation of loss, gradient and prediction in
// fixed-size chunks on all cores, the steepest-ascent step of each norm, random starts
// and per-row bookkeeping of the best point found.

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/certify-dev/certify/nets"
)

// wbChunk is the number of rows per model call of the white-box attacks. It is
// fixed, so which rows share a call — and so every floating-point sum inside the
// model — does not depend on the number of cores; and it is small enough that
// nets.Graph.LossGrad and Logits (which split batches of at least 8 and 16 rows
// across cores) run each call in one piece. Chunks run in parallel on all cores.
const wbChunk = 8

// wbCheck checks what every white-box attack needs: a differentiable model, a
// usable budget in one of the norms the attack supports, a non-empty batch with one
// label per row, and inputs that are finite and inside the budget's domain. It
// returns the model's gradient interface and the number of values per row.
func wbCheck(name string, m nets.Classifier, b Budget, x *nets.Tensor, labels []int, norms ...Norm) (nets.Differentiable, int, error) {
	d, err := Differentiable(m, name)
	if err != nil {
		return nil, 0, err
	}
	if err := b.Validate(); err != nil {
		return nil, 0, fmt.Errorf("%s: %w", name, err)
	}
	supported := false
	for _, n := range norms {
		supported = supported || n == b.Norm
	}
	if !supported {
		return nil, 0, fmt.Errorf("%s: norm %v not supported (supported: %v)", name, b.Norm, norms)
	}
	if x == nil || x.Rank() < 2 || x.Shape[0] == 0 || x.Len() == 0 {
		var shape []int
		if x != nil {
			shape = x.Shape
		}
		return nil, 0, fmt.Errorf("%s: input of shape %v: want a non-empty batch [n, ...]", name, shape)
	}
	if x.Shape[0] != len(labels) {
		return nil, 0, fmt.Errorf("%s: batch of %d rows with %d labels", name, x.Shape[0], len(labels))
	}
	per := x.Len() / x.Shape[0]
	for i, v := range x.Data {
		if math.IsNaN(v) || v < b.Lo || v > b.Hi {
			return nil, 0, fmt.Errorf("%s: row %d, value %d is %g, outside the domain [%g,%g]", name, i/per, i%per, v, b.Lo, b.Hi)
		}
	}
	return d, per, nil
}

// wbEvalOut is one pass of the model over a batch: per-row loss, the gradient of the
// loss with respect to the input (nil when not asked for), and the predicted class.
type wbEvalOut struct {
	loss []float64
	grad *nets.Tensor
	pred []int
}

// wbLossFor returns the loss for rows [lo,hi) of the batch being evaluated; losses with
// per-row parameters (a target class) slice them here.
type wbLossFor func(lo, hi int) nets.Loss

// wbSameLoss is the wbLossFor of a loss without per-row parameters.
func wbSameLoss(l nets.Loss) wbLossFor { return func(int, int) nets.Loss { return l } }

// wbEval evaluates m on x in chunks of wbChunk rows, on all cores. With grad it
// calls LossGrad (the prediction is read off the logits the loss sees, so no second
// forward pass), otherwise Logits and the loss on them.
func wbEval(ctx context.Context, m nets.Differentiable, x *nets.Tensor, labels []int, lf wbLossFor, grad bool) (wbEvalOut, error) {
	n := x.Shape[0]
	per := x.Len() / n
	out := wbEvalOut{loss: make([]float64, n), pred: make([]int, n)}
	if grad {
		out.grad = nets.NewTensor(x.Shape...)
	}
	err := wbChunks(ctx, n, func(lo, hi int) error {
		return wbEvalChunk(m, x, labels, lf(lo, hi), grad, lo, hi, per, &out)
	})
	if err != nil {
		return wbEvalOut{}, err
	}
	return out, nil
}

func wbEvalChunk(m nets.Differentiable, x *nets.Tensor, labels []int, loss nets.Loss, grad bool, lo, hi, per int, out *wbEvalOut) error {
	shape := append([]int{hi - lo}, x.Shape[1:]...)
	xc := nets.FromData(x.Data[lo*per:hi*per], shape...)
	if !grad {
		z, err := m.Logits(xc)
		if err != nil {
			return err
		}
		if z.Rank() != 2 || z.Shape[0] != hi-lo {
			return fmt.Errorf("model returned logits of shape %v for %d rows", z.Shape, hi-lo)
		}
		v, _, err := loss.Eval(z, labels[lo:hi])
		if err != nil {
			return err
		}
		copy(out.loss[lo:hi], v)
		copy(out.pred[lo:hi], z.Argmax())
		return nil
	}
	pl := &wbPredLoss{inner: loss, pred: out.pred[lo:hi]}
	v, g, err := m.LossGrad(xc, labels[lo:hi], pl)
	if err != nil {
		return err
	}
	if len(v) != hi-lo || g == nil || g.Len() != xc.Len() {
		return fmt.Errorf("model returned %d losses and a gradient of %d values for %d rows of %d", len(v), wbGradLen(g), hi-lo, per)
	}
	copy(out.loss[lo:hi], v)
	copy(out.grad.Data[lo*per:hi*per], g.Data)
	if pl.calls != 1 || !pl.whole {
		// The model did not show the loss all logits at once (a fixed-batch graph,
		// a wrapper averaging noisy copies ...): ask it for the prediction.
		z, err := m.Logits(xc)
		if err != nil {
			return err
		}
		if z.Rank() != 2 || z.Shape[0] != hi-lo {
			return fmt.Errorf("model returned logits of shape %v for %d rows", z.Shape, hi-lo)
		}
		copy(out.pred[lo:hi], z.Argmax())
	}
	return nil
}

func wbGradLen(g *nets.Tensor) int {
	if g == nil {
		return 0
	}
	return g.Len()
}

// wbPredLoss passes Eval through to inner and records the argmax of the logits it sees.
type wbPredLoss struct {
	inner nets.Loss
	pred  []int
	mu    sync.Mutex
	calls int
	whole bool // the last call saw exactly len(pred) rows
}

func (p *wbPredLoss) Eval(logits *nets.Tensor, labels []int) ([]float64, *nets.Tensor, error) {
	v, g, err := p.inner.Eval(logits, labels)
	if err != nil {
		return nil, nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	p.whole = logits.Rank() == 2 && logits.Shape[0] == len(p.pred)
	if p.whole {
		copy(p.pred, logits.Argmax())
	}
	return v, g, nil
}

// wbGather copies rows idx of x (per values each) into a new batch.
func wbGather(x *nets.Tensor, per int, idx []int) *nets.Tensor {
	shape := append([]int{len(idx)}, x.Shape[1:]...)
	out := nets.NewTensor(shape...)
	for k, i := range idx {
		copy(out.Data[k*per:(k+1)*per], x.Data[i*per:(i+1)*per])
	}
	return out
}

func wbGatherInts(v []int, idx []int) []int {
	out := make([]int, len(idx))
	for k, i := range idx {
		out[k] = v[i]
	}
	return out
}

// wbAscend moves adv one step of length step along the steepest-ascent direction of
// the linearised loss in the budget's norm — for L∞ the sign of g (Goodfellow et al.
// 2015, eq. 3), for L2 g/‖g‖₂ — and projects the result onto the budget around x.
// A zero gradient (or zero coordinate, for L∞) does not move the point.
func wbAscend(b Budget, adv, x, g []float64, step float64) {
	switch b.Norm {
	case LInf:
		for i, v := range g {
			adv[i] += step * wbSign(v)
		}
	case L2:
		if n := wbNorm2(g); n > 0 {
			s := step / n
			for i, v := range g {
				adv[i] += s * v
			}
		}
	}
	b.Project(adv, x)
}

// sign is −1, 0 or 1 (0 at 0, as torch.sign: a flat coordinate does not move).
func wbSign(v float64) float64 {
	switch {
	case v > 0:
		return 1
	case v < 0:
		return -1
	}
	return 0
}

func wbNorm2(v []float64) float64 {
	s := 0.0
	for _, a := range v {
		s += a * a
	}
	return math.Sqrt(s)
}

// wbRandomStart sets adv to a point drawn uniformly from the budget's ball around x
// (L∞: each coordinate x_i + U(−ε, ε); L2: the direction of a standard normal vector
// times radius ε·U^{1/d}), then clipped to the domain.
func wbRandomStart(b Budget, r *rand.Rand, adv, x []float64) {
	switch b.Norm {
	case LInf:
		for i := range adv {
			adv[i] = x[i] + b.Eps*(2*r.Float64()-1)
		}
	case L2:
		for i := range adv {
			adv[i] = r.NormFloat64()
		}
		n := wbNorm2(adv)
		rad := b.Eps * math.Pow(r.Float64(), 1/float64(len(adv)))
		for i := range adv {
			if n > 0 {
				adv[i] = x[i] + rad*adv[i]/n
			} else {
				adv[i] = x[i]
			}
		}
	}
	b.Project(adv, x)
}

// wbBest keeps, per row, the best point an iterative attack has evaluated: while
// no misclassified point is known, the one of highest loss; then the first
// misclassified one (firstWins) or the misclassified one of highest loss.
type wbBest struct {
	adv       *nets.Tensor
	loss      []float64
	found     []bool
	queries   []int
	per       int
	firstWins bool
}

func newWBBest(x *nets.Tensor, per int, firstWins bool) *wbBest {
	n := x.Shape[0]
	b := &wbBest{adv: x.Clone(), loss: make([]float64, n), found: make([]bool, n), queries: make([]int, n), per: per, firstWins: firstWins}
	for i := range b.loss {
		b.loss[i] = math.Inf(-1)
	}
	return b
}

// offer considers point p (per values) of row i with its loss and whether it is
// misclassified, and reports whether the row has now found an adversarial example.
func (b *wbBest) offer(i int, p []float64, loss float64, misclassified bool) bool {
	take := false
	switch {
	case misclassified && !b.found[i]:
		take = true
	case misclassified:
		take = !b.firstWins && loss > b.loss[i]
	case !b.found[i]:
		take = loss > b.loss[i] || math.IsInf(b.loss[i], -1)
	}
	if take {
		copy(b.adv.Data[i*b.per:(i+1)*b.per], p)
		b.loss[i] = loss
		b.found[i] = b.found[i] || misclassified
	}
	return b.found[i]
}

// wbCtxErr wraps a cancellation with the attack's name and progress.
func wbCtxErr(ctx context.Context, name string, step int) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: stopped at step %d: %w", name, step, err)
	}
	return nil
}

// wbLossOrCE is l, or cross-entropy when l is nil.
func wbLossOrCE(l nets.Loss) nets.Loss {
	if l == nil {
		return nets.CrossEntropy{}
	}
	return l
}

// wbAscent is projected gradient ascent on a loss, the loop BIM, MI-FGSM and PGD share:
// from x (or a uniform random point of the ball), steps times
//
//	g ← ∇ₓ loss(x_t)                  (MI-FGSM: g ← μ·g + ∇ₓ loss(x_t)/‖∇ₓ loss(x_t)‖₁)
//	x_{t+1} = Π(x_t + step·dir(g))    (dir = sign for L∞, g/‖g‖₂ for L2; Π: projection)
//
// repeated restarts times. Every iterate x_0 … x_steps is evaluated; wbBest keeps
// per row the first misclassified one (earlyStop; the row then stops, and later
// restarts skip it) or, without earlyStop, the misclassified one of highest loss, and
// while none is known the one of highest loss. steps gradient evaluations and one
// forward pass per row and restart.
type wbAscent struct {
	name      string
	budget    Budget
	loss      nets.Loss
	steps     int
	step      float64
	restarts  int
	random    bool    // start uniformly at random in the ball, else at x
	momentum  bool    // MI-FGSM's accumulated, L1-normalised gradient
	decay     float64 // μ of MI-FGSM
	earlyStop bool
	seed      uint64
}

func (a wbAscent) run(ctx context.Context, m nets.Differentiable, x *nets.Tensor, labels []int, per int) (*wbBest, error) {
	if a.steps < 1 || a.restarts < 1 {
		return nil, fmt.Errorf("%s: %d steps and %d restarts: both must be at least 1", a.name, a.steps, a.restarts)
	}
	if math.IsNaN(a.step) || math.IsInf(a.step, 0) || a.step < 0 {
		return nil, fmt.Errorf("%s: step size %g must be finite and >= 0", a.name, a.step)
	}
	n := x.Shape[0]
	loss := wbLossOrCE(a.loss)
	best := newWBBest(x, per, a.earlyStop)
	rngs := make([]*rand.Rand, n)
	for r := 0; r < a.restarts; r++ {
		var rows []int
		for i := 0; i < n; i++ {
			if !(a.earlyStop && best.found[i]) {
				rows = append(rows, i)
			}
		}
		if len(rows) == 0 {
			break
		}
		xs := wbGather(x, per, rows)
		adv := xs.Clone()
		if a.random {
			for j, i := range rows {
				// Row i's own stream, drawn from in restart order: its starts
				// depend on nothing but (seed, i).
				if rngs[i] == nil {
					rngs[i] = RowRand(a.seed, Row(ctx, i))
				}
				wbRandomStart(a.budget, rngs[i], adv.Data[j*per:(j+1)*per], xs.Data[j*per:(j+1)*per])
			}
		}
		var mom []float64
		if a.momentum {
			mom = make([]float64, adv.Len())
		}
		active := make([]int, len(rows)) // positions in rows still iterating
		for j := range active {
			active[j] = j
		}
		for t := 0; t <= a.steps && len(active) > 0; t++ {
			if err := wbCtxErr(ctx, a.name, t); err != nil {
				return nil, err
			}
			sub := adv
			if len(active) < len(rows) {
				sub = wbGather(adv, per, active)
			}
			subLabels := make([]int, len(active))
			for k, j := range active {
				subLabels[k] = labels[rows[j]]
			}
			ev, err := wbEval(ctx, m, sub, subLabels, wbSameLoss(loss), t < a.steps)
			if err != nil {
				return nil, fmt.Errorf("%s: restart %d, step %d: %w", a.name, r, t, err)
			}
			next := active[:0]
			for k, j := range active {
				i := rows[j]
				best.queries[i]++
				done := best.offer(i, sub.Data[k*per:(k+1)*per], ev.loss[k], ev.pred[k] != labels[i])
				if t == a.steps || (a.earlyStop && done) {
					continue
				}
				g := ev.grad.Data[k*per : (k+1)*per]
				if a.momentum {
					mj := mom[j*per : (j+1)*per]
					l1 := 0.0
					for _, v := range g {
						l1 += math.Abs(v)
					}
					for q := range mj {
						mj[q] *= a.decay
						if l1 > 0 {
							mj[q] += g[q] / l1
						}
					}
					g = mj
				}
				wbAscend(a.budget, adv.Data[j*per:(j+1)*per], xs.Data[j*per:(j+1)*per], g, a.step)
				next = append(next, j)
			}
			active = next
		}
	}
	return best, nil
}

func wbWrap(name string, err error) error { return fmt.Errorf("%s: %w", name, err) }

// checked re-verifies an attack's output with Check; an error there is a bug of the
// attack (a point outside the budget) or a failing model.
func wbChecked(name string, m nets.Classifier, b Budget, x, adv *nets.Tensor, labels []int, queries []int) (*Result, error) {
	r, err := Check(m, b, x, adv, labels, queries)
	if err != nil {
		return nil, fmt.Errorf("%s: check: %w", name, err)
	}
	return r, nil
}

// wbLogits returns m's logits on x, evaluated in chunks of wbChunk rows on all
// cores (so the numbers do not depend on the number of cores).
func wbLogits(ctx context.Context, m nets.Classifier, x *nets.Tensor) (*nets.Tensor, error) {
	n := x.Shape[0]
	per := x.Len() / n
	parts := make([]*nets.Tensor, (n+wbChunk-1)/wbChunk)
	err := wbChunks(ctx, n, func(lo, hi int) error {
		shape := append([]int{hi - lo}, x.Shape[1:]...)
		z, err := m.Logits(nets.FromData(x.Data[lo*per:hi*per], shape...))
		if err != nil {
			return err
		}
		if z.Rank() != 2 || z.Shape[0] != hi-lo {
			return fmt.Errorf("model returned logits of shape %v for %d rows", z.Shape, hi-lo)
		}
		parts[lo/wbChunk] = z
		return nil
	})
	if err != nil {
		return nil, err
	}
	k := parts[0].Shape[1]
	out := nets.NewTensor(n, k)
	for c, p := range parts {
		if p.Shape[1] != k {
			return nil, fmt.Errorf("model returned %d and %d classes for two chunks", k, p.Shape[1])
		}
		copy(out.Data[c*wbChunk*k:], p.Data)
	}
	return out, nil
}

// wbChunks calls f on the row ranges [c·wbChunk, min((c+1)·wbChunk, n)), on
// GOMAXPROCS workers, and returns the error of the first failing range.
func wbChunks(ctx context.Context, n int, f func(lo, hi int) error) error {
	chunks := (n + wbChunk - 1) / wbChunk
	errs := make([]error, chunks)
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < min(runtime.GOMAXPROCS(0), chunks); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				c := int(next.Add(1)) - 1
				if c >= chunks {
					return
				}
				if errs[c] = ctx.Err(); errs[c] == nil {
					errs[c] = f(c*wbChunk, min((c+1)*wbChunk, n))
				}
			}
		}()
	}
	wg.Wait()
	for c, err := range errs {
		if err != nil {
			return fmt.Errorf("rows %d–%d: %w", c*wbChunk, min((c+1)*wbChunk, n)-1, err)
		}
	}
	return nil
}
