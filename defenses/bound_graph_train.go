package defenses

import (
	"errors"
	"fmt"
	"math"

	"github.com/certify-dev/certify/nets"
)

// certSchedule is the ramp shared by IBP and CROWN-IBP training (Gowal et al.
// 2018, §4; Zhang et al. 2020, §4): training progress is measured in epochs,
// fractionally, p = epoch + step/stepsPerEpoch at the start of a step, and the ramp
// fraction is r = clamp((p − RampStart)/RampEpochs, 0, 1) (a step at RampStart when
// RampEpochs = 0). Then ε = r·Eps, κ = 1 − r·(1 − KappaEnd) and β = 1 − r.
type certSchedule struct {
	Eps, RampStart, RampEpochs, KappaEnd float64
}

func (s certSchedule) validate(name string) error {
	for _, f := range []struct {
		what string
		v    float64
	}{{"Eps", s.Eps}, {"RampStart", s.RampStart}, {"RampEpochs", s.RampEpochs}, {"KappaEnd", s.KappaEnd}} {
		if math.IsNaN(f.v) || math.IsInf(f.v, 0) || f.v < 0 {
			return fmt.Errorf("%s: %s = %v: want finite and non-negative", name, f.what, f.v)
		}
	}
	if s.KappaEnd > 1 {
		return fmt.Errorf("%s: KappaEnd = %v: want it in [0, 1]", name, s.KappaEnd)
	}
	if s.Eps > 1 {
		return fmt.Errorf("%s: Eps = %v: the data domain is [0, 1]", name, s.Eps)
	}
	return nil
}

// at returns ε, κ and β at progress p (in epochs).
func (s certSchedule) at(p float64) (eps, kappa, beta float64) {
	r := 1.0
	if s.RampEpochs > 0 {
		r = min(max((p-s.RampStart)/s.RampEpochs, 0), 1)
	} else if p < s.RampStart {
		r = 0
	}
	return r * s.Eps, 1 - r*(1-s.KappaEnd), 1 - r
}

// boundLoss is κ·CE(z(x), y) + (1−κ)·CE(−m(x, ε), y) on the bound graph's output
// [z | m], −m being the worst-case logits of Gowal et al. (2018), eq. 7 (−m_y = 0).
type boundLoss struct {
	classes int
	kappa   float64
}

func (l *boundLoss) Eval(out *nets.Tensor, labels []int) ([]float64, *nets.Tensor, error) {
	k, n := l.classes, len(labels)
	if out.Rank() != 2 || out.Shape[0] != n || out.Shape[1] != 2*k {
		return nil, nil, fmt.Errorf("bound loss: output %v for %d labels and %d classes", out.Shape, n, k)
	}
	clean, worst := nets.NewTensor(n, k), nets.NewTensor(n, k)
	for i := 0; i < n; i++ {
		copy(clean.Data[i*k:(i+1)*k], out.Data[i*2*k:i*2*k+k])
		for j := 0; j < k; j++ {
			worst.Data[i*k+j] = -out.Data[i*2*k+k+j]
		}
	}
	cv, cg, err := nets.CrossEntropy{}.Eval(clean, labels)
	if err != nil {
		return nil, nil, fmt.Errorf("bound loss: %w", err)
	}
	wv, wg, err := nets.CrossEntropy{}.Eval(worst, labels)
	if err != nil {
		return nil, nil, fmt.Errorf("bound loss: %w", err)
	}
	vals := make([]float64, n)
	grad := nets.NewTensor(out.Shape...)
	for i := range vals {
		vals[i] = l.kappa*cv[i] + (1-l.kappa)*wv[i]
		for j := 0; j < k; j++ {
			grad.Data[i*2*k+j] = l.kappa * cg.Data[i*k+j]
			grad.Data[i*2*k+k+j] = -(1 - l.kappa) * wg.Data[i*k+j]
		}
	}
	return vals, grad, nil
}

// trainCertified trains g (an MLP, or for IBP a CNN) on d with the bound loss of
// its bound graph (crown: the CROWN-IBP mix), the schedule updated before every
// step by cfg.Prepare. The recipe owns cfg.Loss and cfg.Prepare: they must be unset.
// EpochStats.Accuracy counts the rows whose argmax over [z | m] is the label, which
// is neither the clean nor the certified accuracy; measure those with bounds.
func trainCertified(name string, s certSchedule, crown bool, g *nets.Graph, d Data, cfg nets.TrainConfig) ([]nets.EpochStats, error) {
	if err := s.validate(name); err != nil {
		return nil, err
	}
	if g == nil || d.X == nil {
		return nil, fmt.Errorf("%s: nil graph or data", name)
	}
	if cfg.Loss != nil || cfg.Prepare != nil {
		return nil, errors.New(name + ": the recipe sets cfg.Loss and cfg.Prepare itself; leave them nil")
	}
	if cfg.BatchSize <= 0 || cfg.Epochs <= 0 || len(d.Labels) == 0 {
		return nil, fmt.Errorf("%s: %d epochs, batch size %d, %d labels: want all positive", name, cfg.Epochs, cfg.BatchSize, len(d.Labels))
	}
	if cfg.Optimizer == nil || cfg.Schedule == nil || cfg.Rand == nil {
		return nil, errors.New(name + ": cfg.Optimizer, cfg.Schedule and cfg.Rand must be set")
	}
	// The bound graph's input box [relu(x−ε), 1−relu(1−x−ε)] is the ε-box clipped
	// to [0, 1] only for x in [0, 1]; outside it the box turns inside out and the
	// "lower bounds" can exceed the true margins. So neither data outside the
	// domain nor Gaussian augmentation (which leaves it) is allowed.
	if cfg.NoiseSigma != 0 {
		return nil, fmt.Errorf("%s: cfg.NoiseSigma %g: certified training bounds boxes inside [0, 1]; noise would leave it", name, cfg.NoiseSigma)
	}
	if err := atCheckData(name, g, d); err != nil {
		return nil, err
	}
	bg, err := newBoundGraph(g, crown)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if d.X.Rank() == 0 || d.X.Shape[0] != len(d.Labels) || d.X.Len() != len(d.Labels)*bg.in {
		return nil, fmt.Errorf("%s: data of shape %v for %d labels; the network takes %d values per row", name, d.X.Shape, len(d.Labels), bg.in)
	}
	spe := (len(d.Labels) + cfg.BatchSize - 1) / cfg.BatchSize
	phases, err := certPhases(bg, g, s, crown, cfg.Epochs)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	loss := &boundLoss{classes: bg.classes, kappa: 1}
	total := cfg.Epochs * spe
	var stats []nets.EpochStats
	done := 0 // epochs trained before the phase
	for _, ph := range phases {
		pc := cfg
		pc.Epochs = ph.epochs
		pc.Loss = loss
		first, bg := done, ph.bg
		pc.Schedule = func(step, _ int) float64 { return cfg.Schedule(first*spe+step, total) }
		pc.Prepare = func(epoch, step int, x *nets.Tensor, labels []int) (*nets.Tensor, []int, error) {
			eps, kappa, beta := s.at(float64(first+epoch) + float64(step)/float64(spe))
			bg.setSchedule(eps, beta)
			loss.kappa = kappa
			rows, err := bg.rows(x, labels)
			return rows, labels, err
		}
		if cfg.OnEpoch != nil {
			pc.OnEpoch = func(e nets.EpochStats) error {
				e.Epoch += first
				return cfg.OnEpoch(e)
			}
		}
		st, err := nets.Train(bg.g, d.X, d.Labels, pc)
		for _, e := range st {
			e.Epoch += first
			stats = append(stats, e)
		}
		if err != nil {
			return stats, fmt.Errorf("%s: %w", name, err)
		}
		done += ph.epochs
	}
	return stats, nil
}

// certPhase is a run of epochs trained on one bound graph.
type certPhase struct {
	bg     *boundGraph
	epochs int
}

// certPhases splits training into runs of epochs. CROWN-IBP's CROWN pass only
// matters inside the ramp: before it κ = 1 (the bound term has weight 0) and after
// it β = 0, so the epochs wholly before floor(RampStart) or from
// ceil(RampStart + RampEpochs) on train the IBP graph, which gives the same loss
// and gradient (up to adding zeros) without the CROWN pass.
func certPhases(bg *boundGraph, g *nets.Graph, s certSchedule, crown bool, epochs int) ([]certPhase, error) {
	if !crown {
		return []certPhase{{bg, epochs}}, nil
	}
	ibp, err := newBoundGraph(g, false)
	if err != nil {
		return nil, err
	}
	// Clamped as floats: a huge RampStart would overflow the conversion to int.
	start := int(min(math.Floor(s.RampStart), float64(epochs)))
	end := int(min(max(math.Ceil(s.RampStart+s.RampEpochs), float64(start)), float64(epochs)))
	var phases []certPhase
	for _, p := range []certPhase{{ibp, start}, {bg, end - start}, {ibp, epochs - end}} {
		if p.epochs > 0 {
			phases = append(phases, p)
		}
	}
	return phases, nil
}
