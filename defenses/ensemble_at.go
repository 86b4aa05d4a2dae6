package defenses

import (
	"fmt"

	"github.com/certify-dev/certify/nets"
)

// EnsembleTraining is Ensemble Adversarial Training of Tramèr, Kurakin, Papernot,
// Goodfellow, Boneh & McDaniel, "Ensemble Adversarial Training: Attacks and
// Defenses", ICLR 2018, Sec. 3.1 and Algorithm 1: adversarial examples are crafted
// not only on the model being trained but also on fixed, separately trained
// (static) models, which decouples their generation from the parameters being
// optimised. Each minibatch's loss is
//
//	½·mean J(θ, x, y) + ½·mean J(θ, x̃, y),   x̃ = Π(x + ε·sign(∇ₓ J_src(x, y)))
//
// with the FGSM point x̃ (clipped to [0, 1]) crafted on one source: at global step
// s (epoch·steps per epoch + step, 0-based) the source is s mod (1 + len(Static)),
// source 0 being the model being trained (at its current weights) and source j ≥ 1
// Static[j−1], so sources alternate batch by batch as in the paper. J is cfg.Loss
// (cross-entropy when nil); J_src is the same loss on the source's logits.
//
// FGSM draws no random numbers; Seed is kept so that every recipe is built alike.
type EnsembleTraining struct {
	Eps    float64               // L∞ radius in (0, 1]
	Static []nets.Differentiable // pre-trained models, not updated; may be empty
	Seed   uint64

	// sourced, if set, is told which source crafted each step (tests).
	sourced func(gstep, source int)
}

// Name is "ensemble-at".
func (EnsembleTraining) Name() string { return "ensemble-at" }

// Train fits g on d as the EnsembleTraining doc says, through nets.Train with cfg
// (its own copy: a Prepare hook appends each minibatch's FGSM rows, after
// cfg.Prepare if one is set). EpochStats report the mixed loss and the accuracy on
// the clean rows of the minibatches.
func (t EnsembleTraining) Train(g *nets.Graph, d Data, cfg nets.TrainConfig) ([]nets.EpochStats, error) {
	craft, err := t.crafter(g, d, cfg)
	if err != nil {
		return nil, err
	}
	return atTrain(t.Name(), g, d, cfg, 0.5, craft)
}

// crafter validates t and returns its attack, from the source of each step.
func (t EnsembleTraining) crafter(g *nets.Graph, d Data, cfg nets.TrainConfig) (atCrafter, error) {
	name := t.Name()
	if err := atCheckEps(name, t.Eps); err != nil {
		return nil, err
	}
	for i, m := range t.Static {
		if m == nil {
			return nil, fmt.Errorf("%s: static model %d is nil", name, i)
		}
	}
	if err := atCheckData(name, g, d); err != nil {
		return nil, err
	}
	loss := atLossOrCE(cfg.Loss)
	return func(gstep int, x *nets.Tensor, y []int) (*nets.Tensor, error) {
		src := gstep % (1 + len(t.Static))
		if t.sourced != nil {
			t.sourced(gstep, src)
		}
		var m nets.Differentiable = g
		if src > 0 {
			m = t.Static[src-1]
		}
		adv, err := atFGSM(m, loss, x, y, t.Eps)
		if err != nil {
			return nil, fmt.Errorf("source %d: %w", src, err)
		}
		return adv, nil
	}, nil
}
