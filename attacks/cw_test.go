package attacks

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/certify-dev/certify/nets"
)

// minNormLinearCase is an affine K-class model and a batch whose exact minimal L2
// adversarial distances are known in closed form (mnClosestBoundaryL2): the foot of
// the perpendicular on the nearest boundary lies well inside [0,1] and is claimed by
// no third class, which the constructor checks.
type minNormLinearCase struct {
	w      [][]float64
	b      []float64
	x      *nets.Tensor
	labels []int
	dist   []float64 // exact minimal L2 distance per row
}

func newMinNormLinearCase(t *testing.T, rows int) minNormLinearCase {
	t.Helper()
	rng := rand.New(rand.NewPCG(7, 8))
	const k, d = 3, 10
	c := minNormLinearCase{w: make([][]float64, k), b: make([]float64, k), x: nets.NewTensor(rows, d)}
	for j := range c.w {
		c.w[j] = make([]float64, d)
		for i := range c.w[j] {
			c.w[j][i] = rng.NormFloat64()
		}
	}
	for r := 0; r < rows; {
		xr := c.x.Data[r*d : (r+1)*d]
		for i := range xr {
			xr[i] = 0.3 + 0.4*rng.Float64()
		}
		z := mnAffineLogits(c.w, c.b, xr)
		y := mnArgmax(z)
		dist, l := mnClosestBoundaryL2(c.w, c.b, xr, y)
		if dist < 0.05 || dist > 0.5 {
			continue
		}
		// The foot of the perpendicular: inside the domain, and z_l = z_y is the top.
		n2 := 0.0
		for i := range xr {
			v := c.w[l][i] - c.w[y][i]
			n2 += v * v
		}
		foot := make([]float64, d)
		ok := true
		for i := range xr {
			foot[i] = xr[i] + (z[y]-z[l])/n2*(c.w[l][i]-c.w[y][i])
			ok = ok && foot[i] > 0.01 && foot[i] < 0.99
		}
		zf := mnAffineLogits(c.w, c.b, foot)
		for j := range zf {
			ok = ok && (j == y || j == l || zf[j] < zf[y]-1e-3)
		}
		if !ok {
			continue
		}
		c.labels = append(c.labels, y)
		c.dist = append(c.dist, dist)
		r++
	}
	return c
}

// TestCWLinearMinimalDistance: on an affine model C&W's closest point is within a
// few per cent of the exact minimal L2 distance, never below it, and misclassified.
func TestCWLinearMinimalDistance(t *testing.T) {
	c := newMinNormLinearCase(t, 12)
	g := linearModel(t, c.w, c.b)
	a := NewCW(Budget{Norm: L2, Lo: 0, Hi: 1}, 1)
	r, err := a.MinNorm(context.Background(), g, c.x, c.labels)
	if err != nil {
		t.Fatal(err)
	}
	pred := mnPredictions(t, g, r.Adv)
	worst := 0.0
	for i, want := range c.dist {
		if !r.Success[i] || pred[i] == c.labels[i] {
			t.Fatalf("row %d: success %v, class %d, label %d", i, r.Success[i], pred[i], c.labels[i])
		}
		if r.Dist[i] < want*(1-1e-9) {
			t.Fatalf("row %d: distance %g below the exact minimum %g", i, r.Dist[i], want)
		}
		worst = max(worst, r.Dist[i]/want-1)
		if r.Dist[i] > want*1.03 {
			t.Errorf("row %d: distance %g, more than 3%% above the minimum %g", i, r.Dist[i], want)
		}
	}
	t.Logf("C&W on the affine model: worst excess over the minimal L2 distance %.3f%%", 100*worst)
}

func TestCWBudget(t *testing.T) {
	c := newMinNormLinearCase(t, 4)
	g := linearModel(t, c.w, c.b)
	ctx := context.Background()
	min, err := NewCW(Budget{Norm: L2, Lo: 0, Hi: 1}, 1).MinNorm(ctx, g, c.x, c.labels)
	if err != nil {
		t.Fatal(err)
	}
	for _, eps := range []float64{0.9, 1.1} {
		b := Budget{Norm: L2, Eps: eps * min.Dist[0], Lo: 0, Hi: 1}
		r, err := NewCW(b, 1).Attack(ctx, g, c.x, c.labels)
		if err != nil {
			t.Fatal(err)
		}
		if r.Success[0] != (eps > 1) {
			t.Errorf("eps = %g × minimal distance: success %v", eps, r.Success[0])
		}
		for i := range c.labels {
			if r.Success[i] && r.Dist[i] > b.Eps {
				t.Errorf("row %d: success at distance %g > eps %g", i, r.Dist[i], b.Eps)
			}
		}
	}
}

func TestCWErrors(t *testing.T) {
	g := linearModel(t, [][]float64{{1, 0}, {0, 1}}, []float64{0, 0})
	x := nets.FromData([]float64{0.75, 0.25}, 1, 2)
	ctx := context.Background()
	for name, c := range map[string]struct {
		a CW
		m nets.Classifier
	}{
		"linf":         {NewCW(Budget{Norm: LInf, Lo: 0, Hi: 1}, 1), g},
		"black box":    {NewCW(Budget{Norm: L2, Lo: 0, Hi: 1}, 1), mnScoresOnly{g}},
		"negative lr":  {CW{Budget: Budget{Norm: L2, Lo: 0, Hi: 1}, LR: -1}, g},
		"negative κ":   {CW{Budget: Budget{Norm: L2, Lo: 0, Hi: 1}, Confidence: -1}, g},
		"empty domain": {NewCW(Budget{Norm: L2, Lo: 1, Hi: 1}, 1), g},
	} {
		if _, err := c.a.MinNorm(ctx, c.m, x, []int{0}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := NewCW(Budget{Norm: L2, Lo: 0, Hi: 0.5}, 1).MinNorm(ctx, g, x, []int{0}); err == nil {
		t.Error("input outside the domain accepted")
	}
}

// TestCWConfidence: with κ > 0 the returned points win by more than κ.
func TestCWConfidence(t *testing.T) {
	c := newMinNormLinearCase(t, 4)
	g := linearModel(t, c.w, c.b)
	a := NewCW(Budget{Norm: L2, Lo: 0, Hi: 1}, 1)
	a.Confidence = 0.5
	r, err := a.MinNorm(context.Background(), g, c.x, c.labels)
	if err != nil {
		t.Fatal(err)
	}
	z, err := g.Logits(r.Adv)
	if err != nil {
		t.Fatal(err)
	}
	for i, y := range c.labels {
		if r.Success[i] && minNormMargin(z.Data[i*3:(i+1)*3], y) <= 0.5 {
			t.Errorf("row %d: margin %g ≤ κ", i, minNormMargin(z.Data[i*3:(i+1)*3], y))
		}
	}
}

// TestCWShippedMLP: a short C&W run on the shipped MLP returns misclassified points
// at positive distances, and its median L2 is comparable to DeepFool's (within
// 10 %: C&W optimises the distance but its binary search can settle on a farther
// class, DeepFool only linearises towards the nearest boundary).
func TestCWShippedMLP(t *testing.T) {
	g, x, labels := shippedMLP(t, 8)
	a := NewCW(Budget{Norm: L2, Lo: 0, Hi: 1}, 1)
	a.Steps, a.SearchSteps, a.InitialConst = 300, 3, 1
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
	t.Logf("cw: median L2 %.4f over %d of %d rows", med, n, len(labels))
	if n < len(labels)/2 || !(med > 0) {
		t.Errorf("median %g over %d rows", med, n)
	}
	df, err := NewDeepFool(Budget{Norm: L2, Lo: 0, Hi: 1}, 1).MinNorm(context.Background(), g, x, labels)
	if err != nil {
		t.Fatal(err)
	}
	dmed, _ := MedianDist(df)
	t.Logf("deepfool: median L2 %.4f", dmed)
	if med > 1.1*dmed {
		t.Errorf("C&W median L2 %g more than 10%% above DeepFool's %g", med, dmed)
	}
}
