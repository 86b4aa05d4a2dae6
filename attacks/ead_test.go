package attacks

import (
	"context"
	"math"
	"sort"
	"testing"

	"github.com/certify-dev/certify/nets"
)

func TestEADShrink(t *testing.T) {
	for _, c := range []struct{ z, x0, want float64 }{
		{0.5, 0.2, 0.5 - 0.1},   // u = 0.3 > β: shrink towards x0 by β
		{0.25, 0.2, 0.2},        // |u| ≤ β: back to x0
		{0.15, 0.2, 0.2},        // |u| ≤ β
		{-0.2, 0.2, 0},          // u < −β: z + β = −0.1, projected to lo = 0
		{0.05, 0.2, 0.05 + 0.1}, // u = −0.15 < −β
		{1.5, 0.9, 1},           // projected to hi
	} {
		if got := eadShrink(c.z, c.x0, 0.1, 0, 1); math.Abs(got-c.want) > 1e-15 {
			t.Errorf("S(%g; x0 = %g) = %g, want %g", c.z, c.x0, got, c.want)
		}
	}
}

// minL1Affine is the exact minimal L1 distance from x (class y) to the region where
// class k beats y, for the affine model within the box [lo,hi]: a fractional
// knapsack — raise z_k − z_y by the deficit using the coordinates with the largest
// |w_k − w_y| first, each only as far as the box allows.
func minL1Affine(w [][]float64, b, x []float64, y, k int, lo, hi float64) float64 {
	z := mnAffineLogits(w, b, x)
	need := z[y] - z[k]
	idx := make([]int, len(x))
	for i := range idx {
		idx[i] = i
	}
	d := func(i int) float64 { return w[k][i] - w[y][i] }
	sort.Slice(idx, func(p, q int) bool { return math.Abs(d(idx[p])) > math.Abs(d(idx[q])) })
	dist := 0.0
	for _, i := range idx {
		room := hi - x[i]
		if d(i) < 0 {
			room = x[i] - lo
		}
		gain := math.Abs(d(i)) * room
		if gain >= need {
			return dist + need/math.Abs(d(i))
		}
		need -= gain
		dist += room
	}
	return math.Inf(1)
}

// TestEADLinear: with the EN rule and β = 1e-3 EAD's point is within a few per cent
// of the exact minimal L2 distance (never below it); with the L1 rule and β = 0.1 it
// is within a few per cent of the exact minimal L1 distance (a knapsack over the
// coordinates), and much closer to it than with β = 1e-3.
func TestEADLinear(t *testing.T) {
	c := newMinNormLinearCase(t, 8)
	g := linearModel(t, c.w, c.b)
	ctx := context.Background()

	en := NewEAD(Budget{Norm: L2, Lo: 0, Hi: 1}, 1)
	r, err := en.MinNorm(ctx, g, c.x, c.labels)
	if err != nil {
		t.Fatal(err)
	}
	pred := mnPredictions(t, g, r.Adv)
	worst := 0.0
	for i, want := range c.dist {
		if !r.Success[i] || pred[i] == c.labels[i] {
			t.Fatalf("EN row %d: success %v, class %d, label %d", i, r.Success[i], pred[i], c.labels[i])
		}
		if r.Dist[i] < want*(1-1e-9) {
			t.Fatalf("EN row %d: L2 distance %g below the exact minimum %g", i, r.Dist[i], want)
		}
		worst = max(worst, r.Dist[i]/want-1)
		if r.Dist[i] > want*1.05 {
			t.Errorf("EN row %d: L2 distance %g, more than 5%% above the minimum %g", i, r.Dist[i], want)
		}
	}
	t.Logf("EAD-EN: worst excess over the minimal L2 distance %.3f%%", 100*worst)

	l1 := NewEAD(Budget{Norm: L1, Lo: 0, Hi: 1}, 1)
	l1.Rule = EADL1
	small, err := l1.MinNorm(ctx, g, c.x, c.labels)
	if err != nil {
		t.Fatal(err)
	}
	l1.Beta = 0.1
	r, err = l1.MinNorm(ctx, g, c.x, c.labels)
	if err != nil {
		t.Fatal(err)
	}
	pred = mnPredictions(t, g, r.Adv)
	worst = 0.0
	d := c.x.Shape[1]
	sumSmall, sumLarge := 0.0, 0.0
	for i, y := range c.labels {
		sumSmall += small.Dist[i]
		sumLarge += r.Dist[i]
		want := math.Inf(1)
		for k := range c.w {
			if k != y {
				want = min(want, minL1Affine(c.w, c.b, c.x.Data[i*d:(i+1)*d], y, k, 0, 1))
			}
		}
		if !r.Success[i] || pred[i] == y {
			t.Fatalf("L1 row %d: success %v, class %d, label %d", i, r.Success[i], pred[i], y)
		}
		if r.Dist[i] < want*(1-1e-9) {
			t.Fatalf("L1 row %d: L1 distance %g below the exact minimum %g", i, r.Dist[i], want)
		}
		worst = max(worst, r.Dist[i]/want-1)
		if r.Dist[i] > want*1.05 {
			t.Errorf("L1 row %d: L1 distance %g, more than 5%% above the minimum %g", i, r.Dist[i], want)
		}
	}
	t.Logf("EAD-L1 (β = 0.1): worst excess over the minimal L1 distance %.3f%%; mean L1 %.4f, with β = 1e-3 %.4f",
		100*worst, sumLarge/float64(len(c.labels)), sumSmall/float64(len(c.labels)))
	if sumLarge > 0.9*sumSmall {
		t.Errorf("β = 0.1 gives mean L1 %g, not clearly below β = 1e-3's %g", sumLarge, sumSmall)
	}
}

func TestEADErrors(t *testing.T) {
	g := linearModel(t, [][]float64{{1, 0}, {0, 1}}, []float64{0, 0})
	x := nets.FromData([]float64{0.75, 0.25}, 1, 2)
	ctx := context.Background()
	for name, c := range map[string]struct {
		a EAD
		m nets.Classifier
	}{
		"black box":   {NewEAD(Budget{Norm: L1, Lo: 0, Hi: 1}, 1), mnScoresOnly{g}},
		"negative β":  {EAD{Budget: Budget{Norm: L1, Lo: 0, Hi: 1}, Beta: -1}, g},
		"bad rule":    {EAD{Budget: Budget{Norm: L1, Lo: 0, Hi: 1}, Rule: 7}, g},
		"negative lr": {EAD{Budget: Budget{Norm: L1, Lo: 0, Hi: 1}, LR: -1}, g},
	} {
		if _, err := c.a.MinNorm(ctx, c.m, x, []int{0}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestEADShippedMLP: a short EAD run on the shipped MLP returns misclassified points
// at positive L1 distances, and inside an L1 budget only points within it.
func TestEADShippedMLP(t *testing.T) {
	g, x, labels := shippedMLP(t, 8)
	a := NewEAD(Budget{Norm: L1, Eps: 8, Lo: 0, Hi: 1}, 1)
	a.Steps, a.SearchSteps, a.InitialConst = 60, 4, 1
	r, err := a.MinNorm(context.Background(), g, x, labels)
	if err != nil {
		t.Fatal(err)
	}
	pred := mnPredictions(t, g, r.Adv)
	for i := range labels {
		if r.Success[i] && (pred[i] == labels[i] || r.Dist[i] <= 0) {
			t.Errorf("row %d: success at distance %g with class %d = label", i, r.Dist[i], pred[i])
		}
	}
	med, n := MedianDist(r)
	t.Logf("ead: median L1 %.4f over %d of %d rows", med, n, len(labels))
	if n < len(labels)/2 || !(med > 0) {
		t.Errorf("median %g over %d rows", med, n)
	}
	rb, err := a.Attack(context.Background(), g, x, labels)
	if err != nil {
		t.Fatal(err)
	}
	for i := range labels {
		if rb.Success[i] != (r.Success[i] && r.Dist[i] <= 8) {
			t.Errorf("row %d: inside the budget %v, minimal distance %g (success %v)", i, rb.Success[i], r.Dist[i], r.Success[i])
		}
	}
}
