package defenses

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/certify-dev/certify/nets"
)

// gauss1D is the closed-form normalised kernel value k(t) of a Gaussian of standard
// deviation sigma truncated to |t| ≤ r.
func gauss1D(t int, sigma float64, r int) float64 {
	z := 0.0
	for s := -r; s <= r; s++ {
		z += math.Exp(-float64(s*s) / (2 * sigma * sigma))
	}
	return math.Exp(-float64(t*t)/(2*sigma*sigma)) / z
}

// TestBlurImpulse blurs a unit impulse away from the border: the output is the 2-D
// kernel K(i, j) = k(i−i₀)·k(j−j₀) around it, in its channel only, and sums to 1.
func TestBlurImpulse(t *testing.T) {
	for _, tc := range []struct {
		sigma  float64
		radius int
		c      int
	}{
		{1, 3, 1},
		{1.3, 4, 3},
		{0.5, 2, 3},
		{2, 6, 1},
	} {
		const h, w, i0, j0 = 15, 17, 7, 8
		b := Blur{Sigma: tc.sigma, Radius: tc.radius}
		x := make([]float64, tc.c*h*w)
		ch := tc.c - 1
		x[ch*h*w+i0*w+j0] = 1
		y := make([]float64, len(x))
		if err := b.Apply(y, x, tc.c, h, w); err != nil {
			t.Fatal(err)
		}
		sum := 0.0
		for c := 0; c < tc.c; c++ {
			for i := 0; i < h; i++ {
				for j := 0; j < w; j++ {
					want := 0.0
					if c == ch && blurAbs(i-i0) <= tc.radius && blurAbs(j-j0) <= tc.radius {
						want = gauss1D(i-i0, tc.sigma, tc.radius) * gauss1D(j-j0, tc.sigma, tc.radius)
					}
					got := y[c*h*w+i*w+j]
					sum += got
					if math.Abs(got-want) > 1e-15 {
						t.Errorf("σ=%v r=%d: out[%d,%d,%d] = %.17g, want %.17g", tc.sigma, tc.radius, c, i, j, got, want)
					}
				}
			}
		}
		if math.Abs(sum-1) > 1e-14 {
			t.Errorf("σ=%v r=%d: blurred impulse sums to %.17g, want 1", tc.sigma, tc.radius, sum)
		}
	}
	// The centre value of σ = 1, r = 3 by hand: 1/Z² with Z = 1 + 2(e^-½ + e^-2 + e^-9/2).
	z := 1 + 2*(math.Exp(-0.5)+math.Exp(-2)+math.Exp(-4.5))
	if k := (Blur{Sigma: 1, Radius: 3}).Kernel(); math.Abs(k[3]*k[3]-1/(z*z)) > 1e-16 {
		t.Errorf("centre weight %.17g, want %.17g", k[3]*k[3], 1/(z*z))
	}
}

func blurAbs(i int) int { return max(i, -i) }

// TestBlurBruteForce compares with the direct 2-D sum over the replicated border,
// including kernels wider than the image.
func TestBlurBruteForce(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, tc := range []struct {
		sigma   float64
		radius  int
		c, h, w int
	}{
		{1, 3, 1, 9, 11},
		{0.8, 2, 3, 5, 7},
		{3, 12, 3, 6, 4}, // radius beyond both sides
		{1, 1, 1, 1, 1},
	} {
		b := Blur{Sigma: tc.sigma, Radius: tc.radius}
		n := tc.c * tc.h * tc.w
		x := make([]float64, n)
		for i := range x {
			x[i] = r.Float64()
		}
		y := make([]float64, n)
		if err := b.Apply(y, x, tc.c, tc.h, tc.w); err != nil {
			t.Fatal(err)
		}
		clampTo := func(i, n int) int { return min(max(i, 0), n-1) }
		for c := 0; c < tc.c; c++ {
			for i := 0; i < tc.h; i++ {
				for j := 0; j < tc.w; j++ {
					want := 0.0
					for a := -tc.radius; a <= tc.radius; a++ {
						for bb := -tc.radius; bb <= tc.radius; bb++ {
							want += gauss1D(a, tc.sigma, tc.radius) * gauss1D(bb, tc.sigma, tc.radius) *
								x[c*tc.h*tc.w+clampTo(i+a, tc.h)*tc.w+clampTo(j+bb, tc.w)]
						}
					}
					if got := y[c*tc.h*tc.w+i*tc.w+j]; math.Abs(got-want) > 1e-13 {
						t.Errorf("%+v: out[%d,%d,%d] = %.17g, want %.17g", tc, c, i, j, got, want)
					}
				}
			}
		}
	}
}

// TestBlurAdjoint checks ⟨B·x, g⟩ = ⟨x, Bᵀ·g⟩ on random x and g, and that a constant
// image stays constant.
func TestBlurAdjoint(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, tc := range []struct {
		sigma   float64
		radius  int
		c, h, w int
	}{
		{1, 3, 1, 28, 28},
		{1.7, 5, 3, 8, 13},
		{2, 9, 1, 4, 5},
	} {
		b := Blur{Sigma: tc.sigma, Radius: tc.radius}
		n := tc.c * tc.h * tc.w
		x, g := make([]float64, n), make([]float64, n)
		for i := range x {
			x[i], g[i] = r.NormFloat64(), r.NormFloat64()
		}
		bx, btg := make([]float64, n), make([]float64, n)
		if err := b.Apply(bx, x, tc.c, tc.h, tc.w); err != nil {
			t.Fatal(err)
		}
		if err := b.VJP(btg, x, g, tc.c, tc.h, tc.w); err != nil {
			t.Fatal(err)
		}
		lhs, rhs := 0.0, 0.0
		for i := range x {
			lhs += bx[i] * g[i]
			rhs += x[i] * btg[i]
		}
		if math.Abs(lhs-rhs) > 1e-12*math.Max(1, math.Abs(lhs)) {
			t.Errorf("%+v: ⟨Bx, g⟩ = %.17g, ⟨x, Bᵀg⟩ = %.17g", tc, lhs, rhs)
		}
		for i := range x {
			x[i] = 0.37
		}
		if err := b.Apply(bx, x, tc.c, tc.h, tc.w); err != nil {
			t.Fatal(err)
		}
		if d := maxAbsDiff(bx, x); d > 1e-15 {
			t.Errorf("%+v: a constant image moves by %g", tc, d)
		}
	}
}

// TestBlurGradient compares the blur wrapper's gradient around the shipped CNN with
// central finite differences of its loss.
func TestBlurGradient(t *testing.T) {
	x, labels := testMNIST(t, 0, 2)
	m, err := NewTransformed(Blur{Sigma: 1, Radius: 3}, testCNN(t))
	if err != nil {
		t.Fatal(err)
	}
	_, grad, err := m.LossGrad(x, labels, nets.CrossEntropy{})
	if err != nil {
		t.Fatal(err)
	}
	gmax := maxAbsDiff(grad.Data, make([]float64, grad.Len()))
	if gmax < 1e-4 {
		t.Fatalf("gradient is %g at most: a vacuous comparison", gmax)
	}
	r := rand.New(rand.NewPCG(7, 8))
	const h = 1e-6
	worst := 0.0
	for k := 0; k < 40; k++ {
		i := r.IntN(x.Len())
		if k < 10 { // and the middle of the first image's central row, where the digit is
			i = 14*28 + 9 + k
		}
		xp, xm := x.Clone(), x.Clone()
		xp.Data[i] += h
		xm.Data[i] -= h
		vp, _, err := m.LossGrad(xp, labels, nets.CrossEntropy{})
		if err != nil {
			t.Fatal(err)
		}
		vm, _, err := m.LossGrad(xm, labels, nets.CrossEntropy{})
		if err != nil {
			t.Fatal(err)
		}
		row := i / 784
		fd := (vp[row] - vm[row]) / (2 * h)
		worst = math.Max(worst, math.Abs(fd-grad.Data[i]))
		if math.Abs(fd-grad.Data[i]) > 1e-6*gmax+1e-8 {
			t.Errorf("∂L/∂x[%d] = %.10g, finite difference %.10g", i, grad.Data[i], fd)
		}
	}
	t.Logf("max |gradient| %.3g, worst finite-difference error %.3g", gmax, worst)
}
