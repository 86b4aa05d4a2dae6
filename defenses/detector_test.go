package defenses

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/certify-dev/certify/nets"
)

// detRate is the fraction of rows of a [n, K+1] logits tensor whose argmax is the
// reject column, over the rows where keep is true (all rows for nil).
func detRate(z *nets.Tensor, keep []bool) float64 {
	k1 := z.Shape[1]
	rej, n := 0, 0
	for i, a := range z.Argmax() {
		if keep != nil && !keep[i] {
			continue
		}
		n++
		if a == k1-1 {
			rej++
		}
	}
	return float64(rej) / float64(max(n, 1))
}

// detDirectional checks d/dh L(x + h·u) at h = 0 by central differences against
// ⟨∇L, u⟩ for a random direction u per row, with m's LossGrad.
func detDirectional(t *testing.T, m nets.Differentiable, x *nets.Tensor, labels []int, loss nets.Loss, seed uint64, tol float64) {
	t.Helper()
	vals, grad, err := m.LossGrad(x, labels, loss)
	if err != nil {
		t.Fatal(err)
	}
	want := testLoss(t, m, x, labels, loss)
	for i := range vals {
		if math.Abs(vals[i]-want[i]) > 1e-9*(1+math.Abs(want[i])) {
			t.Errorf("row %d: LossGrad value %v, loss of Logits %v", i, vals[i], want[i])
		}
	}
	// A small step: ReLU kinks within h·|u| of x would make the difference quotient
	// average two sides.
	const h = 1e-7
	u, xp, xm := testDirection(rand.New(rand.NewPCG(seed, 1)), x, h)
	lp, lm := testLoss(t, m, xp, labels, loss), testLoss(t, m, xm, labels, loss)
	dots := rowDots(grad, u)
	for i := range labels {
		fd := (lp[i] - lm[i]) / (2 * h)
		an := dots[i]
		if math.Abs(fd-an) > tol*(1+math.Abs(fd)) {
			t.Errorf("row %d: directional derivative %v by finite differences, %v by LossGrad", i, fd, an)
		}
	}
}

func TestDetectorRejectColumn(t *testing.T) {
	cases := []struct {
		name   string
		z      []float64
		s      float64
		wantZ  float64
		reject bool
	}{
		{"positive score rejects", []float64{1, 3, 2}, 0.5, 3.5, true},
		{"zero score ties and keeps the class", []float64{1, 3, 2}, 0, 3, false},
		{"negative score keeps the class", []float64{1, 3, 2}, -0.1, 2.9, false},
		{"tiny positive score rejects", []float64{-2, -1, -5}, 1e-12, -1 + 1e-12, true},
		{"top class tied", []float64{4, 4, 0}, 2, 6, true},
		{"NaN score rejects (fails closed)", []float64{1, 3, 2}, math.NaN(), math.Inf(1), true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			z := nets.FromData(append([]float64(nil), c.z...), 1, len(c.z))
			zr, err := withReject(z, []float64{c.s})
			if err != nil {
				t.Fatal(err)
			}
			k := len(c.z)
			if zr.Data[k] != c.wantZ {
				t.Errorf("reject column %v, want %v", zr.Data[k], c.wantZ)
			}
			for j := range c.z {
				if zr.Data[j] != c.z[j] {
					t.Errorf("class column %d changed: %v", j, zr.Data[j])
				}
			}
			if got := zr.Argmax()[0] == k; got != c.reject {
				t.Errorf("argmax %d (rejected %v), want rejected %v", zr.Argmax()[0], got, c.reject)
			}
		})
	}
	if _, err := withReject(nets.NewTensor(2, 3), []float64{0}); err == nil {
		t.Error("withReject accepted 2 rows and 1 score")
	}
}

// TestDetectorRejectBackward checks rejectBackward against finite differences of a
// random linear functional of withReject(z, s) (rows without ties).
func TestDetectorRejectBackward(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	n, k := 5, 4
	z := nets.NewTensor(n, k)
	for i := range z.Data {
		z.Data[i] = r.NormFloat64()
	}
	s := []float64{0.3, -1, 2, 0, -0.2}
	w := nets.NewTensor(n, k+1)
	for i := range w.Data {
		w.Data[i] = r.NormFloat64()
	}
	f := func(z *nets.Tensor, s []float64) float64 {
		zr, err := withReject(z, s)
		if err != nil {
			t.Fatal(err)
		}
		v := 0.0
		for i := range zr.Data {
			v += w.Data[i] * zr.Data[i]
		}
		return v
	}
	dz, ds := rejectBackward(z, w)
	const h = 1e-6
	for i := range z.Data {
		zp, zm := z.Clone(), z.Clone()
		zp.Data[i] += h
		zm.Data[i] -= h
		if fd := (f(zp, s) - f(zm, s)) / (2 * h); math.Abs(fd-dz.Data[i]) > 1e-6 {
			t.Errorf("∂/∂z[%d]: %v by finite differences, %v", i, fd, dz.Data[i])
		}
	}
	for i := range s {
		sp, sm := append([]float64(nil), s...), append([]float64(nil), s...)
		sp[i] += h
		sm[i] -= h
		if fd := (f(z, sp) - f(z, sm)) / (2 * h); math.Abs(fd-ds[i]) > 1e-6 {
			t.Errorf("∂/∂s[%d]: %v by finite differences, %v", i, fd, ds[i])
		}
	}
}

func TestDetectorEvasionLoss(t *testing.T) {
	cases := []struct {
		name   string
		z      []float64
		y, rej int
		want   float64
		grad   []float64
	}{
		// other class 1 (3) beats label 0 (1) and reject (0.5): evaded, L = 3 − 1.
		{"evaded", []float64{1, 3, 2, 0.5}, 0, 3, 2, []float64{-1, 1, 0, 0}},
		// reject column (4) beats the best other class (3): L = 3 − 4.
		{"detected", []float64{1, 3, 2, 4}, 0, 3, -1, []float64{0, 1, 0, -1}},
		// label wins: L = 2 − 5.
		{"correct", []float64{5, 2, 1, 0}, 0, 3, -3, []float64{-1, 1, 0, 0}},
		// reject column in the middle, label 2.
		{"reject column 1", []float64{0, 1, 2, 3}, 2, 1, 1, []float64{0, 0, -1, 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v, g, err := EvasionLoss{Reject: c.rej}.Eval(nets.FromData(c.z, 1, len(c.z)), []int{c.y})
			if err != nil {
				t.Fatal(err)
			}
			if v[0] != c.want {
				t.Errorf("loss %v, want %v", v[0], c.want)
			}
			for j := range c.grad {
				if g.Data[j] != c.grad[j] {
					t.Errorf("gradient %v, want %v", g.Data, c.grad)
					break
				}
			}
			if (v[0] > 0) != (c.name == "evaded" || c.name == "reject column 1") {
				t.Errorf("loss %v: sign does not say whether the input evades", v[0])
			}
		})
	}
	// Finite differences on random logits (no ties almost surely).
	r := rand.New(rand.NewPCG(5, 6))
	n, k1 := 6, 11
	z := nets.NewTensor(n, k1)
	for i := range z.Data {
		z.Data[i] = 2 * r.NormFloat64()
	}
	labels := []int{0, 3, 9, 5, 1, 7}
	l := EvasionLoss{Reject: 10}
	_, g, err := l.Eval(z, labels)
	if err != nil {
		t.Fatal(err)
	}
	const h = 1e-6
	for i := range z.Data {
		zp, zm := z.Clone(), z.Clone()
		zp.Data[i] += h
		zm.Data[i] -= h
		vp, _, _ := l.Eval(zp, labels)
		vm, _, _ := l.Eval(zm, labels)
		row := i / k1
		if fd := (vp[row] - vm[row]) / (2 * h); math.Abs(fd-g.Data[i]) > 1e-6 {
			t.Errorf("∂L/∂z[%d]: %v by finite differences, %v", i, fd, g.Data[i])
		}
	}
	for _, bad := range []struct {
		z   *nets.Tensor
		y   []int
		rej int
	}{
		{nets.NewTensor(1, 4), []int{3}, 3}, // label is the reject column
		{nets.NewTensor(1, 4), []int{4}, 3}, // label out of range
		{nets.NewTensor(1, 2), []int{0}, 1}, // too few columns
		{nets.NewTensor(1, 4), []int{0}, 4}, // reject column out of range
		{nets.NewTensor(2, 4), []int{0}, 3}, // labels and rows
	} {
		if _, _, err := (EvasionLoss{Reject: bad.rej}).Eval(bad.z, bad.y); err == nil {
			t.Errorf("Eval of shape %v, labels %v, reject %d: no error", bad.z.Shape, bad.y, bad.rej)
		}
	}
}

func TestDetectorCalibrate(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	scores := make([]float64, 200)
	for i := range scores {
		scores[i] = r.NormFloat64()
	}
	above := func(s []float64, t float64) int {
		c := 0
		for _, v := range s {
			if v > t {
				c++
			}
		}
		return c
	}
	for _, c := range []struct {
		fpr  float64
		want int
	}{{0, 0}, {0.05, 10}, {0.013, 3}, {0.1, 20}, {0.5, 100}, {0.999, 200}, {1e-9, 1}} {
		th, err := calibrate(scores, c.fpr)
		if err != nil {
			t.Fatal(err)
		}
		if got := above(scores, th); got != c.want {
			t.Errorf("fpr %v: %d scores above %v, want %d", c.fpr, got, th, c.want)
		}
	}
	// The midpoint: scores 1..10, fpr 0.2 → between 8 and 9.
	s := []float64{3, 1, 2, 10, 9, 8, 7, 6, 5, 4}
	if th, _ := calibrate(s, 0.2); th != 8.5 {
		t.Errorf("threshold %v, want 8.5", th)
	}
	// A tie at the cut: fewer than ⌈fpr·n⌉ rejections, never more.
	tied := []float64{1, 2, 2, 2, 3}
	if th, _ := calibrate(tied, 0.4); above(tied, th) != 1 {
		t.Errorf("tied: %d above %v, want 1", above(tied, th), th)
	}
	for _, bad := range []struct {
		s   []float64
		fpr float64
	}{{nil, 0.1}, {scores, -0.1}, {scores, 1}, {scores, math.NaN()}, {[]float64{1, math.NaN()}, 0.5}} {
		if _, err := calibrate(bad.s, bad.fpr); err == nil {
			t.Errorf("calibrate(%d scores, %v): no error", len(bad.s), bad.fpr)
		}
	}
}

// TestDetectorVJP checks the generic (row by row) vector-Jacobian product against
// the graph's batched one.
func TestDetectorVJP(t *testing.T) {
	g := testCNN(t)
	x, _ := testMNIST(t, 0, 5)
	r := rand.New(rand.NewPCG(9, 9))
	v := nets.NewTensor(5, 10)
	for i := range v.Data {
		v.Data[i] = r.NormFloat64()
	}
	a, err := vjp(g, x, v)
	if err != nil {
		t.Fatal(err)
	}
	b, err := vjp(struct{ nets.Differentiable }{g}, x, v)
	if err != nil {
		t.Fatal(err)
	}
	for i := range a.Data {
		if math.Abs(a.Data[i]-b.Data[i]) > 1e-9 {
			t.Fatalf("element %d: %v batched, %v row by row", i, a.Data[i], b.Data[i])
		}
	}
}
