package defenses

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestBitDepthValues checks t(x) = round(x·(2^b−1))/(2^b−1) on values worked by
// hand, including the clipping and the halves.
func TestBitDepthValues(t *testing.T) {
	for _, tc := range []struct {
		bits    int
		in, out []float64
	}{
		// 1 bit: a threshold at ½ (halves go up).
		{1, []float64{0, 0.2, 0.49, 0.5, 0.51, 1, -0.3, 1.7}, []float64{0, 0, 0, 1, 1, 1, 0, 1}},
		// 2 bits: levels 0, ⅓, ⅔, 1; 0.5·3 = 1.5 → 2.
		{2, []float64{0.1, 0.2, 0.5, 0.6, 0.9}, []float64{0, 1.0 / 3, 2.0 / 3, 2.0 / 3, 1}},
		// 3 bits: 0.3·7 = 2.1 → 2; 0.93·7 = 6.51 → 7; 0.5·7 = 3.5 → 4.
		{3, []float64{0.3, 0.93, 0.5, 0.07}, []float64{2.0 / 7, 1, 4.0 / 7, 0}},
		// 8 bits: 0.5·255 = 127.5 → 128; 0.1·255 = 25.5 → 26.
		{8, []float64{0.5, 0.1, 0.999}, []float64{128.0 / 255, 26.0 / 255, 1}},
	} {
		got := make([]float64, len(tc.in))
		if err := (BitDepth{Bits: tc.bits}).Apply(got, tc.in, 1, 1, len(tc.in)); err != nil {
			t.Fatal(err)
		}
		for i := range got {
			if got[i] != tc.out[i] {
				t.Errorf("%d bits: t(%v) = %.17g, want %.17g", tc.bits, tc.in[i], got[i], tc.out[i])
			}
		}
	}
}

// TestBitDepthIdempotent checks t(t(x)) = t(x) exactly, and that t(x) takes at most
// 2^b values, on random images.
func TestBitDepthIdempotent(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	x := make([]float64, 3*8*8)
	for i := range x {
		x[i] = 1.2*r.Float64() - 0.1
	}
	for bits := 1; bits <= 8; bits++ {
		b := BitDepth{Bits: bits}
		once, twice := make([]float64, len(x)), make([]float64, len(x))
		if err := b.Apply(once, x, 3, 8, 8); err != nil {
			t.Fatal(err)
		}
		if err := b.Apply(twice, once, 3, 8, 8); err != nil {
			t.Fatal(err)
		}
		levels := map[float64]bool{}
		for i := range once {
			if once[i] != twice[i] {
				t.Errorf("%d bits: t(x) = %.17g but t(t(x)) = %.17g", bits, once[i], twice[i])
			}
			if k := once[i] * float64(int(1)<<bits-1); math.Abs(k-math.Round(k)) > 1e-12 || once[i] < 0 || once[i] > 1 {
				t.Errorf("%d bits: %.17g is not a level k/%d in [0, 1]", bits, once[i], int(1)<<bits-1)
			}
			levels[once[i]] = true
		}
		if len(levels) > 1<<bits {
			t.Errorf("%d bits: %d distinct values", bits, len(levels))
		}
	}
	if err := (BitDepth{Bits: 2}).Apply(make([]float64, 1), []float64{math.NaN()}, 1, 1, 1); err == nil {
		t.Error("a NaN input was quantised")
	}
}
