package lp

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestDualBound: with a backend's optimal duals the bound is at most the
// optimum and within 1e-6 of it; with random multipliers it never exceeds the
// optimum (weak duality), nor the objective at the construction's feasible
// points.
func TestDualBound(t *testing.T) {
	for _, b := range backends() {
		rng := rand.New(rand.NewPCG(9, 10))
		tight := 0
		for trial := 0; trial < 100; trial++ {
			n, m := 2+rng.IntN(12), 1+rng.IntN(10)
			p := randomLP(rng, n, m, 0.4, true)
			sol, err := solveFresh(t, b, p)
			if err != nil {
				t.Fatalf("%s trial %d: %v", b.name, trial, err)
			}
			lb, err := p.DualBound(sol.Duals, 1e-9)
			if err != nil {
				t.Fatal(err)
			}
			if lb > sol.Objective+1e-7*(1+math.Abs(sol.Objective)) {
				t.Errorf("%s trial %d: dual bound %v above optimum %v", b.name, trial, lb, sol.Objective)
			}
			if relClose(lb, sol.Objective, 1e-6) {
				tight++
			}
			for k := 0; k < 20; k++ {
				y := make([]float64, m)
				for i := range y {
					y[i] = 3 * rng.NormFloat64()
				}
				lb, err := p.DualBound(y, 0)
				if err != nil {
					t.Fatal(err)
				}
				if lb > sol.Objective+1e-9*(1+math.Abs(sol.Objective)) {
					t.Errorf("%s trial %d: random multipliers give %v above optimum %v", b.name, trial, lb, sol.Objective)
				}
			}
		}
		if tight < 100 {
			t.Errorf("%s: dual bound tight on only %d of 100 problems", b.name, tight)
		}
	}
	p := dense([]float64{1}, []float64{0}, []float64{1}, [][]float64{{1}}, []float64{0}, []float64{1})
	if _, err := p.DualBound([]float64{1, 2}, 0); err == nil {
		t.Error("wrong length accepted")
	}
	if _, err := p.DualBound([]float64{math.NaN()}, 0); err == nil {
		t.Error("NaN multiplier accepted")
	}
	if _, err := p.DualBound([]float64{1}, -1); err == nil {
		t.Error("negative tolerance accepted")
	}
	// y = 1 on a row without lower bound: −Inf.
	q := dense([]float64{1}, []float64{0}, []float64{1}, [][]float64{{1}}, []float64{-inf}, []float64{1})
	if lb, _ := q.DualBound([]float64{1}, 0); !math.IsInf(lb, -1) {
		t.Errorf("bound %v, want -Inf", lb)
	}
}
