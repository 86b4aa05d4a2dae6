package attacks

import (
	"math"
	"testing"
)

// TestGeneticProbs: selection probabilities are softmax(F/τ); NaN fitness gets 0.
func TestGeneticProbs(t *testing.T) {
	p := make([]float64, 3)
	geneticProbs(p, []float64{0, 1, math.NaN()}, 0.5)
	e := math.Exp(-2)
	want := []float64{e / (1 + e), 1 / (1 + e), 0}
	for k := range want {
		if math.Abs(p[k]-want[k]) > 1e-15 {
			t.Fatalf("probs %v, want %v", p, want)
		}
	}
	geneticProbs(p, []float64{math.NaN(), math.NaN(), math.NaN()}, 1)
	for _, v := range p {
		if v != 1.0/3 {
			t.Fatalf("all NaN: probs %v, want uniform", p)
		}
	}
}

// TestGeneticPick: draws follow the probabilities (binomial sd ≈ 0.0015 at 10⁵).
func TestGeneticPick(t *testing.T) {
	probs := []float64{0.1, 0.6, 0.3}
	r := RowRand(9, 0)
	count := make([]float64, 3)
	const n = 100000
	for i := 0; i < n; i++ {
		count[geneticPick(r, probs)]++
	}
	for k := range probs {
		if math.Abs(count[k]/n-probs[k]) > 0.01 {
			t.Errorf("class %d drawn %.4f of the time, want %.2f", k, count[k]/n, probs[k])
		}
	}
}

// TestGeneticMLP: GenAttack (10 000 queries) breaks most shipped-MLP samples a
// white-box PGD breaks at ε = 0.1 (measured: 88 of 99 on the first 100).
func TestGeneticMLP(t *testing.T) {
	b := Budget{Norm: LInf, Eps: 0.1, Lo: 0, Hi: 1}
	bbAgainstPGD(t, NewGenetic(b, 1), b, 8, 0.6, 10000)
}
