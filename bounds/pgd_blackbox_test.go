package bounds_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/certify-dev/certify/bounds"
	"github.com/certify-dev/certify/nets"
)

// checkIterates returns a PGD visitor asserting that every spec row of every
// sample at every iterate is at least the row's proven lower bound, for each set of
// bounds given (by method name); tol allows rounding when the bounds are not
// SoundFP.
func checkIterates(t *testing.T, what string, specs []bounds.Spec, lowers map[string][][]float64, tol float64, visits *int) func(logits, x *nets.Tensor) {
	return func(logits, _ *nets.Tensor) {
		k := logits.Len() / logits.Batch()
		for i, s := range specs {
			vals := specValues(s, logits.Data[i*k:(i+1)*k])
			for name, l := range lowers {
				for r, v := range vals {
					if v < l[i][r]-tol {
						t.Errorf("%s %s sample %d row %d: PGD iterate has value %v below the proven bound %v: UNSOUND", what, name, i, r, v, l[i][r])
					}
				}
			}
		}
		*visits++
	}
}

// TestPGDTiny: PGD iterates inside the boxes of the tiny nets never go below the
// bounds.
func TestPGDTiny(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for _, c := range tinyCases(t) {
		for _, sound := range []bool{false, true} {
			tol := 1e-9
			if sound {
				tol = 0
			}
			all := boundAll(t, &c, sound)
			visits := 0
			pgd(t, c.g, c.box, c.labels, 30, 3, 0.02, rng, checkIterates(t, fmt.Sprintf("%s sound=%v", c.name, sound), c.specs, all, tol, &visits))
			if visits != 3*31 {
				t.Fatalf("%d PGD iterates visited, want %d", visits, 3*31)
			}
		}
	}
}

// TestPGDMNIST: on the shipped MNIST models, 10 test samples, L∞ radius 0.02 in
// [0,1]: every PGD iterate (the centre, a random start, 20 steps of 0.005 each)
// satisfies every row of the robustness spec at least as well as IBP, CROWN and
// α-CROWN proved, with and without SoundFP.
func TestPGDMNIST(t *testing.T) {
	if testing.Short() {
		t.Skip("bounds on MNIST models: slow")
	}
	const n, radius = 10, 0.02
	for _, path := range []string{"../testdata/mnist_mlp.onnx", "../testdata/mnist_cnn.onnx"} {
		g, x, labels := readMNIST(t, path, n)
		box := bounds.LinfBox(x, radius, 0, 1)
		specs := robustnessSpecs(t, 10, labels)
		for _, sound := range []bool{false, true} {
			opt := bounds.Options{SoundFP: sound}
			ibp, err := bounds.SpecIBP(g, box, specs, opt)
			if err != nil {
				t.Fatalf("%s: SpecIBP: %v", path, err)
			}
			crown, err := bounds.CROWN(g, box, specs, opt)
			if err != nil {
				t.Fatalf("%s: CROWN: %v", path, err)
			}
			alpha, err := bounds.AlphaCROWN(g, box, specs, bounds.AlphaOptions{Options: opt, Iterations: 10, LR: 0.1})
			if err != nil {
				t.Fatalf("%s: AlphaCROWN: %v", path, err)
			}
			lowers := map[string][][]float64{"ibp": ibp.Lower, "crown": crown.Lower, "alpha-crown": alpha.Lower}
			tol := 1e-9
			if sound {
				tol = 0
			}
			visits := 0
			rng := rand.New(rand.NewPCG(3, 1))
			pgd(t, g, box, labels, 20, 2, 0.005, rng, checkIterates(t, fmt.Sprintf("%s sound=%v", path, sound), specs, lowers, tol, &visits))
			certified := map[string]int{}
			for name, l := range lowers {
				for i := range l {
					m := l[i][0]
					for _, v := range l[i] {
						m = min(m, v)
					}
					if m > 0 {
						certified[name]++
					}
				}
			}
			t.Logf("%s sound=%v: certified of %d: %v", path, sound, n, certified)
		}
	}
}
