package attacks

import (
	"fmt"
	"math"
	"sort"

	"github.com/certify-dev/certify/nets"
)

// DLR is the difference-of-logits-ratio loss of Croce & Hein, "Reliable evaluation of
// adversarial robustness with an ensemble of diverse parameter-free attacks", ICML
// 2020, eq. (5): with π the classes sorted by decreasing logit,
//
//	DLR(z, y) = −(z_y − max_{i≠y} z_i) / (z_π1 − z_π3 + 1e-12),
//
// positive exactly when the row is misclassified, and invariant to shifting and
// rescaling the logits (so a saturated softmax cannot hide the gradient). Its
// gradient, with j* = argmax_{i≠y} z_i, m = z_y − z_j*, D = z_π1 − z_π3 + 1e-12:
//
//	∂DLR/∂z = (e_j* − e_y)/D + (m/D²)·(e_π1 − e_π3).
//
// Needs at least 3 classes. Ties are broken towards the lower class index.
type DLR struct{}

// Eval implements nets.Loss.
func (DLR) Eval(logits *nets.Tensor, labels []int) ([]float64, *nets.Tensor, error) {
	k, err := dlrCheck(logits, labels, 3, "dlr")
	if err != nil {
		return nil, nil, err
	}
	vals := make([]float64, len(labels))
	grad := nets.NewTensor(logits.Shape...)
	order := make([]int, k)
	for i, y := range labels {
		z := logits.Data[i*k : (i+1)*k]
		g := grad.Data[i*k : (i+1)*k]
		dlrSortDesc(z, order)
		j := order[0]
		if j == y {
			j = order[1]
		}
		m := z[y] - z[j]
		d := z[order[0]] - z[order[2]] + 1e-12
		vals[i] = -m / d
		g[j] += 1 / d
		g[y] -= 1 / d
		g[order[0]] += m / (d * d)
		g[order[2]] -= m / (d * d)
	}
	return vals, grad, nil
}

// TargetedDLR is the targeted DLR loss of Croce & Hein (2020), eq. (6), maximised by
// APGD-T: for row i with target t = Targets[i],
//
//	DLR_t(z, y) = −(z_y − z_t) / (z_π1 − (z_π3 + z_π4)/2 + 1e-12),
//
// with gradient (e_t − e_y)/D + (m/D²)·(e_π1 − e_π3/2 − e_π4/2), m = z_y − z_t, D the
// denominator. Needs at least 4 classes and one target per row.
type TargetedDLR struct {
	Targets []int
}

// Eval implements nets.Loss.
func (l TargetedDLR) Eval(logits *nets.Tensor, labels []int) ([]float64, *nets.Tensor, error) {
	k, err := dlrCheck(logits, labels, 4, "targeted dlr")
	if err != nil {
		return nil, nil, err
	}
	if len(l.Targets) != len(labels) {
		return nil, nil, fmt.Errorf("targeted dlr: %d targets for %d rows", len(l.Targets), len(labels))
	}
	vals := make([]float64, len(labels))
	grad := nets.NewTensor(logits.Shape...)
	order := make([]int, k)
	for i, y := range labels {
		t := l.Targets[i]
		if t < 0 || t >= k {
			return nil, nil, fmt.Errorf("targeted dlr: row %d: target %d outside [0,%d)", i, t, k)
		}
		z := logits.Data[i*k : (i+1)*k]
		g := grad.Data[i*k : (i+1)*k]
		dlrSortDesc(z, order)
		m := z[y] - z[t]
		d := z[order[0]] - (z[order[2]]+z[order[3]])/2 + 1e-12
		vals[i] = -m / d
		g[t] += 1 / d
		g[y] -= 1 / d
		c := m / (d * d)
		g[order[0]] += c
		g[order[2]] -= c / 2
		g[order[3]] -= c / 2
	}
	return vals, grad, nil
}

func dlrCheck(logits *nets.Tensor, labels []int, minClasses int, name string) (int, error) {
	if logits.Rank() != 2 || logits.Shape[0] != len(labels) {
		return 0, fmt.Errorf("%s: logits of shape %v for %d labels", name, logits.Shape, len(labels))
	}
	k := logits.Shape[1]
	if k < minClasses {
		return 0, fmt.Errorf("%s: needs at least %d classes, model has %d", name, minClasses, k)
	}
	for i, y := range labels {
		if y < 0 || y >= k {
			return 0, fmt.Errorf("%s: row %d: label %d outside [0,%d)", name, i, y, k)
		}
	}
	for _, v := range logits.Data {
		if math.IsNaN(v) {
			return 0, fmt.Errorf("%s: NaN logit", name)
		}
	}
	return k, nil
}

// dlrSortDesc fills order with the classes sorted by decreasing z, ties by index.
func dlrSortDesc(z []float64, order []int) {
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return z[order[a]] > z[order[b]] })
}
