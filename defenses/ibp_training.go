package defenses

import "github.com/certify-dev/certify/nets"

// IBPTraining is interval bound propagation training (Gowal et al., "On the
// Effectiveness of Interval Bound Propagation for Training Verifiably Robust
// Models", 2018): each step minimises
//
//	κ·CE(z(x), y) + (1−κ)·CE(−m(x, ε), y),
//
// m_j(x, ε) being the IBP lower bound of z_y − z_j over the box
// [max(x−ε, 0), min(x+ε, 1)] (the worst-case logits are −m, with the last layer
// folded into the spec, as bounds.SpecIBP). As in their paper, ε ramps linearly from
// 0 to Eps and κ from 1 to KappaEnd (0.5 in the paper) over RampEpochs epochs
// starting at epoch RampStart; both are fractional and the ramp advances every step
// (progress = epoch + step/steps-per-epoch), then ε and κ stay at their final
// values. Gowal et al. train at a larger ε than they evaluate (0.4 for 0.3 on MNIST);
// here the training radius is Eps. Train takes an MLP as nets.MLP builds it
// (Flatten, Gemm/Relu pairs, a last Gemm) or a CNN as nets.MNISTCNN builds it
// (Conv/Relu pairs, Flatten, Gemm/Relu pairs, a last Gemm) and trains it in place.
type IBPTraining struct {
	Eps                   float64
	RampStart, RampEpochs float64
	KappaEnd              float64
}

// Name is "ibp".
func (IBPTraining) Name() string { return "ibp" }

// Train fits g's weights with the IBP loss; cfg.Loss and cfg.Prepare must be nil.
func (t IBPTraining) Train(g *nets.Graph, d Data, cfg nets.TrainConfig) ([]nets.EpochStats, error) {
	return trainCertified(t.Name(), certSchedule(t), false, g, d, cfg)
}
