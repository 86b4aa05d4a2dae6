package nets

import "fmt"

// Accuracy returns the fraction of x's rows that m classifies as labels, running
// batches of at most batch rows to bound memory.
func Accuracy(m Classifier, x *Tensor, labels []int, batch int) (float64, error) {
	n := len(labels)
	if x.Rank() == 0 || x.Shape[0] != n || n == 0 {
		return 0, fmt.Errorf("accuracy: %d labels for a batch of shape %v", n, x.Shape)
	}
	if batch <= 0 {
		return 0, fmt.Errorf("accuracy: batch size %d: want positive", batch)
	}
	correct := 0
	for lo := 0; lo < n; lo += batch {
		hi := min(lo+batch, n)
		z, err := m.Logits(sliceRows(x, lo, hi))
		if err != nil {
			return 0, fmt.Errorf("accuracy: rows %d–%d: %w", lo, hi, err)
		}
		if z.Rank() != 2 || z.Shape[0] != hi-lo {
			return 0, fmt.Errorf("accuracy: logits of shape %v for %d rows", z.Shape, hi-lo)
		}
		for i, c := range z.Argmax() {
			if c == labels[lo+i] {
				correct++
			}
		}
	}
	return float64(correct) / float64(n), nil
}
