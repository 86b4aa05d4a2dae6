package defenses

// Shared parts of the detectors (activation_detector.go, confidence_detector.go,
// squeeze_detector.go): the reject column that turns a detector score into a
// (K+1)-th logit, the threshold calibration at a false-positive rate, the evasion
// loss of the detector-aware attack, and the gradient plumbing through a base
// classifier.

import (
	"errors"
	"fmt"
	"math"
	"sort"

	"github.com/certify-dev/certify/nets"
)

// withReject appends the reject column to the logits z [n, K] of a classifier: for
// a detector score s_i (already shifted by the threshold, so that row i is rejected
// exactly when s_i > 0),
//
//	z'_{i,K} = max_j z_{i,j} + s_i.
//
// The reject column wins the argmax exactly when s_i > 0: at s_i = 0 it ties with
// the top class, and ties go to the first index (nets.Tensor.Argmax), a class.
func withReject(z *nets.Tensor, s []float64) (*nets.Tensor, error) {
	if z == nil || z.Rank() != 2 || z.Shape[0] != len(s) || z.Shape[1] < 1 {
		return nil, fmt.Errorf("reject column: logits of shape %v for %d detector scores", shapeOf(z), len(s))
	}
	n, k := z.Shape[0], z.Shape[1]
	out := nets.NewTensor(n, k+1)
	for i := 0; i < n; i++ {
		row := z.Data[i*k : (i+1)*k]
		copy(out.Data[i*(k+1):], row)
		rej := row[argmax(row)] + s[i]
		if math.IsNaN(rej) {
			// Fail closed: an input whose score or logits are not numbers (an
			// overflowing softmax) is rejected, never waved through.
			rej = math.Inf(1)
		}
		out.Data[i*(k+1)+k] = rej
	}
	return out, nil
}

// rejectBackward splits the gradient g' [n, K+1] of a loss of withReject(z, s) into
// d loss/dz (a new [n, K] tensor) and d loss/ds:
//
//	∂L/∂z_j = g'_j + g'_K·[j = argmax z],   ∂L/∂s = g'_K,
//
// the max taken with the same tie rule as withReject (a subgradient at ties).
func rejectBackward(z, g *nets.Tensor) (dz *nets.Tensor, ds []float64) {
	n, k := z.Shape[0], z.Shape[1]
	dz = nets.NewTensor(n, k)
	ds = make([]float64, n)
	for i := 0; i < n; i++ {
		row := z.Data[i*k : (i+1)*k]
		gr := g.Data[i*(k+1) : (i+1)*(k+1)]
		copy(dz.Data[i*k:(i+1)*k], gr[:k])
		dz.Data[i*k+argmax(row)] += gr[k]
		ds[i] = gr[k]
	}
	return dz, ds
}

// argmax is the first index of the largest value.
func argmax(v []float64) int {
	best := 0
	for j, x := range v {
		if x > v[best] {
			best = j
		}
	}
	return best
}

// calibrate returns a threshold t on detector scores (larger = more suspicious)
// such that exactly k = ⌈fpr·n⌉ of the n clean scores exceed it, so that the
// detector "reject when score > t" has false-positive rate k/n on them: t is the
// midpoint between the k-th and (k+1)-th largest score (the midpoint leaves a
// margin for the rounding of a recomputed score), the largest score when k = 0,
// and just below the smallest when k = n.
// When those two scores tie, no threshold separates them and fewer than k exceed t.
func calibrate(scores []float64, fpr float64) (float64, error) {
	n := len(scores)
	if n == 0 {
		return 0, errors.New("calibrate: no clean scores")
	}
	if !(fpr >= 0 && fpr < 1) {
		return 0, fmt.Errorf("calibrate: false-positive rate %v: want 0 ≤ fpr < 1", fpr)
	}
	s := append([]float64(nil), scores...)
	for i, v := range s {
		if math.IsNaN(v) {
			return 0, fmt.Errorf("calibrate: score %d is NaN", i)
		}
	}
	sort.Sort(sort.Reverse(sort.Float64Slice(s)))
	// fpr·n rounded up, forgiving the rounding of fpr itself (0.05·100 = 5.000000000000001).
	k := int(math.Ceil(fpr * float64(n) * (1 - 1e-12)))
	if k == 0 {
		return s[0], nil
	}
	if k >= n {
		return math.Nextafter(s[n-1], math.Inf(-1)), nil
	}
	hi, lo := s[k-1], s[k]
	if math.IsInf(hi, 1) && math.IsInf(lo, 1) {
		return math.Inf(1), nil
	}
	if math.IsInf(lo, -1) {
		return hi - 1, nil // hi is finite: anything below it and above -∞
	}
	if math.IsInf(hi, 1) {
		return lo + 1, nil
	}
	return lo + (hi-lo)/2, nil
}

// EvasionLoss is the loss of the detector-aware attack of Carlini & Wagner,
// "Adversarial Examples Are Not Easily Detected: Bypassing Ten Detection Methods",
// AISec 2017, Section 4: the detector and the classifier are one classifier G with
// K+1 logits, the last (index Reject) being "adversarial", and the attack seeks an
// input that G assigns to a class other than the label y and other than Reject. The
// loss is their margin on G, untargeted:
//
//	L(z', y) = max_{j∉{y,r}} z'_j − max(z'_y, z'_r),   r = Reject,
//
// positive exactly when some other class beats both the label and the reject
// column, i.e. the input is misclassified and not detected. Its (sub)gradient is
// e_{j*} − e_{b*} for the best other column j* and the larger b* of y and r (first
// index at ties). It needs at least three columns and labels in [0, K) ∖ {r}.
type EvasionLoss struct {
	// Reject is the index of the reject column (the number of classes, K).
	Reject int
}

// Eval implements nets.Loss.
func (e EvasionLoss) Eval(logits *nets.Tensor, labels []int) ([]float64, *nets.Tensor, error) {
	if logits == nil || logits.Rank() != 2 || logits.Shape[0] != len(labels) {
		return nil, nil, fmt.Errorf("evasion loss: logits of shape %v for %d labels", shapeOf(logits), len(labels))
	}
	k1 := logits.Shape[1]
	if e.Reject < 0 || e.Reject >= k1 || k1 < 3 {
		return nil, nil, fmt.Errorf("evasion loss: reject column %d of %d: want a column of at least 3", e.Reject, k1)
	}
	vals := make([]float64, len(labels))
	grad := nets.NewTensor(logits.Shape...)
	for i, y := range labels {
		if y < 0 || y >= k1 || y == e.Reject {
			return nil, nil, fmt.Errorf("evasion loss: label %d: want a class in [0,%d) other than the reject column %d", y, k1, e.Reject)
		}
		z := logits.Data[i*k1 : (i+1)*k1]
		best := -1
		for j, v := range z {
			if j != y && j != e.Reject && (best < 0 || v > z[best]) {
				best = j
			}
		}
		b := min(y, e.Reject) // first index at ties
		if z[max(y, e.Reject)] > z[b] {
			b = max(y, e.Reject)
		}
		vals[i] = z[best] - z[b]
		grad.Data[i*k1+best] = 1
		grad.Data[i*k1+b] = -1
	}
	return vals, grad, nil
}

// rejectLoss is a loss on K logits that is inner's loss on the K+1 logits
// withReject(z, score(z)), where the detector score is a function of the row's own
// logits (the confidence detector): the chain rule through the reject column lets
// any nets.Differentiable base compute the detector's gradient in its own LossGrad.
type rejectLoss struct {
	inner nets.Loss
	// score returns the shifted detector score of each row of z and, given
	// d loss/ds per row, adds d loss/dz into dz.
	score     func(z *nets.Tensor) []float64
	scoreGrad func(z *nets.Tensor, ds []float64, dz *nets.Tensor)
}

func (l rejectLoss) Eval(z *nets.Tensor, labels []int) ([]float64, *nets.Tensor, error) {
	zr, err := withReject(z, l.score(z))
	if err != nil {
		return nil, nil, err
	}
	inner := l.inner
	if inner == nil {
		inner = nets.CrossEntropy{}
	}
	vals, g, err := inner.Eval(zr, labels)
	if err != nil {
		return nil, nil, err
	}
	dz, ds := rejectBackward(z, g)
	l.scoreGrad(z, ds, dz)
	return vals, dz, nil
}

// linearLoss is Σ_j v_j z_j on a single row's logits, applied to every row it is
// given: its gradient with respect to the logits is v, so LossGrad with it is the
// vector-Jacobian product vᵀ J_f(x) of any nets.Differentiable f.
type linearLoss struct{ v []float64 }

func (l linearLoss) Eval(z *nets.Tensor, labels []int) ([]float64, *nets.Tensor, error) {
	if z.Rank() != 2 || z.Shape[1] != len(l.v) {
		return nil, nil, fmt.Errorf("vector-Jacobian product: logits of shape %v for a vector of %d", z.Shape, len(l.v))
	}
	n, k := z.Shape[0], z.Shape[1]
	vals := make([]float64, n)
	g := nets.NewTensor(n, k)
	for i := 0; i < n; i++ {
		for j, v := range l.v {
			vals[i] += v * z.Data[i*k+j]
			g.Data[i*k+j] = v
		}
	}
	return vals, g, nil
}

// vjp returns, row by row, J_f(x_i)ᵀ v_i: the gradient of Σ_i v_i·f(x_i) with respect
// to x, for a batch x and v [n, K]. A *nets.Graph takes it in one backward pass per
// chunk of rows; any other differentiable model row by row through LossGrad with a
// linear loss (a loss cannot tell which rows of a batch it is given, a row can).
func vjp(f nets.Differentiable, x, v *nets.Tensor) (*nets.Tensor, error) {
	n := x.Batch()
	per := x.Len() / n
	grad := nets.NewTensor(x.Shape...)
	if g, ok := f.(*nets.Graph); ok {
		in, out, err := graphIO(g)
		if err != nil {
			return nil, err
		}
		k := v.Len() / n
		err = nets.ParallelRows(n, 16, func(_, lo, hi int) error {
			vals, err := g.Forward(map[string]*nets.Tensor{in: rowsOf(x, lo, hi)})
			if err != nil {
				return err
			}
			seed := nets.FromData(append([]float64(nil), v.Data[lo*k:hi*k]...), hi-lo, k)
			grads, err := g.Backward(vals, map[string]*nets.Tensor{out: seed}, false)
			if err != nil {
				return err
			}
			if gx, ok := grads[in]; ok {
				copy(grad.Data[lo*per:hi*per], gx.Data)
			}
			return nil
		})
		return grad, err
	}
	k := v.Len() / n
	labels := []int{0}
	err := nets.ParallelRows(n, 1, func(_, lo, hi int) error {
		for i := lo; i < hi; i++ {
			_, gx, err := f.LossGrad(x.Row(i).Clone(), labels, linearLoss{v.Data[i*k : (i+1)*k]})
			if err != nil {
				return err
			}
			copy(grad.Data[i*per:(i+1)*per], gx.Data)
		}
		return nil
	})
	return grad, err
}

// classesOf runs m on one all-zero input and returns the number of its logits.
func classesOf(m Model) (int, error) {
	shape, err := m.InputShape()
	if err != nil {
		return 0, err
	}
	full := []int{1}
	for _, d := range shape {
		full = append(full, max(d, 1))
	}
	z, err := m.Logits(nets.NewTensor(full...))
	if err != nil {
		return 0, fmt.Errorf("one input of shape %v does not go through: %w", full, err)
	}
	if z.Rank() != 2 || z.Shape[1] < 2 {
		return 0, fmt.Errorf("output for one input has shape %v; want [1, classes ≥ 2]", z.Shape)
	}
	return z.Shape[1], nil
}

// softmaxRow writes softmax(z) into p (same length).
func softmaxRow(z, p []float64) {
	m := z[argmax(z)]
	sum := 0.0
	for j, v := range z {
		p[j] = math.Exp(v - m)
		sum += p[j]
	}
	for j := range p {
		p[j] /= sum
	}
}

// checkThreshold checks a finite threshold in [lo, hi].
func checkThreshold(t, lo, hi float64) error {
	if math.IsNaN(t) || t < lo || t > hi {
		return fmt.Errorf("threshold %v: want a number in [%v, %v]", t, lo, hi)
	}
	return nil
}
