package verify

import (
	"context"
	"testing"
	"time"
)

// BenchmarkLPMLP: the LP verifier on one sample of the shipped MNIST MLP at L∞
// radius 0.02 (sample 4: 9 spec rows, α-CROWN's bounds, one LP re-solved per
// row). Reports seconds per sample.
func BenchmarkLPMLP(b *testing.B) {
	g, _, specs, r := shippedMLPSamples(b, 5, 0.02)
	row := r.Row(4)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := (LP{}).Verify(context.Background(), g, row, specs[4]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/sample")
}

// BenchmarkBaBMLP: branch and bound on samples of the shipped MNIST MLP at L∞
// radius 0.02 that α-CROWN leaves open and PGD does not break (4, 5, 7: the
// search proves them). Reports domains bounded per second.
func BenchmarkBaBMLP(b *testing.B) {
	g, _, specs, r := shippedMLPSamples(b, 8, 0.02)
	nodes := 0
	var spent time.Duration
	for i := 0; i < b.N; i++ {
		for _, s := range []int{4, 5, 7} {
			start := time.Now()
			res, err := (BaB{Timeout: 60 * time.Second}).Verify(context.Background(), g, r.Row(s), specs[s])
			if err != nil {
				b.Fatal(err)
			}
			spent += time.Since(start)
			nodes += res.Nodes
			if res.Verdict != Verified {
				b.Errorf("sample %d: %v", s, res.Verdict)
			}
		}
	}
	b.ReportMetric(float64(nodes)/spent.Seconds(), "nodes/s")
	b.ReportMetric(float64(nodes)/float64(b.N), "nodes/op")
}
