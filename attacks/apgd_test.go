package attacks

import (
	"slices"
	"testing"
)

// TestAPGDCheckpoints: p = 0, 0.22, 0.41, 0.57, 0.70, 0.80, 0.87, 0.93, 0.99 (steps
// 0.19, 0.16, 0.13, 0.10, 0.07, then the floor 0.06), so for 100 iterations the
// checkpoints are 22, 41, 57, 70, 80, 87, 93, 99; for 10, ⌈2.2⌉, ⌈4.1⌉, ... with
// repeats dropped.
func TestAPGDCheckpoints(t *testing.T) {
	for _, c := range []struct {
		n    int
		want []int
	}{
		{100, []int{22, 41, 57, 70, 80, 87, 93, 99}},
		{10, []int{3, 5, 6, 7, 8, 9, 10}},
		{1000, []int{220, 410, 570, 700, 800, 870, 930, 990}},
		{1, []int{1}},
	} {
		if got := apgdCheckpoints(c.n); !slices.Equal(got, c.want) {
			t.Errorf("N = %d: checkpoints %v, want %v", c.n, got, c.want)
		}
	}
}

// TestAPGDHalve: the two conditions of Algorithm 1 at a checkpoint 22 steps after
// the previous one, ρ = 0.75 (so 16.5 increases are needed).
func TestAPGDHalve(t *testing.T) {
	for _, c := range []struct {
		inc        int
		halvedLast bool
		fmax, last float64
		want       bool
	}{
		{16, true, 2, 1, true},   // condition 1: 16 < 16.5
		{17, true, 2, 1, false},  // enough increases, and halved last time
		{17, false, 2, 1, false}, // enough increases, best loss improved
		{17, false, 1, 1, true},  // condition 2: not halved and no progress
		{17, true, 1, 1, false},  // no progress, but η was just halved
	} {
		if got := apgdHalve(c.inc, 22, 0.75, c.halvedLast, c.fmax, c.last); got != c.want {
			t.Errorf("%+v: halve %v", c, got)
		}
	}
}

// TestAPGDTargetsMLP: APGD-T's targeted runs break the shipped MLP's images at
// least as often as a single APGD-DLR run of the same length (it runs 9 of them,
// and with 9 targets on 10 classes one of them is the class DLR chases), within one
// row of slack for the random starts.
func TestAPGDTargetsMLP(t *testing.T) {
	g, x, y := shippedMLP(t, 16)
	b := Budget{Norm: LInf, Eps: 0.05, Lo: 0, Hi: 1}
	dlr := NewAPGD(b, 1)
	dlr.Loss, dlr.Iters = DLR{}, 30
	at := NewAPGDT(b, 1)
	at.Iters = 30
	ad := wbRobustAcc(wbRun(t, dlr, g, x, y))
	att := wbRobustAcc(wbRun(t, at, g, x, y))
	t.Logf("robust accuracy: apgd-dlr %g, apgd-t %g", ad, att)
	if att > ad+1.0/16+1e-12 {
		t.Errorf("APGD-T (%g) weaker than APGD-DLR (%g)", att, ad)
	}
}
