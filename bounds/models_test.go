package bounds

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/certify-dev/certify/nets"
)

// TestShippedModels: on the shipped MNIST MLP and CNN, 4 test samples at L∞
// radius 0.01 in [0, 1], with and without SoundFP: every value of the network at
// 30 points per box (centre, corners, uniform) lies in its IBP box and in CROWN's
// boxes, every robustness margin at least the IBP, CROWN and alpha-CROWN bounds,
// and CROWN ≥ IBP, alpha-CROWN ≥ CROWN per row. Logs the certified counts.
func TestShippedModels(t *testing.T) {
	if testing.Short() {
		t.Skip("bounds on the shipped models")
	}
	const n, p = 4, 30
	for _, model := range []string{"mnist_mlp", "mnist_cnn"} {
		g, x, labels := loadMNIST(t, "../testdata/"+model+".onnx", n)
		box := LinfBox(x, 0.01, 0, 1)
		specs := robustnessSpecs(t, labels)
		pts := samplePoints(rand.New(rand.NewPCG(1, 1)), box, p)
		vals, err := g.Forward(map[string]*nets.Tensor{g.Inputs[0].Name: pts})
		if err != nil {
			t.Fatal(err)
		}
		sv := specValues(specs, vals[g.Outputs[0].Name], p)
		for _, sound := range []bool{false, true} {
			what := fmt.Sprintf("%s sound=%v", model, sound)
			opt := Options{SoundFP: sound}
			boxes, err := IBP(g, box, opt)
			if err != nil {
				t.Fatal(err)
			}
			checkBoxes(t, what+" IBP", boxes, vals, n, p, sound)
			t0 := time.Now()
			ibp, err := SpecIBP(g, box, specs, opt)
			if err != nil {
				t.Fatal(err)
			}
			t1 := time.Now()
			crown, err := CROWN(g, box, specs, opt)
			if err != nil {
				t.Fatal(err)
			}
			t2 := time.Now()
			alpha, err := AlphaCROWN(g, box, specs, AlphaOptions{Options: opt})
			if err != nil {
				t.Fatal(err)
			}
			t3 := time.Now()
			checkBoxes(t, what+" CROWN", crown.Nodes, vals, n, p, sound)
			cert := map[string]int{}
			for name, l := range map[string][][]float64{"ibp": ibp.Lower, "crown": crown.Lower, "alpha": alpha.Lower} {
				checkLower(t, what+" "+name, l, sv, sound)
				for i := range l {
					m := math.Inf(1)
					for _, v := range l[i] {
						m = min(m, v)
					}
					if m > 0 {
						cert[name]++
					}
				}
			}
			for i := range specs {
				for q := range specs[i].C {
					if crown.Lower[i][q] < ibp.Lower[i][q] || alpha.Lower[i][q] < crown.Lower[i][q] {
						t.Errorf("%s sample %d row %d: ibp %v, crown %v, alpha %v: not ordered", what, i, q, ibp.Lower[i][q], crown.Lower[i][q], alpha.Lower[i][q])
					}
				}
			}
			t.Logf("%s: certified of %d: %v; worst row of sample 0: ibp %.3f crown %.3f alpha %.3f; time ibp %v crown %v alpha %v",
				what, n, cert, minRow(ibp.Lower[0]), minRow(crown.Lower[0]), minRow(alpha.Lower[0]),
				t1.Sub(t0).Round(time.Millisecond), t2.Sub(t1).Round(time.Millisecond), t3.Sub(t2).Round(time.Millisecond))
		}
	}
}

func minRow(l []float64) float64 {
	m := math.Inf(1)
	for _, v := range l {
		m = min(m, v)
	}
	return m
}
