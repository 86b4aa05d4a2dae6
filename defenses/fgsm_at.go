package defenses

import (
	"errors"
	"fmt"

	"github.com/certify-dev/certify/attacks"
	"github.com/certify-dev/certify/nets"
)

// FGSMTraining is the adversarial training of Goodfellow, Shlens & Szegedy,
// "Explaining and Harnessing Adversarial Examples", ICLR 2015, eq. (6): with
// α = CleanWeight, every minibatch minimises
//
//	J̃(θ, x, y) = α·J(θ, x, y) + (1 − α)·J(θ, x + ε·sign(∇ₓ J(θ, x, y)), y)
//
// (the paper: α = 0.5), the FGSM point clipped to the data domain [0, 1] and
// crafted on the network being trained, at its current weights, before the step.
// J is cfg.Loss (cross-entropy when nil). CleanWeight is taken literally: 0 trains
// on FGSM points only, 1 is plain training (no point is crafted).
//
// The FGSM point is attacks.FGSM's (the same sign step, projected by
// attacks.Budget.Project), but attacks.FGSM.Attack itself is not called: its
// result resets to x the rows the model still classifies correctly, while the
// defense needs the FGSM point of every row. With cfg.NoiseSigma > 0 the noisy
// minibatch is the centre of the ball. FGSM draws no random numbers; Seed is kept
// so that every recipe is built alike.
type FGSMTraining struct {
	Eps         float64 // L∞ radius ε, in (0, 1]
	CleanWeight float64 // α in [0, 1]; the paper's 0.5
	Seed        uint64
}

// Name is "fgsm-at".
func (FGSMTraining) Name() string { return "fgsm-at" }

// Train fits g on d as the FGSMTraining doc says, through nets.Train with cfg (its
// own copy: a Prepare hook crafts each minibatch's FGSM rows, after cfg.Prepare if
// one is set). EpochStats report the α-mixed loss and the accuracy on the clean
// rows of the minibatches (on the FGSM rows when α = 0).
func (t FGSMTraining) Train(g *nets.Graph, d Data, cfg nets.TrainConfig) ([]nets.EpochStats, error) {
	craft, err := t.crafter(g, d, cfg)
	if err != nil {
		return nil, err
	}
	return atTrain(t.Name(), g, d, cfg, t.CleanWeight, craft)
}

// crafter validates t and returns its attack on g.
func (t FGSMTraining) crafter(g *nets.Graph, d Data, cfg nets.TrainConfig) (atCrafter, error) {
	name := t.Name()
	if err := atCheckEps(name, t.Eps); err != nil {
		return nil, err
	}
	if err := atCheckWeight(name, t.CleanWeight); err != nil {
		return nil, err
	}
	if err := atCheckData(name, g, d); err != nil {
		return nil, err
	}
	loss := atLossOrCE(cfg.Loss)
	return func(_ int, x *nets.Tensor, y []int) (*nets.Tensor, error) {
		return atFGSM(g, loss, x, y, t.Eps)
	}, nil
}

// atBudget is the threat model every recipe here trains against: L∞ ball of radius
// eps, data domain [0, 1].
func atBudget(eps float64) attacks.Budget {
	return attacks.Budget{Norm: attacks.LInf, Eps: eps, Lo: 0, Hi: 1}
}

// atFGSM returns Π(x + ε·sign(∇ₓ J(x, y))) for every row of x, the gradient
// from m.LossGrad, Π the projection onto the ε-ball ∩ [0, 1] (attacks.Budget.Project,
// as attacks.FGSM), whether or not the point is misclassified. A zero gradient
// coordinate does not move.
func atFGSM(m nets.Differentiable, loss nets.Loss, x *nets.Tensor, y []int, eps float64) (*nets.Tensor, error) {
	_, grad, err := m.LossGrad(x, y, loss)
	if err != nil {
		return nil, fmt.Errorf("fgsm: %w", err)
	}
	if grad == nil || grad.Len() != x.Len() {
		return nil, fmt.Errorf("fgsm: model returned a gradient of shape %v for a batch of shape %v", atShape(grad), x.Shape)
	}
	adv := x.Clone()
	atSignStep(atBudget(eps), adv, x, grad, eps)
	return adv, nil
}

// atSignStep moves every row of adv by step·sign(grad) and projects it onto the
// budget around its row of x.
func atSignStep(b attacks.Budget, adv, x, grad *nets.Tensor, step float64) {
	for k, v := range grad.Data {
		switch {
		case v > 0:
			adv.Data[k] += step
		case v < 0:
			adv.Data[k] -= step
		}
	}
	n := x.Shape[0]
	per := x.Len() / n
	for i := 0; i < n; i++ {
		b.Project(adv.Data[i*per:(i+1)*per], x.Data[i*per:(i+1)*per])
	}
}

func atShape(t *nets.Tensor) []int {
	if t == nil {
		return nil
	}
	return t.Shape
}

// atCrafter returns the adversarial rows of a minibatch x (labels y) at global step
// gstep (epoch·steps per epoch + step, 0-based).
type atCrafter func(gstep int, x *nets.Tensor, y []int) (*nets.Tensor, error)

// atTrain runs nets.Train on atConfig's copy of cfg and corrects the statistics
// of doubled minibatches (see atHalfStats).
func atTrain(name string, g *nets.Graph, d Data, cfg nets.TrainConfig, w float64, craft atCrafter) ([]nets.EpochStats, error) {
	cfg, mixed, err := atConfig(name, len(d.Labels), cfg, w, craft)
	if err != nil {
		return nil, err
	}
	stats, err := nets.Train(g, d.X, d.Labels, cfg)
	if mixed {
		for i := range stats {
			stats[i] = atHalfStats(stats[i])
		}
	}
	if err != nil {
		return stats, fmt.Errorf("%s: %w", name, err)
	}
	return stats, nil
}

// atConfig returns a copy of cfg (for n training rows) whose Prepare replaces each
// minibatch (x, y), after cfg.Prepare if set, by the rows the mean loss
//
//	w·mean J(clean rows) + (1 − w)·mean J(crafted rows)
//
// is exactly computed from: the crafted rows alone when w = 0, x itself when w = 1
// (nothing is crafted), else clean and crafted rows side by side, the crafted ones
// labelled −1 − y so that atMixLoss weighs each row (2w or 2(1 − w): their mean
// over the 2B rows is the mix above, whatever chunks Train cuts the batch into).
// mixed reports the last case, in which OnEpoch sees corrected statistics.
func atConfig(name string, n int, cfg nets.TrainConfig, w float64, craft atCrafter) (nets.TrainConfig, bool, error) {
	if cfg.BatchSize <= 0 {
		return cfg, false, fmt.Errorf("%s: batch size %d: want positive", name, cfg.BatchSize)
	}
	perEpoch := (n + cfg.BatchSize - 1) / cfg.BatchSize
	user := cfg.Prepare
	mixed := w > 0 && w < 1
	cfg.Prepare = func(epoch, step int, x *nets.Tensor, y []int) (*nets.Tensor, []int, error) {
		if user != nil {
			var err error
			if x, y, err = user(epoch, step, x, y); err != nil {
				return nil, nil, err
			}
		}
		if w == 1 {
			return x, y, nil
		}
		adv, err := craft(epoch*perEpoch+step, x, y)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", name, err)
		}
		if !mixed {
			return adv, y, nil
		}
		both := nets.NewTensor(append([]int{2 * x.Shape[0]}, x.Shape[1:]...)...)
		copy(both.Data, x.Data)
		copy(both.Data[x.Len():], adv.Data)
		labels := make([]int, 2*len(y))
		copy(labels, y)
		for i, c := range y {
			labels[len(y)+i] = -1 - c
		}
		return both, labels, nil
	}
	if mixed {
		cfg.Loss = atMixLoss{inner: atLossOrCE(cfg.Loss), clean: 2 * w, adv: 2 * (1 - w)}
		if on := cfg.OnEpoch; on != nil {
			cfg.OnEpoch = func(s nets.EpochStats) error { return on(atHalfStats(s)) }
		}
	}
	return cfg, mixed, nil
}

// atHalfStats corrects nets.Train's statistics of an epoch of doubled minibatches:
// Train divides the summed row losses by the data size, twice the mixed loss; its
// correct count holds the clean rows only (crafted rows carry negative labels).
func atHalfStats(s nets.EpochStats) nets.EpochStats {
	s.Loss /= 2
	return s
}

// atMixLoss is inner on rows labelled y ≥ 0 (clean, times the weight clean) and on
// rows labelled −1 − y (crafted, label y, times the weight adv).
type atMixLoss struct {
	inner      nets.Loss
	clean, adv float64
}

func (l atMixLoss) Eval(logits *nets.Tensor, labels []int) ([]float64, *nets.Tensor, error) {
	ys := make([]int, len(labels))
	for i, y := range labels {
		ys[i] = y
		if y < 0 {
			ys[i] = -1 - y
		}
	}
	v, grad, err := l.inner.Eval(logits, ys)
	if err != nil {
		return nil, nil, err
	}
	if len(v) != len(labels) || grad == nil || grad.Len()%max(len(labels), 1) != 0 {
		return nil, nil, errors.New("mix loss: inner loss returned values or a gradient of the wrong size")
	}
	k := grad.Len() / max(len(labels), 1)
	for i, y := range labels {
		s := l.clean
		if y < 0 {
			s = l.adv
		}
		v[i] *= s
		for j := i * k; j < (i+1)*k; j++ {
			grad.Data[j] *= s
		}
	}
	return v, grad, nil
}

func atLossOrCE(l nets.Loss) nets.Loss {
	if l == nil {
		return nets.CrossEntropy{}
	}
	return l
}

// atCheckEps checks an L∞ radius: finite, in (0, 1] (the data domain is [0, 1]).
func atCheckEps(name string, eps float64) error {
	if !(eps > 0 && eps <= 1) {
		return fmt.Errorf("%s: ε = %v: want a radius in (0, 1]", name, eps)
	}
	return nil
}

// atCheckWeight checks a clean-loss weight: in [0, 1].
func atCheckWeight(name string, w float64) error {
	if !(w >= 0 && w <= 1) {
		return fmt.Errorf("%s: clean weight %v: want a value in [0, 1]", name, w)
	}
	return nil
}

// atCheckData checks the graph and the training set: one label per row, every value
// in the data domain [0, 1] the attacks clip to.
func atCheckData(name string, g *nets.Graph, d Data) error {
	if g == nil {
		return fmt.Errorf("%s: no graph", name)
	}
	if d.X == nil || d.X.Rank() < 2 || d.X.Shape[0] != len(d.Labels) || len(d.Labels) == 0 {
		return fmt.Errorf("%s: %d labels for training data of shape %v", name, len(d.Labels), atShape(d.X))
	}
	per := d.X.Len() / d.X.Shape[0]
	for k, v := range d.X.Data {
		if !(v >= 0 && v <= 1) {
			return fmt.Errorf("%s: training row %d, value %d is %v, outside the data domain [0, 1]", name, k/per, k%per, v)
		}
	}
	for i, y := range d.Labels {
		if y < 0 {
			return fmt.Errorf("%s: training row %d has label %d", name, i, y)
		}
	}
	return nil
}

// atStepSeed mixes a recipe's seed with a global step index (SplitMix64's finaliser,
// Steele, Lea & Flood, OOPSLA 2014), so that each minibatch's attack gets its own
// random starts; row i of the batch then draws from attacks.RowRand(atStepSeed, i).
func atStepSeed(seed uint64, gstep int) uint64 {
	z := seed + (uint64(gstep)+1)*0x9e3779b97f4a7c15
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}
