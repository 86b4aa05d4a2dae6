package defenses

import (
	"math"
	"slices"
	"testing"

	"github.com/certify-dev/certify/nets"
)

// TestGenerativeTrainingGenerator: G(x) matches the formula computed by hand from
// its params, stays in the ε-ball ∩ [0, 1], and generator-only steps against a
// fixed trained classifier raise that classifier's cross-entropy on G(x).
func TestGenerativeTrainingGenerator(t *testing.T) {
	d := testData(t, 0, 256)
	f := testGraph(t, "mnist_mlp.onnx")
	const eps = 0.2
	rec := GenerativeTraining{Eps: eps, Hidden: 32, GenLR: 3e-3, CleanWeight: 0.5, Seed: 4}
	gen, err := rec.generator(f, d, testConfig(1, 64, 1e-3, 1))
	if err != nil {
		t.Fatal(err)
	}
	fBefore := atWeights(f)
	check := func() float64 {
		out, err := gen.apply(d.X)
		if err != nil {
			t.Fatal(err)
		}
		p := gen.net.Params
		w1, b1, w2, b2 := p["gen.fc1.weight"], p["gen.fc1.bias"], p["gen.fc2.weight"], p["gen.fc2.bias"]
		h := len(b1.Data)
		for i := 0; i < 3; i++ {
			x := d.X.Data[i*784 : (i+1)*784]
			hid := make([]float64, h)
			for j := range hid {
				s := b1.Data[j]
				for k, v := range x {
					s += w1.Data[j*784+k] * v
				}
				hid[j] = math.Max(s, 0)
			}
			for k := range x {
				s := b2.Data[k]
				for j, v := range hid {
					s += w2.Data[k*h+j] * v
				}
				want := math.Min(math.Max(x[k]+eps*math.Tanh(s), 0), 1)
				if got := out.Data[i*784+k]; math.Abs(got-want) > 1e-12 {
					t.Fatalf("G(x)[%d,%d] = %v, by hand %v", i, k, got, want)
				}
			}
		}
		for k, v := range out.Data {
			if v < 0 || v > 1 || math.Abs(v-d.X.Data[k]) > eps+1e-12 {
				t.Fatalf("G(x) value %d: %v for %v, outside [0,1] or the ε-ball", k, v, d.X.Data[k])
			}
		}
		v, _, err := nets.CrossEntropy{}.Eval(testLogits(t, f, out), d.Labels)
		if err != nil {
			t.Fatal(err)
		}
		s := 0.0
		for _, l := range v {
			s += l / float64(len(v))
		}
		return s
	}
	first := check()
	for s := 0; s < 30; s++ {
		lo := (s % 4) * 64
		xb := nets.FromData(d.X.Data[lo*784:(lo+64)*784], 64, 1, 28, 28)
		if _, err := gen.step(xb, d.Labels[lo:lo+64]); err != nil {
			t.Fatal(err)
		}
	}
	last := check()
	t.Logf("classifier CE on G(x): %.3f → %.3f after 30 generator steps", first, last)
	if last < first+0.5 {
		t.Fatalf("CE on G(x) rose from %v only to %v", first, last)
	}
	if !slices.Equal(fBefore, atWeights(f)) {
		t.Fatal("generator steps changed the classifier")
	}
}
