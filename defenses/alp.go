package defenses

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/certify-dev/certify/nets"
)

// ALP is adversarial logit pairing (Kannan, Kurakin & Goodfellow, "Adversarial
// Logit Pairing", 2018): adversarial training on mixed minibatches of clean and
// adversarial rows, plus a penalty on the distance between the logits z of each
// clean row and of its adversarial copy. For a minibatch
// (x_i, y_i), i = 1..B, the step minimises
//
//	J = (1/B) Σ_i [ ½ CE(z(x_i), y_i) + ½ CE(z(x̃_i), y_i) + λ ‖z(x_i) − z(x̃_i)‖₂² ]
//
// where x̃_i is an L∞ PGD example (Madry et al., ICLR 2018) crafted on the current
// model: a uniform random start in the ε-ball (clipped to the data domain [0,1]),
// then Steps steps x ← Π(x + Step·sign(∇ₓ CE)) with Π the projection onto the ball
// ∩ [0,1]; x̃ is the last iterate, whether it fools the model or not. ‖·‖₂² sums
// over the K classes: an implementation that weights the mean squared logit
// difference (averaged over the K logits too) by λ' has λ = λ'/K. λ = 0 is
// mixed-minibatch PGD adversarial training.
//
// The minibatch the step fits is x0, x̃0, x1, x̃1, ... (cfg.Prepare), with a loss
// that pairs rows 2i and 2i+1 and an even cfg.ChunkSize, so no pair is split
// between chunks; the mean over the 2B rows is J. The random starts of global step
// s (epoch·steps-per-epoch + step) come from a PCG seeded by (Seed, s), drawn in
// row-major order, so the same seed gives bit-identical weights on any number of
// cores. Train returns statistics over the pairs: Loss is the mean of J's summand,
// Accuracy the mean of the clean and the adversarial accuracy.
//
// Parameters: Eps ∈ (0,1] the L∞ radius (inputs are in [0,1]), Step > 0, Steps ≥ 1,
// Lambda ≥ 0 (finite). On MNIST at ε = 0.3, λ = 0.5 (a weight of 5 on the mean
// squared difference) pins the logits together from the start: nets.MNISTCNN
// trained 2 epochs on 10000 images collapsed to 13% clean accuracy, where
// λ = 0.05 reached 90%. The recipe sets cfg.Prepare and cfg.Loss (both must be
// unset, or the loss cross-entropy) and needs cfg.NoiseSigma = 0. Cost per
// minibatch: Steps input-gradient passes on B rows, then one training step on 2B.
type ALP struct {
	Eps, Step float64
	Steps     int
	Lambda    float64
	Seed      uint64
}

// Name is "alp".
func (ALP) Name() string { return "alp" }

// Train fits g by adversarial logit pairing (see ALP).
func (a ALP) Train(g *nets.Graph, d Data, cfg nets.TrainConfig) ([]nets.EpochStats, error) {
	if err := a.validate(g, d, cfg); err != nil {
		return nil, fmt.Errorf("alp: %w", err)
	}
	if cfg.ChunkSize == 0 {
		cfg.ChunkSize = 16
	}
	stepsPerEpoch := (len(d.Labels) + cfg.BatchSize - 1) / cfg.BatchSize
	scfg := cfg
	scfg.Loss = alpPairLoss{Lambda: a.Lambda}
	scfg.Prepare = func(epoch, step int, x *nets.Tensor, labels []int) (*nets.Tensor, []int, error) {
		r := rand.New(rand.NewPCG(a.Seed, uint64(epoch*stepsPerEpoch+step)))
		adv, err := alpPGD(g, x, labels, a.Eps, a.Step, a.Steps, r)
		if err != nil {
			return nil, nil, fmt.Errorf("pgd: %w", err)
		}
		return alpInterleave(x, adv, labels), alpPairLabels(labels), nil
	}
	// Train divides by the number of clean rows: halve to get means over pairs.
	var stats []nets.EpochStats
	scfg.OnEpoch = func(s nets.EpochStats) error {
		s.Loss /= 2
		s.Accuracy /= 2
		stats = append(stats, s)
		if cfg.OnEpoch != nil {
			return cfg.OnEpoch(s)
		}
		return nil
	}
	if _, err := nets.Train(g, d.X, d.Labels, scfg); err != nil {
		return stats, fmt.Errorf("alp: %w", err)
	}
	return stats, nil
}

// validate checks the recipe's fields, the config and the data domain.
func (a ALP) validate(g *nets.Graph, d Data, cfg nets.TrainConfig) error {
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	switch {
	case !finite(a.Eps) || a.Eps <= 0 || a.Eps > 1:
		return fmt.Errorf("eps %v: want in (0,1] (inputs in [0,1])", a.Eps)
	case !finite(a.Step) || a.Step <= 0:
		return fmt.Errorf("step %v: want finite and > 0", a.Step)
	case a.Steps < 1:
		return fmt.Errorf("steps %d: want ≥ 1", a.Steps)
	case !finite(a.Lambda) || a.Lambda < 0:
		return fmt.Errorf("lambda %v: want finite and ≥ 0", a.Lambda)
	case g == nil:
		return errors.New("no graph")
	case cfg.Prepare != nil:
		return errors.New("cfg.Prepare is set: ALP brings its own (the PGD examples)")
	case cfg.NoiseSigma != 0:
		return fmt.Errorf("cfg.NoiseSigma %v: ALP attacks the data as it is, want 0", cfg.NoiseSigma)
	case cfg.ChunkSize%2 != 0:
		return fmt.Errorf("chunk size %d: want even, so that a clean row and its PGD copy share a chunk", cfg.ChunkSize)
	case d.X == nil || d.X.Rank() == 0 || d.X.Shape[0] != len(d.Labels) || len(d.Labels) == 0:
		return fmt.Errorf("%d labels for a training set of shape %v", len(d.Labels), distillShape(d.X))
	}
	if err := checkOwnLoss(cfg.Loss); err != nil {
		return err
	}
	per := d.X.Len() / len(d.Labels)
	for i, v := range d.X.Data {
		if !(v >= 0 && v <= 1) {
			return fmt.Errorf("row %d, value %d is %v: ALP's PGD works in the domain [0,1]", i/per, i%per, v)
		}
	}
	return nil
}

// alpPGD returns the last iterate of L∞ PGD on the cross-entropy of g from a
// uniform random start in the ε-ball around x ∩ [0,1] (drawn from r in row-major
// order), steps steps of size step, each projected onto the ball ∩ [0,1].
// Unlike attacks.PGD it keeps every row's last iterate, fooling or not, as
// adversarial training does. g.LossGrad splits the batch independently of the
// number of cores, so the result depends only on x, labels, g and r.
func alpPGD(g *nets.Graph, x *nets.Tensor, labels []int, eps, step float64, steps int, r *rand.Rand) (*nets.Tensor, error) {
	adv := x.Clone()
	for i, v := range x.Data {
		adv.Data[i] = min(max(v+eps*(2*r.Float64()-1), 0), 1)
	}
	for s := 0; s < steps; s++ {
		_, grad, err := g.LossGrad(adv, labels, nets.CrossEntropy{})
		if err != nil {
			return nil, fmt.Errorf("step %d: %w", s+1, err)
		}
		atSignStep(atBudget(eps), adv, x, grad, step)
	}
	return adv, nil
}

// alpInterleave returns the rows x0, a0, x1, a1, ... of two batches of one shape.
func alpInterleave(x, a *nets.Tensor, labels []int) *nets.Tensor {
	n := len(labels)
	per := x.Len() / n
	out := nets.NewTensor(append([]int{2 * n}, x.Shape[1:]...)...)
	for i := 0; i < n; i++ {
		copy(out.Data[2*i*per:(2*i+1)*per], x.Data[i*per:(i+1)*per])
		copy(out.Data[(2*i+1)*per:(2*i+2)*per], a.Data[i*per:(i+1)*per])
	}
	return out
}

// alpPairLabels returns y0, y0, y1, y1, ...
func alpPairLabels(labels []int) []int {
	out := make([]int, 2*len(labels))
	for i, y := range labels {
		out[2*i], out[2*i+1] = y, y
	}
	return out
}

// alpPairLoss is ALP's loss on interleaved pairs (rows 2i, 2i+1: a clean row and its
// adversarial copy, same label): with Δ_i = z_{2i} − z_{2i+1}, row 2i+c (c = 0, 1)
// scores
//
//	v_{2i+c} = CE(z_{2i+c}, y_i) + λ ‖Δ_i‖₂²,
//
// so the mean over the 2B rows is ALP's J. The rows of a pair are coupled: the
// gradient returned is that of the sum of the values,
//
//	∂/∂z_{2i} = softmax(z_{2i}) − e_y + 4λ Δ_i,   ∂/∂z_{2i+1} = softmax(z_{2i+1}) − e_y − 4λ Δ_i,
//
// which is what a training step needs. It refuses an odd number of rows or a pair
// with two labels (a chunk that split a pair).
type alpPairLoss struct{ Lambda float64 }

func (l alpPairLoss) Eval(logits *nets.Tensor, labels []int) ([]float64, *nets.Tensor, error) {
	if len(labels)%2 != 0 {
		return nil, nil, fmt.Errorf("logit pairing loss: %d rows: want an even number (clean, adversarial pairs)", len(labels))
	}
	for i := 0; i < len(labels); i += 2 {
		if labels[i] != labels[i+1] {
			return nil, nil, fmt.Errorf("logit pairing loss: rows %d and %d are labelled %d and %d: not a pair", i, i+1, labels[i], labels[i+1])
		}
	}
	vals, grad, err := nets.CrossEntropy{}.Eval(logits, labels)
	if err != nil {
		return nil, nil, fmt.Errorf("logit pairing loss: %w", err)
	}
	k := logits.Shape[1]
	for i := 0; i < len(labels); i += 2 {
		za, zb := logits.Data[i*k:(i+1)*k], logits.Data[(i+1)*k:(i+2)*k]
		ga, gb := grad.Data[i*k:(i+1)*k], grad.Data[(i+1)*k:(i+2)*k]
		sq := 0.0
		for j := range za {
			dj := za[j] - zb[j]
			sq += dj * dj
			ga[j] += 4 * l.Lambda * dj
			gb[j] -= 4 * l.Lambda * dj
		}
		vals[i] += l.Lambda * sq
		vals[i+1] += l.Lambda * sq
	}
	return vals, grad, nil
}
