package defenses

import (
	"math"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/certify-dev/certify/nets"
)

// atWeights returns g's trainable values, concatenated.
func atWeights(g *nets.Graph) []float64 {
	var w []float64
	for _, n := range g.Trainable {
		w = append(w, g.Params[n].Data...)
	}
	return w
}

// atIndependentFGSM is clip(x + ε·sign(∇ₓ CE), x ± ε, [0, 1]) computed here from
// m.LossGrad, without the package's helpers.
func atIndependentFGSM(t *testing.T, m nets.Differentiable, x *nets.Tensor, y []int, eps float64) []float64 {
	t.Helper()
	_, g, err := m.LossGrad(x, y, nets.CrossEntropy{})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float64, x.Len())
	for k, v := range x.Data {
		s := 0.0
		if g.Data[k] > 0 {
			s = 1
		} else if g.Data[k] < 0 {
			s = -1
		}
		out[k] = math.Min(math.Max(v+eps*s, 0), 1)
	}
	return out
}

// atRecipes are the four recipes on tiny settings.
func atRecipes(t *testing.T, seed uint64) []Recipe {
	return []Recipe{
		FGSMTraining{Eps: 0.3, CleanWeight: 0.5, Seed: seed},
		PGDTraining{Eps: 0.3, Step: 0.1, Steps: 3, RampEpochs: 1, Seed: seed},
		EnsembleTraining{Eps: 0.3, Static: []nets.Differentiable{testMLP(t, 11, 16)}, Seed: seed},
		GenerativeTraining{Eps: 0.3, Hidden: 16, GenLR: 1e-3, CleanWeight: 0.5, Seed: seed},
	}
}

// TestFGSMTrainingDeterministic (and the other recipes): the same seed gives
// bit-identical weights, on 1 core and on 2; another seed another net (PGD's random
// starts, the generator's init).
func TestFGSMTrainingDeterministic(t *testing.T) {
	d := testData(t, 0, 96)
	run := func(r Recipe, procs int) ([]float64, []nets.EpochStats) {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		g := testMLP(t, 3, 16)
		stats, err := r.Train(g, d, testConfig(2, 32, 1e-3, 3))
		if err != nil {
			t.Fatalf("%s: %v", r.Name(), err)
		}
		return atWeights(g), stats
	}
	other := atRecipes(t, 99)
	for i, r := range atRecipes(t, 1) {
		a, sa := run(r, 1)
		b, sb := run(r, 2)
		if !slices.Equal(a, b) {
			t.Errorf("%s: weights differ between GOMAXPROCS 1 and 2", r.Name())
		}
		if sa[1].Loss != sb[1].Loss || sa[1].Accuracy != sb[1].Accuracy {
			t.Errorf("%s: stats differ: %+v, %+v", r.Name(), sa[1], sb[1])
		}
		if sa[1].Accuracy < 0 || sa[1].Accuracy > 1 || !(sa[1].Loss > 0) {
			t.Errorf("%s: stats out of range: %+v", r.Name(), sa[1])
		}
		if c, _ := run(other[i], 2); slices.Equal(a, c) != (r.Name() == "fgsm-at" || r.Name() == "ensemble-at") {
			t.Errorf("%s: seed 99 equal to seed 1: %v (only FGSM-based recipes ignore the seed)", r.Name(), slices.Equal(a, c))
		}
	}
}

// TestFGSMTrainingValidation (and the other recipes): bad fields fail with a
// message naming them, before any training; the caller's cfg is not changed.
func TestFGSMTrainingValidation(t *testing.T) {
	d := testData(t, 0, 8)
	nan := math.NaN()
	cases := []struct {
		r    Recipe
		want string
	}{
		{FGSMTraining{Eps: 0, CleanWeight: 0.5}, "ε = 0"},
		{FGSMTraining{Eps: 1.5, CleanWeight: 0.5}, "ε = 1.5"},
		{FGSMTraining{Eps: nan, CleanWeight: 0.5}, "ε = NaN"},
		{FGSMTraining{Eps: 0.3, CleanWeight: 1.2}, "clean weight 1.2"},
		{FGSMTraining{Eps: 0.3, CleanWeight: nan}, "clean weight NaN"},
		{PGDTraining{Eps: 0.3, Step: 0, Steps: 1}, "step 0"},
		{PGDTraining{Eps: 0.3, Step: 0.5, Steps: 1}, "step 0.5"},
		{PGDTraining{Eps: 0.3, Step: 0.1, Steps: 0}, "0 steps"},
		{PGDTraining{Eps: 0.3, Step: 0.1, Steps: 2, RampEpochs: -1}, "ramp of -1"},
		{PGDTraining{Eps: math.Inf(1), Step: 0.1, Steps: 2}, "ε = +Inf"},
		{EnsembleTraining{Eps: 0.3, Static: []nets.Differentiable{nil}}, "static model 0 is nil"},
		{EnsembleTraining{Eps: -0.1}, "ε = -0.1"},
		{GenerativeTraining{Eps: 0.3, Hidden: 0, GenLR: 1e-3, CleanWeight: 0.5}, "hidden width 0"},
		{GenerativeTraining{Eps: 0.3, Hidden: 8, GenLR: 0, CleanWeight: 0.5}, "learning rate 0"},
		{GenerativeTraining{Eps: 0.3, Hidden: 8, GenLR: math.Inf(1), CleanWeight: 0.5}, "learning rate +Inf"},
		{GenerativeTraining{Eps: 0.3, Hidden: 8, GenLR: 1e-3, CleanWeight: -1}, "clean weight -1"},
	}
	for _, c := range cases {
		g := testMLP(t, 1, 4)
		w := atWeights(g)
		cfg := testConfig(1, 4, 1e-3, 1)
		_, err := c.r.Train(g, d, cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), c.r.Name()+":") {
			t.Errorf("%+v: error %v, want %q", c.r, err, c.want)
		}
		if !slices.Equal(w, atWeights(g)) {
			t.Errorf("%+v: weights changed", c.r)
		}
		if cfg.Prepare != nil || cfg.Loss != nil {
			t.Errorf("%+v: caller's cfg changed", c.r)
		}
	}
	bad := testData(t, 0, 8)
	bad.X.Data[5] = 1.5
	if _, err := (FGSMTraining{Eps: 0.3, CleanWeight: 0.5}).Train(testMLP(t, 1, 4), bad, testConfig(1, 4, 1e-3, 1)); err == nil || !strings.Contains(err.Error(), "outside the data domain") {
		t.Errorf("data outside [0,1]: error %v", err)
	}
}
