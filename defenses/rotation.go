package defenses

import (
	"errors"
	"fmt"
	"slices"

	"github.com/certify-dev/certify/nets"
)

// Rotation is randomised model rotation (a "moving target"): every query row x is
// answered by one member M_c(x), c(x) drawn uniformly from {0 … M−1} by
// InputRand(Seed, x). The choice is a function of the row's bits, so an answer is
// reproducible and independent of the rest of the batch and of the cores, while an
// attacker's every new point meets a fresh choice.
//
// Its naive gradient is the chosen member's, ∇_x L(z_{c(x)}(x)) (the choice is
// piecewise constant in x: its derivative is 0 almost everywhere). Following
// Expectation over Transformation (Athalye, Carlini & Wagner, ICML 2018, Sec. 4.3),
// the adaptive attack differentiates the expectation over the choice instead: the
// mean of the members' probabilities, E_c[softmax(z_c(x))] = (1/M) Σ_m softmax(z_m(x)),
// which is exactly the equally weighted Ensemble of the members (computed in
// closed form, no sampling).
type Rotation struct {
	// Members are the networks, all of one input shape and class count.
	Members []nets.Differentiable
	// Seed seeds the choices.
	Seed uint64
	// Shape is the per-sample input shape.
	Shape []int
}

// InputShape implements Model.
func (r Rotation) InputShape() ([]int, error) { return slices.Clone(r.Shape), nil }

// Choice returns the member that answers row.
func (r Rotation) Choice(row []float64) int {
	return InputRand(r.Seed, row).IntN(len(r.Members))
}

// route returns, per member, the rows it answers.
func (r Rotation) route(x *nets.Tensor) ([][]int, int, error) {
	if len(r.Members) == 0 {
		return nil, 0, errors.New("rotation: no members")
	}
	if x == nil || x.Rank() < 2 || x.Shape[0] == 0 {
		return nil, 0, fmt.Errorf("rotation: input of shape %v: want a non-empty batch", shapeOf(x))
	}
	n := x.Shape[0]
	per := x.Len() / n
	rows := make([][]int, len(r.Members))
	for i := 0; i < n; i++ {
		c := r.Choice(x.Data[i*per : (i+1)*per])
		rows[c] = append(rows[c], i)
	}
	return rows, per, nil
}

// rotationGather copies rows idx of x (per values each) into a new batch.
func rotationGather(x *nets.Tensor, per int, idx []int) *nets.Tensor {
	out := nets.NewTensor(append([]int{len(idx)}, x.Shape[1:]...)...)
	for k, i := range idx {
		copy(out.Data[k*per:(k+1)*per], x.Data[i*per:(i+1)*per])
	}
	return out
}

// forward returns the logits of every row from its member, and the routing.
func (r Rotation) forward(x *nets.Tensor) (*nets.Tensor, [][]int, []*nets.Tensor, int, error) {
	rows, per, err := r.route(x)
	if err != nil {
		return nil, nil, nil, 0, err
	}
	n := x.Shape[0]
	subs := make([]*nets.Tensor, len(r.Members))
	var out *nets.Tensor
	k := -1
	for m, idx := range rows {
		if len(idx) == 0 {
			continue
		}
		subs[m] = rotationGather(x, per, idx)
		z, err := r.Members[m].Logits(subs[m])
		if err != nil {
			return nil, nil, nil, 0, fmt.Errorf("rotation: member %d: %w", m, err)
		}
		if z.Rank() != 2 || z.Shape[0] != len(idx) || (k >= 0 && z.Shape[1] != k) {
			return nil, nil, nil, 0, fmt.Errorf("rotation: member %d gave logits of shape %v for %d rows (want [%d, classes], classes equal for all members)", m, z.Shape, len(idx), len(idx))
		}
		if k < 0 {
			k = z.Shape[1]
			out = nets.NewTensor(n, k)
		}
		for t, i := range idx {
			copy(out.Data[i*k:(i+1)*k], z.Data[t*k:(t+1)*k])
		}
	}
	return out, rows, subs, k, nil
}

// Logits implements nets.Classifier: row i's logits are those of member c(x_i).
func (r Rotation) Logits(x *nets.Tensor) (*nets.Tensor, error) {
	z, _, _, _, err := r.forward(x)
	return z, err
}

// LossGrad implements nets.Differentiable with the naive gradient: the loss is
// evaluated once on the whole batch's logits, and row i's gradient is pulled back
// through its chosen member only, ∇_x L(z_{c(x_i)}(x_i)).
func (r Rotation) LossGrad(x *nets.Tensor, labels []int, loss nets.Loss) ([]float64, *nets.Tensor, error) {
	z, rows, subs, k, err := r.forward(x)
	if err != nil {
		return nil, nil, err
	}
	vals, g, err := crossEntropyIfNil(loss).Eval(z, labels)
	if err != nil {
		return nil, nil, fmt.Errorf("rotation: %w", err)
	}
	if g == nil || !nets.SameShape(g.Shape, z.Shape) {
		return nil, nil, fmt.Errorf("rotation: loss gradient of shape %v for logits %v", shapeOf(g), z.Shape)
	}
	per := x.Len() / x.Shape[0]
	grad := nets.NewTensor(x.Shape...)
	for m, idx := range rows {
		if len(idx) == 0 {
			continue
		}
		d := nets.NewTensor(len(idx), k)
		for t, i := range idx {
			copy(d.Data[t*k:(t+1)*k], g.Data[i*k:(i+1)*k])
		}
		gm, err := pullBack(r.Members[m], subs[m], d)
		if err != nil {
			return nil, nil, fmt.Errorf("rotation: member %d: %w", m, err)
		}
		for t, i := range idx {
			copy(grad.Data[i*per:(i+1)*per], gm.Data[t*per:(t+1)*per])
		}
	}
	return vals, grad, nil
}

// AdaptiveTarget implements Adaptive: "eot", the expectation over the choice, i.e.
// the equally weighted probability-averaging Ensemble of the members.
func (r Rotation) AdaptiveTarget() (AdaptiveTarget, error) {
	if len(r.Members) == 0 {
		return AdaptiveTarget{}, errors.New("rotation: no members")
	}
	return AdaptiveTarget{Name: "eot", Model: Ensemble{Members: r.Members, Shape: slices.Clone(r.Shape)}}, nil
}

// rotationParams are the params of a "rotation" spec.
type rotationParams struct {
	Seed uint64 `json:"seed"`
}

// buildRotation builds a "rotation" spec:
//
//	{"kind": "rotation", "models": ["a.onnx", "b.onnx"], "params": {"seed": 1}}
//
// At least two differentiable models of one input shape and class count.
func buildRotation(l *Loader, s Spec) (Model, error) {
	var p rotationParams
	if err := l.Params(s, &p); err != nil {
		return nil, err
	}
	if s.Model != "" {
		return nil, errors.New(`a rotation names its networks in "models", not "model"`)
	}
	members, shape, err := loadMembers(l, s.Models)
	if err != nil {
		return nil, err
	}
	return Rotation{Members: members, Seed: p.Seed, Shape: shape}, nil
}

// Reseeded implements Randomised: the same members, choices drawn from seed.
func (r Rotation) Reseeded(seed uint64) Model {
	r.Seed = seed
	return r
}
