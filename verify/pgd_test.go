package verify

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/certify-dev/certify/bounds"
	"github.com/certify-dev/certify/nets"
)

// TestPGDAgreesMNIST: on the shipped MNIST MLP, 10 test samples, L∞ radius 0.02:
// no PGD iterate (20 signed-gradient steps of 0.005 on the margin loss, from the
// centre and from a random point of the region) makes any spec row smaller than a
// verifier's margin, so none misclassifies a verified sample; and a Falsified
// verdict comes with a counterexample inside the region that violates the spec.
func TestPGDAgreesMNIST(t *testing.T) {
	if testing.Short() {
		t.Skip("MNIST model")
	}
	const n, radius = 10, 0.02
	g, labels, specs, r := shippedMLPSamples(t, n, radius)
	for _, v := range []BatchVerifier{IBP{}, CROWN{}, AlphaCROWN{Iterations: 10}, CROWN{SoundFP: true}} {
		res, err := v.VerifyBatch(context.Background(), g, r, specs)
		if err != nil {
			t.Fatal(err)
		}
		counts := map[Verdict]int{}
		for i, rs := range res {
			counts[rs.Verdict]++
			if rs.Verdict == Falsified {
				checkCounterexample(t, g, r.Row(i), specs[i], rs.Counterexample)
			}
		}
		t.Logf("%T%+v: %v", v, v, counts)
		worst := minSpecPGD(t, g, r, labels, specs, rand.New(rand.NewPCG(1, 2)))
		for i, rs := range res {
			if worst[i] < rs.Margin-1e-9 {
				t.Errorf("%s sample %d: PGD reached spec value %v below the margin %v: UNSOUND", v.Name(), i, worst[i], rs.Margin)
			}
		}
	}
}

// checkCounterexample asserts that ce lies in r and violates s.
func checkCounterexample(t *testing.T, g *nets.Graph, r Region, s bounds.Spec, ce *nets.Tensor) {
	t.Helper()
	if ce == nil || ce.Len() != r.Lo.Len() {
		t.Fatalf("counterexample %v for a region of %d values", ce, r.Lo.Len())
	}
	for i, v := range ce.Data {
		if v < r.Lo.Data[i] || v > r.Hi.Data[i] {
			t.Fatalf("counterexample value %v at %d outside [%v, %v]", v, i, r.Lo.Data[i], r.Hi.Data[i])
		}
	}
	y, err := g.Logits(ce)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := specValue(s, y.Data); err != nil || v > 0 {
		t.Errorf("counterexample gives spec value %v (%v), not a violation", v, err)
	}
}

// minSpecPGD returns, per sample, the least min-row spec value seen over the PGD
// iterates inside r.
func minSpecPGD(t *testing.T, g *nets.Graph, r Region, labels []int, specs []bounds.Spec, rng *rand.Rand) []float64 {
	t.Helper()
	const steps, step = 20, 0.005
	worst := make([]float64, len(labels))
	for i := range worst {
		worst[i] = 1e300
	}
	for restart := 0; restart < 2; restart++ {
		x := nets.NewTensor(r.Lo.Shape...)
		for i := range x.Data {
			u := 0.5
			if restart > 0 {
				u = rng.Float64()
			}
			x.Data[i] = min(max(r.Lo.Data[i]+u*(r.Hi.Data[i]-r.Lo.Data[i]), r.Lo.Data[i]), r.Hi.Data[i])
		}
		for s := 0; ; s++ {
			y, err := g.Logits(x)
			if err != nil {
				t.Fatal(err)
			}
			k := y.Len() / y.Batch()
			for i, sp := range specs {
				v, err := specValue(sp, y.Data[i*k:(i+1)*k])
				if err != nil {
					t.Fatal(err)
				}
				worst[i] = min(worst[i], v)
			}
			if s == steps {
				break
			}
			_, grad, err := g.LossGrad(x, labels, nets.Margin{})
			if err != nil {
				t.Fatal(err)
			}
			for i, gv := range grad.Data {
				if gv > 0 {
					x.Data[i] += step
				} else if gv < 0 {
					x.Data[i] -= step
				}
				x.Data[i] = min(max(x.Data[i], r.Lo.Data[i]), r.Hi.Data[i])
			}
		}
	}
	return worst
}

// shippedMLPSamples loads the shipped MNIST MLP, its first n test samples and labels,
// their robustness specs and the L∞ region of the given radius in [0,1].
func shippedMLPSamples(t testing.TB, n int, radius float64) (*nets.Graph, []int, []bounds.Spec, Region) {
	t.Helper()
	g, err := nets.ReadONNX("../testdata/mnist_mlp.onnx")
	if err != nil {
		t.Fatal(err)
	}
	xs, err := nets.ReadNPY("../testdata/mnist-test-1k.npy")
	if err != nil {
		t.Fatal(err)
	}
	ys, err := nets.ReadNPY("../testdata/mnist-test-1k-labels.npy")
	if err != nil {
		t.Fatal(err)
	}
	x := nets.FromData(append([]float64(nil), xs.Data[:n*784]...), n, 1, 28, 28)
	labels := make([]int, n)
	specs := make([]bounds.Spec, n)
	for i := range labels {
		labels[i] = int(ys.Data[i])
		if specs[i], err = bounds.RobustnessSpec(10, labels[i]); err != nil {
			t.Fatal(err)
		}
	}
	return g, labels, specs, LinfRegion(x, radius, 0, 1)
}
