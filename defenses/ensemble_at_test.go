package defenses

import (
	"slices"
	"testing"

	"github.com/certify-dev/certify/nets"
)

// TestEnsembleTrainingSources: the source of step s is s mod (1 + #static), and the
// adversarial half of a static source's step is FGSM on that static model.
func TestEnsembleTrainingSources(t *testing.T) {
	d := testData(t, 0, 70)
	g := testMLP(t, 1, 16)
	s1, s2 := testMLP(t, 2, 16), testMLP(t, 3, 16)
	var got []int
	rec := EnsembleTraining{Eps: 0.3, Static: []nets.Differentiable{s1, s2}, Seed: 1,
		sourced: func(gstep, src int) { got = append(got, gstep, src) }}
	before := [][]float64{atWeights(s1), atWeights(s2)}
	if _, err := rec.Train(g, d, testConfig(2, 16, 1e-3, 1)); err != nil { // 5 steps per epoch
		t.Fatal(err)
	}
	want := []int{0, 0, 1, 1, 2, 2, 3, 0, 4, 1, 5, 2, 6, 0, 7, 1, 8, 2, 9, 0}
	if !slices.Equal(got, want) {
		t.Fatalf("(step, source) pairs %v, want %v", got, want)
	}
	if !slices.Equal(before[0], atWeights(s1)) || !slices.Equal(before[1], atWeights(s2)) {
		t.Fatal("a static model was changed by training")
	}
	craft, err := rec.crafter(g, d, testConfig(1, 16, 1e-3, 1))
	if err != nil {
		t.Fatal(err)
	}
	x := nets.FromData(append([]float64(nil), d.X.Data[:8*784]...), 8, 1, 28, 28)
	for gstep, m := range []nets.Differentiable{g, s1, s2, g} {
		adv, err := craft(gstep, x, d.Labels[:8])
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(adv.Data, atIndependentFGSM(t, m, x, d.Labels[:8], 0.3)) {
			t.Fatalf("step %d: rows differ from FGSM on source %d", gstep, gstep%3)
		}
	}
}
