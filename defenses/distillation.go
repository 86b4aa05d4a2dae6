package defenses

import (
	"errors"
	"fmt"
	"math"
	"sync/atomic"

	"github.com/certify-dev/certify/nets"
)

// Distillation is defensive distillation (Papernot, McDaniel, Wu, Jha & Swami,
// "Distillation as a Defense to Adversarial Perturbations against Deep Neural
// Networks", IEEE S&P 2016): with z the logits and T the temperature,
//
//  1. the Teacher (an untrained graph of the caller's, same input and classes as the
//     student) is trained on the hard labels with its softmax at temperature T:
//     L = CE(softmax(z/T), y) = log Σ_j exp(z_j/T) − z_y/T;
//  2. its soft labels p = softmax(z_teacher(x)/T) are computed once for every
//     training row, and the student g is trained on them at the same temperature:
//     L = −Σ_j p_j log softmax(z/T)_j, whose gradient is (softmax(z/T) − p)/T;
//  3. the student is exported as it is, so at test time it runs at T = 1: its logits
//     are about T times larger than a normally trained net's, its softmax saturates
//     and the gradients of its cross-entropy vanish. That is all the defense does
//     (Carlini & Wagner, "Defensive Distillation is Not Robust to Adversarial
//     Examples", 2016, break it with attacks on the logits, e.g. the margin loss).
//
// The teacher trains for TeacherEpochs epochs (0: cfg.Epochs) with its own
// nets.NewAdam() optimizer and cfg's batch size, chunk size, schedule, noise and
// Rand (the teacher's shuffles come first, then the student's, so one seed gives
// the same bytes); cfg.Optimizer trains the student. cfg.OnEpoch sees the student's
// epochs only; Train returns the student's statistics, whose Loss is the mean
// soft-label loss at T and whose Accuracy is measured against the hard labels.
//
// Temperature T ≥ 1 must be finite (Papernot et al. recommend T = 100 on MNIST).
// At T = 100 the nets must grow logits about T times larger than usual, which
// Adam does faster at a larger rate: nets.MNISTCNN's teacher reached 87% test
// accuracy in 2 epochs on 10000 images at lr 2e-3, 93% at 1e-2.
// cfg.Loss must be unset (or cross-entropy) and cfg.Prepare unset, as the recipe
// sets its own. The teacher is trained in place.
type Distillation struct {
	Temperature   float64
	Teacher       *nets.Graph
	TeacherEpochs int
}

// Name is "distillation".
func (Distillation) Name() string { return "distillation" }

// Train trains the teacher, then g on its soft labels (see Distillation).
//
// The student runs through nets.Train with labels that are row indices into the
// training set and a loss that looks the teacher's probabilities up by index:
// Train then shuffles, batches, adds noise, chunks and schedules exactly as for any
// other recipe (and stays bit-identical on any number of cores), where a loop of
// our own around nets.ParamGrad would duplicate all of it. The loss counts the
// argmax hits against the hard labels as it goes, which replaces the index
// "accuracy" Train computes.
func (r Distillation) Train(g *nets.Graph, d Data, cfg nets.TrainConfig) ([]nets.EpochStats, error) {
	if err := r.validate(g, d, cfg); err != nil {
		return nil, fmt.Errorf("distillation: %w", err)
	}
	tcfg := cfg
	tcfg.Epochs = r.TeacherEpochs
	if tcfg.Epochs == 0 {
		tcfg.Epochs = cfg.Epochs
	}
	tcfg.Optimizer = nets.NewAdam()
	tcfg.Loss = distillHardCE{T: r.Temperature}
	tcfg.Prepare, tcfg.OnEpoch = nil, nil
	if _, err := nets.Train(r.Teacher, d.X, d.Labels, tcfg); err != nil {
		return nil, fmt.Errorf("distillation: teacher: %w", err)
	}
	z, err := r.Teacher.Logits(d.X)
	if err != nil {
		return nil, fmt.Errorf("distillation: teacher's soft labels: %w", err)
	}
	n := len(d.Labels)
	k := z.Len() / n
	soft := &distillSoftCE{T: r.Temperature, K: k, P: make([]float64, n*k), Labels: d.Labels}
	for i := 0; i < n; i++ {
		temperedSoftmax(soft.P[i*k:(i+1)*k], z.Data[i*k:(i+1)*k], r.Temperature)
	}
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	scfg := cfg
	scfg.Loss = soft
	// Every epoch Train records passes through OnEpoch first, so stats collects them
	// all with the accuracy fixed.
	var stats []nets.EpochStats
	scfg.OnEpoch = func(s nets.EpochStats) error {
		s.Accuracy = float64(soft.correct.Swap(0)) / float64(n)
		stats = append(stats, s)
		if cfg.OnEpoch != nil {
			return cfg.OnEpoch(s)
		}
		return nil
	}
	_, err = nets.Train(g, d.X, idx, scfg)
	if err != nil {
		return stats, fmt.Errorf("distillation: student: %w", err)
	}
	return stats, nil
}

// validate checks the recipe's fields against the graphs and the data.
func (r Distillation) validate(g *nets.Graph, d Data, cfg nets.TrainConfig) error {
	switch {
	case math.IsNaN(r.Temperature) || math.IsInf(r.Temperature, 0) || r.Temperature < 1:
		return fmt.Errorf("temperature %v: want finite and ≥ 1", r.Temperature)
	case r.TeacherEpochs < 0:
		return fmt.Errorf("teacher epochs %d: want ≥ 0 (0: cfg.Epochs)", r.TeacherEpochs)
	case g == nil:
		return errors.New("no student graph")
	case r.Teacher == nil:
		return errors.New("no teacher graph (Teacher is nil)")
	case r.Teacher == g:
		return errors.New("the teacher is the student graph: give a separate, untrained teacher")
	case len(r.Teacher.Trainable) == 0:
		return errors.New("teacher has no trainable params")
	case cfg.Prepare != nil:
		return errors.New("cfg.Prepare is set: distillation trains on soft labels and takes no Prepare hook")
	case d.X == nil || d.X.Rank() == 0 || d.X.Shape[0] != len(d.Labels) || len(d.Labels) == 0:
		return fmt.Errorf("%d labels for a training set of shape %v", len(d.Labels), distillShape(d.X))
	}
	if err := checkOwnLoss(cfg.Loss); err != nil {
		return err
	}
	// Both nets must take the data and give the same number of classes: try one row.
	row := d.X.Row(0) // [1, ...]
	zs, err := g.Logits(row)
	if err != nil {
		return fmt.Errorf("student on a training row: %w", err)
	}
	zt, err := r.Teacher.Logits(row)
	if err != nil {
		return fmt.Errorf("teacher on a training row: %w", err)
	}
	if zs.Rank() != 2 || zt.Rank() != 2 || zs.Shape[1] != zt.Shape[1] {
		return fmt.Errorf("teacher gives logits of shape %v, student %v: want the same classes", zt.Shape, zs.Shape)
	}
	for i, y := range d.Labels {
		if y < 0 || y >= zs.Shape[1] {
			return fmt.Errorf("label %d of row %d outside [0,%d)", y, i, zs.Shape[1])
		}
	}
	return nil
}

// checkOwnLoss accepts an unset loss or cross-entropy, the only losses a recipe that
// brings its own can stand in for.
func checkOwnLoss(l nets.Loss) error {
	switch l.(type) {
	case nil, nets.CrossEntropy, *nets.CrossEntropy:
		return nil
	}
	return fmt.Errorf("cfg.Loss is %T: the recipe sets its own loss, leave it unset", l)
}

func distillShape(t *nets.Tensor) []int {
	if t == nil {
		return nil
	}
	return t.Shape
}

// temperedSoftmax writes softmax(z/T) into dst and returns log Σ_j exp(z_j/T), computed
// stably through the maximum.
func temperedSoftmax(dst, z []float64, T float64) float64 {
	m := math.Inf(-1)
	for _, v := range z {
		m = math.Max(m, v/T)
	}
	s := 0.0
	for j, v := range z {
		dst[j] = math.Exp(v/T - m)
		s += dst[j]
	}
	for j := range dst {
		dst[j] /= s
	}
	return m + math.Log(s)
}

// distillHardCE is the cross-entropy of softmax(z/T) against hard labels,
// log Σ_j exp(z_j/T) − z_y/T, with gradient (softmax(z/T) − e_y)/T. At T = 1 it is
// nets.CrossEntropy.
type distillHardCE struct{ T float64 }

func (l distillHardCE) Eval(logits *nets.Tensor, labels []int) ([]float64, *nets.Tensor, error) {
	if logits.Rank() != 2 || logits.Shape[0] != len(labels) {
		return nil, nil, fmt.Errorf("tempered cross-entropy: logits of shape %v for %d labels", logits.Shape, len(labels))
	}
	k := logits.Shape[1]
	vals := make([]float64, len(labels))
	grad := nets.NewTensor(logits.Shape...)
	for i, y := range labels {
		if y < 0 || y >= k {
			return nil, nil, fmt.Errorf("tempered cross-entropy: label %d outside [0,%d)", y, k)
		}
		z, gz := logits.Data[i*k:(i+1)*k], grad.Data[i*k:(i+1)*k]
		vals[i] = temperedSoftmax(gz, z, l.T) - z[y]/l.T
		gz[y]--
		for j := range gz {
			gz[j] /= l.T
		}
	}
	return vals, grad, nil
}

// distillSoftCE is the distillation loss of the student: for the row whose "label" is its
// index i into the training set, −Σ_j P[i,j] log softmax(z/T)_j with gradient
// (softmax(z/T) − P[i])/T (Σ_j P[i,j] = 1). With one-hot rows of P and T = 1 it is
// nets.CrossEntropy. It counts, in correct, the rows whose argmax is Labels[i],
// the hard label: Eval runs concurrently on the chunks of a minibatch, and the
// count is a sum of integers, so it does not depend on their order.
type distillSoftCE struct {
	T       float64
	K       int       // classes
	P       []float64 // [n, K] target probabilities, row-major
	Labels  []int     // hard labels, for the accuracy count (nil: not counted)
	correct atomic.Int64
}

func (l *distillSoftCE) Eval(logits *nets.Tensor, idx []int) ([]float64, *nets.Tensor, error) {
	if logits.Rank() != 2 || logits.Shape[0] != len(idx) || logits.Shape[1] != l.K {
		return nil, nil, fmt.Errorf("soft-label loss: logits of shape %v for %d rows of %d classes", logits.Shape, len(idx), l.K)
	}
	k, n := l.K, len(l.P)/l.K
	vals := make([]float64, len(idx))
	grad := nets.NewTensor(logits.Shape...)
	hits := 0
	for r, i := range idx {
		if i < 0 || i >= n {
			return nil, nil, fmt.Errorf("soft-label loss: row index %d outside [0,%d)", i, n)
		}
		z, gz, p := logits.Data[r*k:(r+1)*k], grad.Data[r*k:(r+1)*k], l.P[i*k:(i+1)*k]
		lse := temperedSoftmax(gz, z, l.T)
		best := 0
		for j := range gz {
			if p[j] != 0 { // 0·log q = 0, even where q underflows
				vals[r] -= p[j] * (z[j]/l.T - lse)
			}
			gz[j] = (gz[j] - p[j]) / l.T
			if z[j] > z[best] {
				best = j
			}
		}
		if l.Labels != nil && best == l.Labels[i] {
			hits++
		}
	}
	l.correct.Add(int64(hits))
	return vals, grad, nil
}
