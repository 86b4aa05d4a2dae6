package nets

import (
	"fmt"
	"math"
)

// Loss scores a batch of logits against labels, per sample, and gives the gradient of
// each sample's loss with respect to its logits.
type Loss interface {
	Eval(logits *Tensor, labels []int) (values []float64, grad *Tensor, err error)
}

// CrossEntropy is -log softmax(z)_y, computed stably through log-sum-exp.
type CrossEntropy struct{}

func checkLogits(logits *Tensor, labels []int) (int, error) {
	if logits.Rank() != 2 || logits.Shape[0] != len(labels) {
		return 0, fmt.Errorf("loss: logits of shape %v for %d labels", logits.Shape, len(labels))
	}
	k := logits.Shape[1]
	for _, y := range labels {
		if y < 0 || y >= k {
			return 0, fmt.Errorf("loss: label %d outside [0,%d)", y, k)
		}
	}
	return k, nil
}

// Eval returns the losses and d loss / d logits = softmax(z) - onehot(y).
func (CrossEntropy) Eval(logits *Tensor, labels []int) ([]float64, *Tensor, error) {
	k, err := checkLogits(logits, labels)
	if err != nil {
		return nil, nil, err
	}
	vals := make([]float64, len(labels))
	grad := NewTensor(logits.Shape...)
	for i, y := range labels {
		z := logits.Data[i*k : (i+1)*k]
		m := math.Inf(-1)
		for _, v := range z {
			m = math.Max(m, v)
		}
		s := 0.0
		for _, v := range z {
			s += math.Exp(v - m)
		}
		lse := m + math.Log(s)
		vals[i] = lse - z[y]
		gz := grad.Data[i*k : (i+1)*k]
		for j, v := range z {
			gz[j] = math.Exp(v - lse)
		}
		gz[y]--
	}
	return vals, grad, nil
}

// Margin is the C&W-style margin loss max_{j≠y} z_j − z_y (Carlini & Wagner 2017):
// positive exactly when the sample is misclassified. Its gradient is e_j* − e_y for
// the best other class j*.
type Margin struct{}

func (Margin) Eval(logits *Tensor, labels []int) ([]float64, *Tensor, error) {
	k, err := checkLogits(logits, labels)
	if err != nil {
		return nil, nil, err
	}
	vals := make([]float64, len(labels))
	grad := NewTensor(logits.Shape...)
	for i, y := range labels {
		z := logits.Data[i*k : (i+1)*k]
		best := -1
		for j, v := range z {
			if j != y && (best < 0 || v > z[best]) {
				best = j
			}
		}
		if best < 0 {
			continue // one class: nothing to confuse it with
		}
		vals[i] = z[best] - z[y]
		grad.Data[i*k+best] = 1
		grad.Data[i*k+y] = -1
	}
	return vals, grad, nil
}
