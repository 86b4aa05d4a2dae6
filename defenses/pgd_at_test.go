package defenses

import (
	"context"
	"math"
	"slices"
	"testing"

	"github.com/certify-dev/certify/attacks"
	"github.com/certify-dev/certify/nets"
)

// TestPGDTrainingPrepareBatch: the PGD rows stay in the ε-ball ∩ [0, 1], raise the
// loss above FGSM's, differ per step (fresh random starts) and, under the ramp,
// stay within the ramped radius.
func TestPGDTrainingPrepareBatch(t *testing.T) {
	d := testData(t, 0, 64)
	g := testMLP(t, 1, 32)
	if _, err := nets.Train(g, d.X, d.Labels, testConfig(3, 16, 3e-3, 3)); err != nil {
		t.Fatal(err)
	}
	x := nets.FromData(append([]float64(nil), d.X.Data[:32*784]...), 32, 1, 28, 28)
	y := d.Labels[:32]
	rec := PGDTraining{Eps: 0.1, Step: 0.025, Steps: 10, RampEpochs: 1, Seed: 5}
	craft, err := rec.crafter(g, d, testConfig(1, 32, 1e-3, 1)) // 2 steps per epoch: ε/2 at step 0
	if err != nil {
		t.Fatal(err)
	}
	loss := func(p *nets.Tensor) float64 {
		v, _, err := g.LossGrad(p, y, nets.CrossEntropy{})
		if err != nil {
			t.Fatal(err)
		}
		s := 0.0
		for _, l := range v {
			s += l
		}
		return s / float64(len(v))
	}
	fg := nets.FromData(atIndependentFGSM(t, g, x, y, 0.1), x.Shape...)
	var prev *nets.Tensor
	for _, c := range []struct {
		gstep int
		eps   float64
	}{{0, 0.05}, {1, 0.1}, {2, 0.1}} {
		adv, err := craft(c.gstep, x, y)
		if err != nil {
			t.Fatal(err)
		}
		maxd := 0.0
		for k, v := range adv.Data {
			if v < 0 || v > 1 {
				t.Fatalf("step %d: value %v outside [0,1]", c.gstep, v)
			}
			maxd = math.Max(maxd, math.Abs(v-x.Data[k]))
		}
		if maxd > c.eps+1e-12 || maxd < c.eps-1e-9 {
			t.Fatalf("step %d: largest move %v, want ε = %v", c.gstep, maxd, c.eps)
		}
		if c.eps == 0.1 {
			if la, lf := loss(adv), loss(fg); la <= lf {
				t.Fatalf("step %d: PGD loss %v not above FGSM's %v", c.gstep, la, lf)
			}
		}
		if prev != nil && c.gstep == 2 && slices.Equal(prev.Data, adv.Data) {
			t.Fatal("steps 1 and 2 gave the same PGD points: the random starts do not change per step")
		}
		prev = adv
	}
	again, _ := craft(2, x, y)
	if !slices.Equal(again.Data, prev.Data) {
		t.Fatal("the same step crafted twice gave different points")
	}
}

// atRobustAcc is the accuracy of m on d under PGD (20 steps of ε/4, CE) at ε.
func atRobustAcc(t *testing.T, m nets.Differentiable, d Data, eps float64) float64 {
	t.Helper()
	a := attacks.NewPGD(attacks.Budget{Norm: attacks.LInf, Eps: eps, Lo: 0, Hi: 1}, 9)
	a.Steps, a.Step = 20, eps/4
	r, err := a.Attack(context.Background(), m, d.X, d.Labels)
	if err != nil {
		t.Fatal(err)
	}
	return testAccuracy(t, m, r.Adv, d.Labels)
}

// TestPGDTrainingRobustness: PGD-AT of a small MLP (ε = 0.1) holds more held-out
// rows against PGD at ε = 0.1 than the same net trained normally, same seed and
// budget.
func TestPGDTrainingRobustness(t *testing.T) {
	train, test := testData(t, 0, 800), testData(t, 800, 1000)
	plain, adv := testMLP(t, 7, 64), testMLP(t, 7, 64)
	if _, err := nets.Train(plain, train.X, train.Labels, testConfig(12, 32, 2e-3, 7)); err != nil {
		t.Fatal(err)
	}
	rec := PGDTraining{Eps: 0.1, Step: 0.03, Steps: 5, Seed: 7}
	stats, err := rec.Train(adv, train, testConfig(12, 32, 2e-3, 7))
	if err != nil {
		t.Fatal(err)
	}
	rp, ra := atRobustAcc(t, plain, test, 0.1), atRobustAcc(t, adv, test, 0.1)
	cp, _ := nets.Accuracy(plain, test.X, test.Labels, 100)
	ca, _ := nets.Accuracy(adv, test.X, test.Labels, 100)
	t.Logf("clean %.3f → %.3f, PGD ε=0.1 %.3f → %.3f; last epoch %+v", cp, ca, rp, ra, stats[len(stats)-1])
	// Measured: clean 0.910 → 0.830, PGD 0.070 → 0.545.
	if ra < rp+0.3 || ca < 0.7 {
		t.Fatalf("PGD-AT: robust accuracy %.3f (plain %.3f), clean %.3f: want a gain of at least 0.3 and clean ≥ 0.7", ra, rp, ca)
	}
}
