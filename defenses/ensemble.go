package defenses

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/certify-dev/certify/nets"
)

// Ensemble averages the predictions of several networks (Strauss, Hanselmann,
// Junginger & Ulmer, "Ensemble Methods as a Defense to Adversarial Perturbations
// Against Deep Neural Networks", 2017; Tramèr et al., "Ensemble Adversarial
// Training", ICLR 2018). With weights w̄_m = w_m / Σ w (equal when Weights is nil)
// and member logits z_m(x), it answers, per row,
//
//	probabilities (default): ℓ(x) = log Σ_m w̄_m softmax(z_m(x))
//	logits (MeanLogits):     ℓ(x) = Σ_m w̄_m z_m(x)
//
// The first is computed stably as ℓ_j = LSE_m(log w̄_m + z_mj − LSE(z_m)), so
// softmax(ℓ) is the weighted mean of the members' probabilities and ℓ never
// overflows. Members of weight 0 are not run.
//
// An ensemble is differentiable exactly: LossGrad evaluates the loss once on ℓ of
// the whole batch, g = ∂L/∂ℓ, and pulls g back through every member (a
// vector-Jacobian product, see pullBack). For the probability average,
//
//	∂L/∂z_mc = g_c r_mc − s_mc Σ_j g_j r_mj,  s_m = softmax(z_m),  r_mj = w̄_m s_mj / e^{ℓ_j},
//
// r_mj being member m's share of class j's averaged probability; for the logit
// average ∂L/∂z_m = w̄_m g. Its gradient does not mask anything, so Ensemble does not
// implement Adaptive.
type Ensemble struct {
	// Members are the networks, all of one input shape and class count.
	Members []nets.Differentiable
	// Weights, when set, has one non-negative weight per member, summing to more
	// than 0. Nil means equal weights.
	Weights []float64
	// MeanLogits averages logits instead of probabilities.
	MeanLogits bool
	// Shape is the per-sample input shape (InputShape's answer).
	Shape []int
}

// InputShape implements Model.
func (e Ensemble) InputShape() ([]int, error) { return slices.Clone(e.Shape), nil }

// logWeights returns log w̄_m, checking the weights.
func (e Ensemble) logWeights() ([]float64, error) {
	if len(e.Members) == 0 {
		return nil, errors.New("ensemble: no members")
	}
	w := e.Weights
	if w == nil {
		w = make([]float64, len(e.Members))
		for i := range w {
			w[i] = 1
		}
	}
	if err := checkEnsembleWeights(w, len(e.Members)); err != nil {
		return nil, fmt.Errorf("ensemble: %w", err)
	}
	sum := 0.0
	for _, v := range w {
		sum += v
	}
	lw := make([]float64, len(w))
	for i, v := range w {
		lw[i] = math.Log(v / sum) // −Inf for a zero weight: the member is skipped
	}
	return lw, nil
}

// checkEnsembleWeights checks n ensemble weights: finite, non-negative, summing to more than 0.
func checkEnsembleWeights(w []float64, n int) error {
	if len(w) != n {
		return fmt.Errorf("%d weights for %d models: give one per model", len(w), n)
	}
	sum := 0.0
	for i, v := range w {
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			return fmt.Errorf("weight %d is %g: want a finite number >= 0", i, v)
		}
		sum += v
	}
	if !(sum > 0) || math.IsInf(sum, 0) {
		return fmt.Errorf("weights %v sum to %g: want a finite sum > 0", w, sum)
	}
	return nil
}

// memberLogits runs every member of non-zero weight on x and checks that their
// outputs agree in shape [n, k].
func (e Ensemble) memberLogits(x *nets.Tensor, lw []float64) ([]*nets.Tensor, int, error) {
	if x == nil || x.Rank() < 2 || x.Shape[0] == 0 {
		return nil, 0, fmt.Errorf("ensemble: input of shape %v: want a non-empty batch", shapeOf(x))
	}
	zs := make([]*nets.Tensor, len(e.Members))
	k := -1
	for m, net := range e.Members {
		if math.IsInf(lw[m], -1) {
			continue
		}
		z, err := net.Logits(x)
		if err != nil {
			return nil, 0, fmt.Errorf("ensemble: member %d: %w", m, err)
		}
		if z.Rank() != 2 || z.Shape[0] != x.Shape[0] || (k >= 0 && z.Shape[1] != k) {
			return nil, 0, fmt.Errorf("ensemble: member %d gave logits of shape %v for %d rows (want [%d, classes], classes equal for all members)", m, z.Shape, x.Shape[0], x.Shape[0])
		}
		k = z.Shape[1]
		zs[m] = z
	}
	return zs, k, nil
}

// ensembleLSE is log Σ exp(v), stable.
func ensembleLSE(v []float64) float64 {
	m := math.Inf(-1)
	for _, a := range v {
		m = math.Max(m, a)
	}
	if math.IsInf(m, 0) {
		return m
	}
	s := 0.0
	for _, a := range v {
		s += math.Exp(a - m)
	}
	return m + math.Log(s)
}

// combine returns ℓ and each member's per-row log-partition LSE(z_m) (nil for
// logit averaging).
func (e Ensemble) combine(zs []*nets.Tensor, lw []float64, n, k int) (*nets.Tensor, [][]float64) {
	out := nets.NewTensor(n, k)
	if e.MeanLogits {
		for m, z := range zs {
			if z == nil {
				continue
			}
			w := math.Exp(lw[m])
			for i, v := range z.Data {
				out.Data[i] += w * v
			}
		}
		return out, nil
	}
	parts := make([][]float64, len(zs))
	for m, z := range zs {
		if z == nil {
			continue
		}
		parts[m] = make([]float64, n)
		for i := 0; i < n; i++ {
			parts[m][i] = ensembleLSE(z.Data[i*k : (i+1)*k])
		}
	}
	terms := make([]float64, 0, len(zs))
	for i := 0; i < n; i++ {
		for j := 0; j < k; j++ {
			terms = terms[:0]
			for m, z := range zs {
				if z != nil {
					terms = append(terms, lw[m]+z.Data[i*k+j]-parts[m][i])
				}
			}
			out.Data[i*k+j] = ensembleLSE(terms)
		}
	}
	return out, parts
}

// Logits implements nets.Classifier: ℓ(x), see Ensemble.
func (e Ensemble) Logits(x *nets.Tensor) (*nets.Tensor, error) {
	lw, err := e.logWeights()
	if err != nil {
		return nil, err
	}
	zs, k, err := e.memberLogits(x, lw)
	if err != nil {
		return nil, err
	}
	out, _ := e.combine(zs, lw, x.Shape[0], k)
	return out, nil
}

// LossGrad implements nets.Differentiable: L(ℓ(x)) and its exact gradient, the sum
// over members of the pull-back of ∂L/∂z_m (see Ensemble).
func (e Ensemble) LossGrad(x *nets.Tensor, labels []int, loss nets.Loss) ([]float64, *nets.Tensor, error) {
	lw, err := e.logWeights()
	if err != nil {
		return nil, nil, err
	}
	zs, k, err := e.memberLogits(x, lw)
	if err != nil {
		return nil, nil, err
	}
	n := x.Shape[0]
	ell, parts := e.combine(zs, lw, n, k)
	vals, g, err := crossEntropyIfNil(loss).Eval(ell, labels)
	if err != nil {
		return nil, nil, fmt.Errorf("ensemble: %w", err)
	}
	if g == nil || !nets.SameShape(g.Shape, ell.Shape) {
		return nil, nil, fmt.Errorf("ensemble: loss gradient of shape %v for logits %v", shapeOf(g), ell.Shape)
	}
	grad := nets.NewTensor(x.Shape...)
	for m, z := range zs {
		if z == nil {
			continue
		}
		dz := nets.NewTensor(n, k)
		if e.MeanLogits {
			w := math.Exp(lw[m])
			for i, v := range g.Data {
				dz.Data[i] = w * v
			}
		} else {
			for i := 0; i < n; i++ {
				zi, gi, li, di := z.Data[i*k:(i+1)*k], g.Data[i*k:(i+1)*k], ell.Data[i*k:(i+1)*k], dz.Data[i*k:(i+1)*k]
				dot := 0.0
				for j := range zi {
					r := math.Exp(lw[m] + zi[j] - parts[m][i] - li[j])
					di[j] = gi[j] * r
					dot += gi[j] * r
				}
				for j := range zi {
					di[j] -= math.Exp(zi[j]-parts[m][i]) * dot
				}
			}
		}
		gm, err := pullBack(e.Members[m], x, dz)
		if err != nil {
			return nil, nil, fmt.Errorf("ensemble: member %d: %w", m, err)
		}
		for i, v := range gm.Data {
			grad.Data[i] += v
		}
	}
	return vals, grad, nil
}

// crossEntropyIfNil is l, or cross-entropy when l is nil.
func crossEntropyIfNil(l nets.Loss) nets.Loss {
	if l == nil {
		return nets.CrossEntropy{}
	}
	return l
}

// cotangentLoss is the linear "loss" ⟨d_r, z⟩ of a logit row z labelled r: its
// gradient with respect to the logits is the fixed row d_r, so a network's LossGrad
// under it is the vector-Jacobian product d_rᵀ·∂z/∂x (reverse mode from a given
// cotangent). The labels number the rows of d, so a network that evaluates its loss
// in chunks of rows still pairs every row with its own cotangent.
type cotangentLoss struct{ d *nets.Tensor }

func (c cotangentLoss) Eval(z *nets.Tensor, labels []int) ([]float64, *nets.Tensor, error) {
	k := c.d.Shape[1]
	if z.Rank() != 2 || z.Shape[0] != len(labels) || z.Shape[1] != k {
		return nil, nil, fmt.Errorf("logits of shape %v for %d rows of %d classes", z.Shape, len(labels), k)
	}
	vals := make([]float64, len(labels))
	grad := nets.NewTensor(z.Shape...)
	for i, r := range labels {
		if r < 0 || r >= c.d.Shape[0] {
			return nil, nil, fmt.Errorf("cotangentLoss row %d outside [0,%d)", r, c.d.Shape[0])
		}
		d := c.d.Data[r*k : (r+1)*k]
		copy(grad.Data[i*k:(i+1)*k], d)
		for j, v := range z.Data[i*k : (i+1)*k] {
			vals[i] += d[j] * v
		}
	}
	return vals, grad, nil
}

// pullBack returns dᵀ·∂net(x)/∂x for a batch x and cotangents d [rows, classes].
func pullBack(net nets.Differentiable, x, d *nets.Tensor) (*nets.Tensor, error) {
	rows := make([]int, x.Shape[0])
	for i := range rows {
		rows[i] = i
	}
	_, g, err := net.LossGrad(x, rows, cotangentLoss{d})
	if err != nil {
		return nil, err
	}
	if g == nil || !nets.SameShape(g.Shape, x.Shape) {
		return nil, fmt.Errorf("gradient of shape %v for input %v", shapeOf(g), x.Shape)
	}
	return g, nil
}

// ensembleParams are the params of an "ensemble" spec.
type ensembleParams struct {
	Weights []float64 `json:"weights"`
	Combine string    `json:"combine"`
}

// buildEnsemble builds an "ensemble" spec:
//
//	{"kind": "ensemble", "models": ["a.onnx", "b.onnx"],
//	 "params": {"weights": [1, 2], "combine": "probabilities" | "logits"}}
//
// At least two differentiable models of one input shape and class count; weights
// optional (equal), combine "probabilities" by default.
func buildEnsemble(l *Loader, s Spec) (Model, error) {
	p := ensembleParams{Combine: "probabilities"}
	if err := l.Params(s, &p); err != nil {
		return nil, err
	}
	if s.Model != "" {
		return nil, errors.New(`an ensemble names its networks in "models", not "model"`)
	}
	if p.Combine != "probabilities" && p.Combine != "logits" {
		return nil, fmt.Errorf(`params: combine %q: want "probabilities" or "logits"`, p.Combine)
	}
	if p.Weights != nil {
		if err := checkEnsembleWeights(p.Weights, len(s.Models)); err != nil {
			return nil, fmt.Errorf("params: %w", err)
		}
	}
	members, shape, err := loadMembers(l, s.Models)
	if err != nil {
		return nil, err
	}
	return Ensemble{Members: members, Weights: p.Weights, MeanLogits: p.Combine == "logits", Shape: shape}, nil
}

// loadMembers loads the models of an ensemble-like spec (at least two,
// differentiable) and checks that they share one input shape and class count,
// naming the first member that does not.
func loadMembers(l *Loader, names []string) ([]nets.Differentiable, []int, error) {
	if len(names) < 2 {
		return nil, nil, fmt.Errorf(`%d model(s) in "models": want at least 2`, len(names))
	}
	var (
		members []nets.Differentiable
		shape0  []int
		k0      int
	)
	for i, name := range names {
		d, m, err := l.Differentiable(name)
		if err != nil {
			return nil, nil, fmt.Errorf("member %d (%s): %w", i, name, err)
		}
		shape, k, err := memberInfo(m)
		if err != nil {
			return nil, nil, fmt.Errorf("member %d (%s): %w", i, name, err)
		}
		if i == 0 {
			shape0, k0 = shape, k
		} else {
			if !slices.Equal(shape, shape0) {
				return nil, nil, fmt.Errorf("member %d (%s) has input shape %v; member 0 (%s) has %v", i, name, shape, names[0], shape0)
			}
			if k != k0 {
				return nil, nil, fmt.Errorf("member %d (%s) has %d classes; member 0 (%s) has %d", i, name, k, names[0], k0)
			}
		}
		members = append(members, d)
	}
	return members, shape0, nil
}

// memberInfo returns a model's input shape and its number of classes, read off its
// logits for one all-zero input.
func memberInfo(m Model) ([]int, int, error) {
	shape, err := m.InputShape()
	if err != nil {
		return nil, 0, err
	}
	full := []int{1}
	for _, d := range shape {
		full = append(full, max(d, 1))
	}
	z, err := m.Logits(nets.NewTensor(full...))
	if err != nil {
		return nil, 0, fmt.Errorf("one input of shape %v does not go through: %w", full, err)
	}
	if z == nil || z.Rank() != 2 || z.Shape[0] != 1 {
		return nil, 0, fmt.Errorf("output for one input has shape %v; want [1, classes]", shapeOf(z))
	}
	return shape, z.Shape[1], nil
}
