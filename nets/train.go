package nets

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"time"
)

// Optimizer updates parameters from their gradients. It keeps its own state (momenta,
// step counts) per parameter position, so it must be given the same parameters in
// the same order on every step; a fresh optimizer is needed per training run.
type Optimizer interface {
	// Step updates params[i] in place from grads[i] with learning rate lr.
	Step(params, grads []*Tensor, lr float64) error
}

// Schedule gives the learning rate of step (0-based) out of total steps.
type Schedule func(step, total int) float64

// ConstantLR is the schedule lr, lr, lr, ...
func ConstantLR(lr float64) Schedule {
	return func(int, int) float64 { return lr }
}

// CosineLR warms the rate up linearly from lr/warmup to lr over the first warmup
// steps, then anneals it to 0 along a half cosine (Loshchilov & Hutter, "SGDR:
// Stochastic Gradient Descent with Warm Restarts", ICLR 2017, eq. 5, one cycle):
//
//	η_t = lr · ½ (1 + cos(π (t − warmup) / (total − warmup))).
func CosineLR(lr float64, warmup int) Schedule {
	return func(step, total int) float64 {
		if step < warmup {
			return lr * float64(step+1) / float64(warmup)
		}
		span := total - warmup
		if span <= 0 {
			return lr
		}
		return lr * 0.5 * (1 + math.Cos(math.Pi*float64(step-warmup)/float64(span)))
	}
}

// TrainConfig holds the settings of minibatch training.
type TrainConfig struct {
	Epochs    int
	BatchSize int
	// ChunkSize is the number of rows of a minibatch that one goroutine pushes
	// through the graph (default 16). Chunks, not cores, fix the summation order of
	// the gradients, so results are identical whatever GOMAXPROCS is.
	ChunkSize int
	Optimizer Optimizer
	Schedule  Schedule
	Loss      Loss       // default CrossEntropy
	Rand      *rand.Rand // shuffles the training set each epoch (and draws NoiseSigma's noise)
	// NoiseSigma σ ≥ 0, when positive, trains on Gaussian data augmentation: every
	// minibatch is replaced by x + δ with fresh δ ~ N(0, σ²I), unclipped, as Cohen,
	// Rosenfeld & Kolter, "Certified Adversarial Robustness via Randomized Smoothing",
	// ICML 2019, train the base classifier of a smoothed classifier at the σ it is
	// certified with. The noise is drawn from Rand in row-major order of the
	// minibatch, after that epoch's shuffle and before its chunks run in parallel, so
	// it too is independent of GOMAXPROCS. σ = 0 draws nothing: training is then
	// bit-identical to training without the field.
	NoiseSigma float64
	// Prepare, if set, replaces each minibatch (after NoiseSigma's noise) by the batch
	// the step fits: adversarial training puts attacked copies there, a defense may
	// return more rows than it was given (clean and adversarial side by side). It
	// runs on the training goroutine before the minibatch's chunks are spread over
	// the cores; epoch and step are 0-based. For bit-identical training on any core
	// count it must itself not depend on GOMAXPROCS (the attacks do not).
	Prepare func(epoch, step int, x *Tensor, labels []int) (*Tensor, []int, error)
	// OnEpoch, if set, is called after each epoch; an error stops training.
	OnEpoch func(EpochStats) error
}

// EpochStats summarises one epoch, measured on the minibatches as they were seen
// (before each one's update).
type EpochStats struct {
	Epoch    int // 1-based
	Loss     float64
	Accuracy float64
	LR       float64 // learning rate of the last step
	Duration time.Duration
}

// Train fits g.Trainable to (x, labels) by minibatch gradient descent on the mean
// loss of each minibatch, reshuffling the data every epoch with cfg.Rand (and, when
// cfg.NoiseSigma > 0, adding fresh Gaussian noise to each minibatch). Each
// minibatch is split into chunks of cfg.ChunkSize rows run in parallel
// (forward, then backward to the params); the chunks' gradients are summed in chunk
// order, so the same seed gives bit-identical weights whatever the timing, and on
// any number of cores as long as each op's own Backward does not depend on
// GOMAXPROCS (TestTrainDeterministic checks both).
func Train(g *Graph, x *Tensor, labels []int, cfg TrainConfig) ([]EpochStats, error) {
	in, outName, err := g.single()
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	n := len(labels)
	switch {
	case x.Rank() == 0 || x.Shape[0] != n || n == 0:
		return nil, fmt.Errorf("train: %d labels for a batch of shape %v", n, x.Shape)
	case cfg.Epochs <= 0 || cfg.BatchSize <= 0 || cfg.ChunkSize < 0:
		return nil, fmt.Errorf("train: epochs %d, batch size %d, chunk size %d: want positive", cfg.Epochs, cfg.BatchSize, cfg.ChunkSize)
	case cfg.Optimizer == nil || cfg.Schedule == nil || cfg.Rand == nil:
		return nil, errors.New("train: Optimizer, Schedule and Rand must be set")
	case len(g.Trainable) == 0:
		return nil, errors.New("train: graph has no trainable params")
	case !(cfg.NoiseSigma >= 0) || math.IsInf(cfg.NoiseSigma, 0):
		return nil, fmt.Errorf("train: noise σ %v: want finite and non-negative", cfg.NoiseSigma)
	}
	params := make([]*Tensor, len(g.Trainable))
	for i, name := range g.Trainable {
		if params[i] = g.Params[name]; params[i] == nil {
			return nil, fmt.Errorf("train: trainable %q is not a param", name)
		}
	}
	if cfg.ChunkSize == 0 {
		cfg.ChunkSize = 16
	}
	if cfg.Loss == nil {
		cfg.Loss = CrossEntropy{}
	}
	per := x.Len() / n
	stepsPerEpoch := (n + cfg.BatchSize - 1) / cfg.BatchSize
	total := cfg.Epochs * stepsPerEpoch
	var stats []EpochStats
	for epoch := 0; epoch < cfg.Epochs; epoch++ {
		start := time.Now()
		perm := cfg.Rand.Perm(n)
		var lossSum float64
		var correct int
		var lr float64
		for b := 0; b < stepsPerEpoch; b++ {
			idx := perm[b*cfg.BatchSize : min((b+1)*cfg.BatchSize, n)]
			xb := NewTensor(append([]int{len(idx)}, x.Shape[1:]...)...)
			yb := make([]int, len(idx))
			for i, j := range idx {
				copy(xb.Data[i*per:(i+1)*per], x.Data[j*per:(j+1)*per])
				yb[i] = labels[j]
			}
			addGaussianNoise(xb.Data, cfg.NoiseSigma, cfg.Rand)
			if cfg.Prepare != nil {
				var err error
				if xb, yb, err = cfg.Prepare(epoch, b, xb, yb); err != nil {
					return stats, fmt.Errorf("train: epoch %d batch %d: %w", epoch+1, b+1, err)
				}
				if xb == nil || xb.Rank() == 0 || xb.Shape[0] != len(yb) || len(yb) == 0 {
					return stats, fmt.Errorf("train: epoch %d batch %d: Prepare returned %d labels for a batch of shape %v", epoch+1, b+1, len(yb), shapeOrNil(xb))
				}
			}
			res, err := batchGrad(g, in.Name, outName, params, xb, yb, cfg)
			if err != nil {
				return stats, fmt.Errorf("train: epoch %d batch %d: %w", epoch+1, b+1, err)
			}
			if math.IsNaN(res.loss) || math.IsInf(res.loss, 0) {
				return stats, fmt.Errorf("train: epoch %d batch %d: loss is %v (diverged; lower the learning rate)", epoch+1, b+1, res.loss)
			}
			lossSum += res.loss
			correct += res.correct
			lr = cfg.Schedule(epoch*stepsPerEpoch+b, total)
			if err := cfg.Optimizer.Step(params, res.grads, lr); err != nil {
				return stats, fmt.Errorf("train: epoch %d batch %d: %w", epoch+1, b+1, err)
			}
		}
		s := EpochStats{Epoch: epoch + 1, Loss: lossSum / float64(n), Accuracy: float64(correct) / float64(n),
			LR: lr, Duration: time.Since(start)}
		stats = append(stats, s)
		if cfg.OnEpoch != nil {
			if err := cfg.OnEpoch(s); err != nil {
				return stats, err
			}
		}
	}
	return stats, nil
}

// addGaussianNoise adds σ·z to each x[i] in index order, z ~ N(0,1) from r; σ = 0
// leaves x and r untouched.
func addGaussianNoise(x []float64, sigma float64, r *rand.Rand) {
	if sigma == 0 {
		return
	}
	for i := range x {
		x[i] += sigma * r.NormFloat64()
	}
}

// shapeOrNil is t's shape, or nil for a nil tensor (for error messages).
func shapeOrNil(t *Tensor) []int {
	if t == nil {
		return nil
	}
	return t.Shape
}

// ParamGrad returns the mean loss of g on the batch (x, labels), how many rows g
// classifies correctly, and the gradient of the mean loss with respect to each of
// g.Trainable, in that order. It is Train's gradient step without the update, for
// training loops Train does not cover (a generator trained against a classifier,
// say): chunks of chunkSize rows (0: 16) run on all cores and their gradients are
// summed in chunk order, so the result does not depend on GOMAXPROCS.
func ParamGrad(g *Graph, x *Tensor, labels []int, loss Loss, chunkSize int) (float64, int, []*Tensor, error) {
	in, outName, err := g.single()
	if err != nil {
		return 0, 0, nil, fmt.Errorf("param grad: %w", err)
	}
	if x == nil || x.Rank() == 0 || x.Shape[0] != len(labels) || len(labels) == 0 {
		return 0, 0, nil, fmt.Errorf("param grad: %d labels for a batch of shape %v", len(labels), shapeOrNil(x))
	}
	if chunkSize < 0 {
		return 0, 0, nil, fmt.Errorf("param grad: chunk size %d", chunkSize)
	}
	if chunkSize == 0 {
		chunkSize = 16
	}
	if loss == nil {
		loss = CrossEntropy{}
	}
	params := make([]*Tensor, len(g.Trainable))
	for i, name := range g.Trainable {
		if params[i] = g.Params[name]; params[i] == nil {
			return 0, 0, nil, fmt.Errorf("param grad: trainable %q is not a param", name)
		}
	}
	res, err := batchGrad(g, in.Name, outName, params, x, labels, TrainConfig{ChunkSize: chunkSize, Loss: loss})
	if err != nil {
		return 0, 0, nil, fmt.Errorf("param grad: %w", err)
	}
	return res.loss / float64(len(labels)), res.correct, res.grads, nil
}

// batchResult is one minibatch's summed loss, correct count and mean-loss gradients
// (one per trainable param).
type batchResult struct {
	loss    float64
	correct int
	grads   []*Tensor
}

// batchGrad computes the gradient of the mean loss over a minibatch: chunks of
// cfg.ChunkSize rows go through forward and backward on all cores, and their
// gradients (each already divided by the minibatch size) are summed in chunk order.
func batchGrad(g *Graph, inName, outName string, params []*Tensor, xb *Tensor, yb []int, cfg TrainConfig) (batchResult, error) {
	bs := len(yb)
	nChunks := (bs + cfg.ChunkSize - 1) / cfg.ChunkSize
	parts := make([]batchResult, nChunks)
	errs := make([]error, nChunks)
	work := make(chan int, nChunks)
	for c := 0; c < nChunks; c++ {
		work <- c
	}
	close(work)
	var wg sync.WaitGroup
	for w := 0; w < min(runtime.GOMAXPROCS(0), nChunks); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range work {
				lo, hi := c*cfg.ChunkSize, min((c+1)*cfg.ChunkSize, bs)
				parts[c], errs[c] = chunkGrad(g, inName, outName, sliceRows(xb, lo, hi), yb[lo:hi], bs, cfg.Loss)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return batchResult{}, err
	}
	sum := batchResult{loss: parts[0].loss, correct: parts[0].correct, grads: make([]*Tensor, len(params))}
	for i, gr := range parts[0].grads {
		sum.grads[i] = gr.Clone() // ours to add into, whatever Backward aliased
	}
	for _, p := range parts[1:] {
		sum.loss += p.loss
		sum.correct += p.correct
		for i, gr := range p.grads {
			for k, v := range gr.Data {
				sum.grads[i].Data[k] += v
			}
		}
	}
	return sum, nil
}

// chunkGrad runs one chunk forward and backward. The loss gradient is divided by
// the whole minibatch size bs, so that chunk gradients add up to the mean's.
func chunkGrad(g *Graph, inName, outName string, xc *Tensor, yc []int, bs int, loss Loss) (batchResult, error) {
	vals, err := g.Forward(map[string]*Tensor{inName: xc})
	if err != nil {
		return batchResult{}, err
	}
	logits := vals[outName]
	lv, dl, err := loss.Eval(logits, yc)
	if err != nil {
		return batchResult{}, err
	}
	var r batchResult
	for i, v := range lv {
		r.loss += v
		if logits.Row(i).Argmax()[0] == yc[i] {
			r.correct++
		}
	}
	inv := 1 / float64(bs)
	for i := range dl.Data {
		dl.Data[i] *= inv
	}
	grads, err := g.Backward(vals, map[string]*Tensor{outName: dl}, true)
	if err != nil {
		return batchResult{}, err
	}
	r.grads = make([]*Tensor, len(g.Trainable))
	for i, name := range g.Trainable {
		gr, ok := grads[name]
		if !ok {
			return batchResult{}, fmt.Errorf("trainable %q does not reach the loss", name)
		}
		if p := g.Params[name]; !SameShape(gr.Shape, p.Shape) {
			return batchResult{}, fmt.Errorf("gradient of %q has shape %v, param %v", name, gr.Shape, p.Shape)
		}
		r.grads[i] = gr
	}
	return r, nil
}
