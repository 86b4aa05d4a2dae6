package attacks

import (
	"context"
	"testing"
)

// BenchmarkPGD40MLP1000 is PGD-40 (step 0.01, L∞ ε = 0.1, one random start,
// cross-entropy, no early stop) on the first 1000 test images against the shipped
// MLP: the Go side of bench/pgd_torch.py. It reports the robust accuracy
// (correct and not broken) beside the time per run.
func BenchmarkPGD40MLP1000(b *testing.B) {
	g, x, y := shippedMLP(b, 1000)
	a := NewPGD(Budget{Norm: LInf, Eps: 0.1, Lo: 0, Hi: 1}, 1)
	a.EarlyStop = false
	z, err := g.Logits(x)
	if err != nil {
		b.Fatal(err)
	}
	pred := z.Argmax()
	b.ResetTimer()
	var r *Result
	for range b.N {
		if r, err = a.Attack(context.Background(), g, x, y); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	robust := 0
	for i, ok := range r.Success {
		if !ok && pred[i] == y[i] {
			robust++
		}
	}
	b.ReportMetric(float64(robust)/float64(len(y)), "robust-acc")
}
