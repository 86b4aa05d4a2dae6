package defenses

import (
	"fmt"

	"github.com/certify-dev/certify/attacks"
	"github.com/certify-dev/certify/nets"
)

// PGDTraining is the adversarial training of Madry, Makelov, Schmidt, Tsipras &
// Vladu, "Towards Deep Learning Models Resistant to Adversarial Attacks", ICLR
// 2018, eq. (2.1): the saddle-point problem
//
//	min_θ E_(x,y) [ max_{‖δ‖∞ ≤ ε, x+δ ∈ [0,1]} J(θ, x + δ, y) ]
//
// with the inner maximum approximated by PGD on the network being trained: from a
// uniform random start x₀ ~ U(B_ε(x)) ∩ [0, 1], Steps steps
//
//	x_{t+1} = Π_{B_ε(x) ∩ [0,1]}(x_t + Step·sign(∇ₓ J(θ, x_t, y)))
//
// and the minibatch step is taken on the last iterate only (no clean rows), as in
// the paper (their MNIST setting: ε = 0.3, 40 steps of 0.01). J is cfg.Loss
// (cross-entropy when nil).
//
// RampEpochs > 0 ramps the radius linearly, ε_s = Eps·min(1, (s+1)/(RampEpochs·S))
// at global step s with S steps per epoch, and the step size with it (Step·ε_s/Eps),
// which lets small networks start learning at ε = 0.3 (a curriculum in the spirit
// of Cai et al., "Curriculum Adversarial Training", IJCAI 2018; Gowal et al. 2018 ramp
// ε the same way for IBP).
//
// The random start of row i of global step s comes from attacks.RowRand(k, i) with
// k mixing Seed and s, so each minibatch gets fresh starts and training does not
// depend on the number of cores. The steps use attacks' L∞ projection
// (attacks.Budget.Project); attacks.PGD itself is not called because its result
// resets the rows it does not misclassify to x, while training needs every row's
// final iterate.
type PGDTraining struct {
	Eps, Step  float64 // L∞ radius in (0, 1] and step size in (0, Eps]
	Steps      int     // ≥ 1
	RampEpochs int     // ≥ 0; 0 trains at Eps from the first step
	Seed       uint64
}

// Name is "pgd-at".
func (PGDTraining) Name() string { return "pgd-at" }

// Train fits g on d as the PGDTraining doc says, through nets.Train with cfg (its
// own copy: a Prepare hook replaces each minibatch by its PGD points, after
// cfg.Prepare if one is set). EpochStats report loss and accuracy on the PGD rows.
func (t PGDTraining) Train(g *nets.Graph, d Data, cfg nets.TrainConfig) ([]nets.EpochStats, error) {
	craft, err := t.crafter(g, d, cfg)
	if err != nil {
		return nil, err
	}
	return atTrain(t.Name(), g, d, cfg, 0, craft)
}

// crafter validates t and returns its attack on g (the ramp needs cfg.BatchSize).
func (t PGDTraining) crafter(g *nets.Graph, d Data, cfg nets.TrainConfig) (atCrafter, error) {
	name := t.Name()
	if err := atCheckEps(name, t.Eps); err != nil {
		return nil, err
	}
	switch {
	case !(t.Step > 0 && t.Step <= t.Eps):
		return nil, fmt.Errorf("%s: step %v: want a step size in (0, ε = %v]", name, t.Step, t.Eps)
	case t.Steps < 1:
		return nil, fmt.Errorf("%s: %d steps: want at least 1", name, t.Steps)
	case t.RampEpochs < 0:
		return nil, fmt.Errorf("%s: ramp of %d epochs: want 0 or more", name, t.RampEpochs)
	}
	if err := atCheckData(name, g, d); err != nil {
		return nil, err
	}
	if cfg.BatchSize <= 0 {
		return nil, fmt.Errorf("%s: batch size %d: want positive", name, cfg.BatchSize)
	}
	ramp := t.RampEpochs * ((len(d.Labels) + cfg.BatchSize - 1) / cfg.BatchSize)
	loss := atLossOrCE(cfg.Loss)
	return func(gstep int, x *nets.Tensor, y []int) (*nets.Tensor, error) {
		f := 1.0
		if gstep < ramp {
			f = float64(gstep+1) / float64(ramp)
		}
		return atPGD(g, loss, x, y, t.Eps*f, t.Step*f, t.Steps, atStepSeed(t.Seed, gstep))
	}, nil
}

// atPGD returns the last PGD iterate of every row of x (see PGDTraining), row
// i's random start from attacks.RowRand(seed, i).
func atPGD(m nets.Differentiable, loss nets.Loss, x *nets.Tensor, y []int, eps, step float64, steps int, seed uint64) (*nets.Tensor, error) {
	b := atBudget(eps)
	n := x.Shape[0]
	per := x.Len() / n
	adv := x.Clone()
	for i := 0; i < n; i++ {
		r := attacks.RowRand(seed, i)
		row := adv.Data[i*per : (i+1)*per]
		for k := range row {
			row[k] += eps * (2*r.Float64() - 1)
		}
		b.Project(row, x.Data[i*per:(i+1)*per])
	}
	for s := 0; s < steps; s++ {
		_, grad, err := m.LossGrad(adv, y, loss)
		if err != nil {
			return nil, fmt.Errorf("pgd step %d: %w", s+1, err)
		}
		if grad == nil || grad.Len() != x.Len() {
			return nil, fmt.Errorf("pgd step %d: model returned a gradient of shape %v for a batch of shape %v", s+1, atShape(grad), x.Shape)
		}
		atSignStep(b, adv, x, grad, step)
	}
	return adv, nil
}
