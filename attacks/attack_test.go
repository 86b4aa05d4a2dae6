package attacks

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestProjectStaysInBudget(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, norm := range []Norm{LInf, L2, L1} {
		b := Budget{Norm: norm, Eps: 0.3, Lo: 0, Hi: 1}
		for k := 0; k < 200; k++ {
			x := make([]float64, 10)
			adv := make([]float64, 10)
			for i := range x {
				x[i] = r.Float64()
				adv[i] = x[i] + 2*r.NormFloat64()
			}
			b.Project(adv, x)
			if !b.Contains(adv, x) {
				t.Fatalf("%v: projected point at distance %g", norm, Distance(norm, adv, x))
			}
		}
	}
}

// TestProjectL1Exact: the L1 projection of a point equals the closed form of a case
// worked by hand: δ = (3, −1, 0.5), eps = 2: θ = 1 (3−θ = 2), so δ' = (2, 0, 0).
func TestProjectL1Exact(t *testing.T) {
	x := []float64{0, 0, 0}
	adv := []float64{3, -1, 0.5}
	projectL1(adv, x, 2)
	want := []float64{2, 0, 0}
	for i := range want {
		if math.Abs(adv[i]-want[i]) > 1e-12 {
			t.Fatalf("projection %v, want %v", adv, want)
		}
	}
	// δ = (1, 1), eps = 1: θ = 0.5 → (0.5, 0.5).
	adv = []float64{1, -1}
	projectL1(adv, []float64{0, 0}, 1)
	if math.Abs(adv[0]-0.5) > 1e-12 || math.Abs(adv[1]+0.5) > 1e-12 {
		t.Fatalf("projection %v, want [0.5 -0.5]", adv)
	}
}

func TestDistance(t *testing.T) {
	a, b := []float64{1, 2, 3}, []float64{0, 4, 3}
	for _, c := range []struct {
		n    Norm
		want float64
	}{{LInf, 2}, {L2, math.Sqrt(5)}, {L1, 3}} {
		if got := Distance(c.n, a, b); math.Abs(got-c.want) > 1e-15 {
			t.Errorf("%v distance %g, want %g", c.n, got, c.want)
		}
	}
}
