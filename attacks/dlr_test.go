package attacks

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/certify-dev/certify/nets"
)

// TestDLRClosedForm: a hand-worked row. z = (1, 4, 2, 0), y = 0: sorted 4, 2, 1, 0;
// DLR = −(1 − 4)/(4 − 1 + 1e-12) = 1 (misclassified, so > 0). Targeted at t = 2:
// −(1 − 2)/(4 − (1 + 0)/2 + 1e-12) = 1/3.5.
func TestDLRClosedForm(t *testing.T) {
	z := nets.FromData([]float64{1, 4, 2, 0}, 1, 4)
	v, _, err := DLR{}.Eval(z, []int{0})
	if err != nil || math.Abs(v[0]-1) > 1e-12 {
		t.Fatalf("DLR %v (%v), want 1", v, err)
	}
	v, _, err = TargetedDLR{Targets: []int{2}}.Eval(z, []int{0})
	if err != nil || math.Abs(v[0]-1/3.5) > 1e-12 {
		t.Fatalf("targeted DLR %v (%v), want 1/3.5", v, err)
	}
	// Correctly classified (y = 1): −(4 − 2)/(4 − 1) < 0.
	v, _, _ = DLR{}.Eval(z, []int{1})
	if math.Abs(v[0]+2.0/3) > 1e-12 {
		t.Fatalf("DLR %v, want −2/3", v)
	}
}

// TestDLRGradient compares the analytic gradients with central finite differences
// on random logits (distinct values, away from the kinks of the sort), and checks
// the invariance to z ↦ a·z + c (a > 0) that motivates DLR.
func TestDLRGradient(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	const k, rows = 6, 20
	z := nets.NewTensor(rows, k)
	for i := range z.Data {
		z.Data[i] = 3 * r.NormFloat64()
	}
	labels := make([]int, rows)
	targets := make([]int, rows)
	for i := range labels {
		labels[i] = r.IntN(k)
		targets[i] = (labels[i] + 1 + r.IntN(k-1)) % k
	}
	for _, l := range []nets.Loss{DLR{}, TargetedDLR{Targets: targets}} {
		v, g, err := l.Eval(z, labels)
		if err != nil {
			t.Fatal(err)
		}
		const h = 1e-6
		for q := range z.Data {
			old := z.Data[q]
			z.Data[q] = old + h
			vp, _, _ := l.Eval(z, labels)
			z.Data[q] = old - h
			vm, _, _ := l.Eval(z, labels)
			z.Data[q] = old
			i := q / k
			fd := (vp[i] - vm[i]) / (2 * h)
			if math.Abs(fd-g.Data[q]) > 1e-6*(1+math.Abs(fd)) {
				t.Fatalf("%T row %d class %d: gradient %g, finite difference %g", l, i, q%k, g.Data[q], fd)
			}
		}
		scaled := z.Clone()
		for q := range scaled.Data {
			scaled.Data[q] = 2.5*scaled.Data[q] - 7
		}
		vs, _, _ := l.Eval(scaled, labels)
		for i := range v {
			if math.Abs(v[i]-vs[i]) > 1e-9*(1+math.Abs(v[i])) {
				t.Fatalf("%T row %d: %g after affine rescaling, %g before", l, i, vs[i], v[i])
			}
			// DLR > 0 iff misclassified; targeted DLR > 0 iff z_t > z_y.
			zi := z.Data[i*k : (i+1)*k]
			var want bool
			if _, ok := l.(DLR); ok {
				want = wbArgmax(zi) != labels[i]
			} else {
				want = zi[targets[i]] > zi[labels[i]]
			}
			if (v[i] > 0) != want {
				t.Fatalf("%T row %d: value %g, sign wrong", l, i, v[i])
			}
		}
	}
}

func TestDLRRejects(t *testing.T) {
	z := nets.FromData([]float64{1, 2, 3, 4}, 1, 4)
	if _, _, err := (TargetedDLR{Targets: []int{0, 1}}).Eval(z, []int{0}); err == nil {
		t.Error("targets count not checked")
	}
	if _, _, err := (TargetedDLR{Targets: []int{9}}).Eval(z, []int{0}); err == nil {
		t.Error("target range not checked")
	}
	if _, _, err := (DLR{}).Eval(nets.FromData([]float64{1, 2}, 1, 2), []int{0}); err == nil {
		t.Error("2 classes accepted")
	}
	if _, _, err := (DLR{}).Eval(z, []int{4}); err == nil {
		t.Error("label range not checked")
	}
}
