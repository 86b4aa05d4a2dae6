package defenses

import (
	"math"
	"testing"

	"github.com/certify-dev/certify/nets"
)

// Each member answers about 1/M of the rows (within 4 binomial standard
// deviations), every row's logits are exactly its member's on that row alone, and
// the choice depends on the row only: the same rows in another batch order, or
// alone, get the same answers.
func TestRotationChoice(t *testing.T) {
	cnn, mlp := testGraph(t, "mnist_cnn.onnx"), testGraph(t, "mnist_mlp.onnx")
	x, _ := testMNIST(t, 0, 1000)
	per := x.Len() / x.Shape[0]
	for _, members := range [][]nets.Differentiable{{cnn, mlp}, {cnn, mlp, cnn}} {
		r := Rotation{Members: members, Seed: 11, Shape: []int{1, 28, 28}}
		m := len(members)
		counts := make([]int, m)
		for i := 0; i < x.Shape[0]; i++ {
			counts[r.Choice(x.Data[i*per:(i+1)*per])]++
		}
		n, p := float64(x.Shape[0]), 1/float64(m)
		sd := math.Sqrt(n * p * (1 - p))
		for c, k := range counts {
			if math.Abs(float64(k)-n*p) > 4*sd {
				t.Errorf("%d members: member %d answers %d of %g rows, want %g ± %.0f", m, c, k, n, n*p, 4*sd)
			}
		}
		t.Logf("%d members: choices %v of %g rows", m, counts, n)
	}
	// Reproducibility and routing, on 60 rows.
	r := Rotation{Members: []nets.Differentiable{cnn, mlp}, Seed: 11, Shape: []int{1, 28, 28}}
	xs, _ := testMNIST(t, 0, 60)
	z := testLogits(t, r, xs)
	rev := nets.NewTensor(xs.Shape...)
	for i := 0; i < 60; i++ {
		copy(rev.Data[i*per:(i+1)*per], xs.Data[(59-i)*per:(60-i)*per])
	}
	zr := testLogits(t, r, rev)
	for i := 0; i < 60; i++ {
		row := xs.Row(i)
		c := r.Choice(row.Data)
		own := testLogits(t, r.Members[c], row)
		other := testLogits(t, r.Members[1-c], row)
		alone := testLogits(t, r, row)
		for j := 0; j < 10; j++ {
			a := z.Data[i*10+j]
			if math.Abs(a-own.Data[j]) > 1e-12 || math.Abs(a-alone.Data[j]) > 1e-12 || math.Abs(a-zr.Data[(59-i)*10+j]) > 1e-12 {
				t.Fatalf("row %d class %d: batch %g, reversed batch %g, alone %g, member %d %g", i, j, a, zr.Data[(59-i)*10+j], alone.Data[j], c, own.Data[j])
			}
		}
		if math.Abs(z.Data[i*10]-other.Data[0]) < 1e-9 {
			t.Fatalf("row %d: the other member gives the same logits", i)
		}
	}
}

// The naive gradient of each row is its chosen member's; the adaptive target is the
// mean of the members' probabilities (checked by hand), with the ensemble's
// gradient.
func TestRotationGradientAndTarget(t *testing.T) {
	cnn, mlp := testGraph(t, "mnist_cnn.onnx"), testGraph(t, "mnist_mlp.onnx")
	r := Rotation{Members: []nets.Differentiable{cnn, mlp}, Seed: 2, Shape: []int{1, 28, 28}}
	x, y := testMNIST(t, 0, 30)
	per := x.Len() / x.Shape[0]
	vals, g, err := r.LossGrad(x, y, nets.CrossEntropy{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range y {
		row := x.Row(i)
		c := r.Choice(row.Data)
		v, gm, err := r.Members[c].LossGrad(row, y[i:i+1], nets.CrossEntropy{})
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(v[0]-vals[i]) > 1e-12 {
			t.Fatalf("row %d: loss %g, member %d's %g", i, vals[i], c, v[0])
		}
		for j, gv := range gm.Data {
			if math.Abs(gv-g.Data[i*per+j]) > 1e-12 {
				t.Fatalf("row %d, pixel %d: gradient %g, member %d's %g", i, j, g.Data[i*per+j], c, gv)
			}
		}
	}
	tgt, err := r.AdaptiveTarget()
	if err != nil || tgt.Name != "eot" || tgt.Loss != nil {
		t.Fatalf("target %+v, %v", tgt, err)
	}
	za, zc, zm := testLogits(t, tgt.Model, x), testLogits(t, cnn, x), testLogits(t, mlp, x)
	for i := range y {
		pc, pm := ensTestSoftmax(zc.Data[i*10:(i+1)*10]), ensTestSoftmax(zm.Data[i*10:(i+1)*10])
		for j := 0; j < 10; j++ {
			if want := (pc[j] + pm[j]) / 2; math.Abs(math.Exp(za.Data[i*10+j])-want) > 1e-12 {
				t.Fatalf("row %d class %d: target probability %g, mean of the members' %g", i, j, math.Exp(za.Data[i*10+j]), want)
			}
		}
	}
}

// Rotation is not gradient masking: naive PGD at L∞ ε = 0.1 (the chosen member's
// gradient, and a fresh choice at every iterate, so a point that fools either
// member half the time is found) breaks it as the adaptive attack on the expected
// probabilities does. Measured on 100 images: clean 1.00, naive 0.05, EOT 0.51
// (EOT's early stop ends at points that fool the average, judged by one member).
func TestRotationExhibit(t *testing.T) {
	cnn, mlp := testGraph(t, "mnist_cnn.onnx"), testGraph(t, "mnist_mlp.onnx")
	r := Rotation{Members: []nets.Differentiable{cnn, mlp}, Seed: 1, Shape: []int{1, 28, 28}}
	x, y := testMNIST(t, 0, 100)
	clean, naive, adaptive := ensTestExhibit(t, r, x, y, 0.1)
	t.Logf("rotation (CNN, MLP), eps 0.1: clean %.2f, naive PGD %.2f, EOT PGD %.2f", clean, naive, adaptive)
	if clean < 0.95 || naive > 0.2 || adaptive > 0.7 {
		t.Errorf("clean %.2f, naive %.2f, adaptive %.2f: want clean >= 0.95, naive <= 0.20, adaptive <= 0.70", clean, naive, adaptive)
	}
}
