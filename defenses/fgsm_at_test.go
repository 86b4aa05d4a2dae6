package defenses

import (
	"math"
	"slices"
	"testing"

	"github.com/certify-dev/certify/nets"
)

// TestFGSMTrainingPrepareBatch: the prepared minibatch is the clean rows, then the
// FGSM rows (equal to an independent FGSM, within ε, in [0, 1]) labelled −1 − y;
// the loss on it is α·CE(clean) + (1 − α)·CE(FGSM); α = 0 and α = 1 give the FGSM
// rows alone and the clean batch untouched.
func TestFGSMTrainingPrepareBatch(t *testing.T) {
	d := testData(t, 0, 40)
	g := testMLP(t, 1, 32)
	const eps = 0.2
	x := nets.FromData(append([]float64(nil), d.X.Data[:24*784]...), 24, 1, 28, 28)
	y := d.Labels[:24]
	want := atIndependentFGSM(t, g, x, y, eps)
	for _, alpha := range []float64{0, 0.3, 0.5, 1} {
		rec := FGSMTraining{Eps: eps, CleanWeight: alpha, Seed: 1}
		craft, err := rec.crafter(g, d, testConfig(1, 24, 1e-3, 1))
		if err != nil {
			t.Fatal(err)
		}
		cfg, mixed, err := atConfig(rec.Name(), len(d.Labels), testConfig(1, 24, 1e-3, 1), alpha, craft)
		if err != nil {
			t.Fatal(err)
		}
		xb, yb, err := cfg.Prepare(0, 0, x.Clone(), append([]int(nil), y...))
		if err != nil {
			t.Fatal(err)
		}
		switch alpha {
		case 1:
			if mixed || xb.Shape[0] != 24 || !slices.Equal(xb.Data, x.Data) || !slices.Equal(yb, y) {
				t.Fatalf("α = 1: want the clean batch untouched, got %d rows", xb.Shape[0])
			}
			continue
		case 0:
			if mixed || xb.Shape[0] != 24 || !slices.Equal(xb.Data, want) || !slices.Equal(yb, y) {
				t.Fatalf("α = 0: want the 24 FGSM rows only, got %d rows", xb.Shape[0])
			}
			continue
		}
		if !mixed || xb.Shape[0] != 48 || len(yb) != 48 {
			t.Fatalf("α = %v: got %d rows, want 48", alpha, xb.Shape[0])
		}
		n := x.Len()
		if !slices.Equal(xb.Data[:n], x.Data) {
			t.Fatal("the first half is not the clean batch")
		}
		adv := xb.Data[n:]
		if !slices.Equal(adv, want) {
			t.Fatal("the FGSM rows differ from an independent FGSM")
		}
		moved := 0
		for k, v := range adv {
			if v < 0 || v > 1 || math.Abs(v-x.Data[k]) > eps+1e-12 {
				t.Fatalf("value %d: %v for clean %v: outside [0,1] or the ε-ball", k, v, x.Data[k])
			}
			if math.Abs(v-x.Data[k]) > eps-1e-12 {
				moved++
			}
		}
		if moved < n/2 {
			t.Fatalf("only %d of %d values moved by ε", moved, n)
		}
		for i := range y {
			if yb[i] != y[i] || yb[24+i] != -1-y[i] {
				t.Fatalf("labels %d: %d and %d for %d", i, yb[i], yb[24+i], y[i])
			}
		}
		// The mixed loss, mean over the 48 rows, against CE computed separately.
		z, err := g.Logits(xb)
		if err != nil {
			t.Fatal(err)
		}
		v, _, err := cfg.Loss.Eval(z, yb)
		if err != nil {
			t.Fatal(err)
		}
		ce, _, _ := nets.CrossEntropy{}.Eval(z, append(append([]int(nil), y...), y...))
		var mix, clean, fg float64
		for i := range v {
			mix += v[i] / 48
		}
		for i := 0; i < 24; i++ {
			clean += ce[i] / 24
			fg += ce[24+i] / 24
		}
		if w := alpha*clean + (1-alpha)*fg; math.Abs(mix-w) > 1e-12*math.Abs(w) {
			t.Fatalf("α = %v: mixed loss %v, want α·%v + (1−α)·%v = %v", alpha, mix, clean, fg, w)
		}
		if fg <= clean {
			t.Fatalf("FGSM rows' loss %v not above the clean %v", fg, clean)
		}
	}
}

// TestFGSMTrainingHooks: the caller's Prepare runs first on every minibatch (its
// rows are the ones attacked) and OnEpoch sees the statistics Train returns: the
// mixed loss and the clean rows' accuracy, both per training row.
func TestFGSMTrainingHooks(t *testing.T) {
	d := testData(t, 0, 64)
	cfg := testConfig(2, 16, 1e-3, 1)
	var calls []int
	cfg.Prepare = func(epoch, step int, x *nets.Tensor, y []int) (*nets.Tensor, []int, error) {
		calls = append(calls, epoch*4+step)
		return x, y, nil
	}
	var seen []nets.EpochStats
	cfg.OnEpoch = func(s nets.EpochStats) error { seen = append(seen, s); return nil }
	stats, err := FGSMTraining{Eps: 0.3, CleanWeight: 0.5}.Train(testMLP(t, 1, 16), d, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(calls, []int{0, 1, 2, 3, 4, 5, 6, 7}) {
		t.Fatalf("caller's Prepare called at %v", calls)
	}
	if len(seen) != 2 || seen[0] != stats[0] || seen[1] != stats[1] {
		t.Fatalf("OnEpoch saw %+v, Train returned %+v", seen, stats)
	}
	for _, s := range stats {
		if s.Accuracy > 1 || s.Loss <= 0 || s.Loss > 5 {
			t.Fatalf("stats %+v: not per training row", s)
		}
	}
}
