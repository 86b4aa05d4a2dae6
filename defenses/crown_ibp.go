package defenses

import "github.com/certify-dev/certify/nets"

// CROWNIBPTraining is CROWN-IBP (Zhang et al., "Towards Stable and Efficient
// Training of Verifiably Robust Neural Networks", ICLR 2020): the worst-case margins
// are
//
//	m = β·m_CROWN-IBP + (1−β)·m_IBP,
//
// m_CROWN-IBP being CROWN's backward bound of the spec z_y − z_j through the whole
// network with IBP's intermediate (pre-activation) bounds, m_IBP the IBP bound (see
// IBPTraining), and the loss is κ·CE(z(x), y) + (1−κ)·CE(−m, y). An unstable ReLU
// (l < 0 < u) is relaxed from below by α·z with the adaptive slope α = 1 if u > −l
// else 0 (held constant in the gradient, as in the paper) and from above by
// u/(u−l)·(z − l) (differentiated through). Over the ramp (RampStart, RampEpochs,
// in fractional epochs advanced every step) ε goes from 0 to Eps, κ from 1 to
// KappaEnd and β from 1 to 0, Zhang et al.'s schedule; after the ramp the loss is
// IBP's. The box is [max(x−ε, 0), min(x+ε, 1)]. Train takes an MLP as nets.MLP
// builds it and trains it in place.
//
// A CROWN-IBP step pushes the K spec rows back through every layer, about K times
// an IBP step's matrix work at the first layer; the epochs wholly outside the ramp
// (before floor(RampStart), where κ = 1, and from ceil(RampStart + RampEpochs) on,
// where β = 0) skip that pass and cost what IBP's do, with the same result.
type CROWNIBPTraining struct {
	Eps                   float64
	RampStart, RampEpochs float64
	KappaEnd              float64
}

// Name is "crown-ibp".
func (CROWNIBPTraining) Name() string { return "crown-ibp" }

// Train fits g's weights with the CROWN-IBP loss; cfg.Loss and cfg.Prepare must be nil.
func (t CROWNIBPTraining) Train(g *nets.Graph, d Data, cfg nets.TrainConfig) ([]nets.EpochStats, error) {
	return trainCertified(t.Name(), certSchedule(t), true, g, d, cfg)
}
