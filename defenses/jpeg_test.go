package defenses

import (
	"math"
	"math/rand/v2"
	"testing"
)

// jpegChange returns the largest and the mean absolute change JPEG at quality q
// makes to n MNIST test images, checking on the way that the output is on the 8-bit
// grid in [0, 1] and that a second run gives the same bits.
func jpegChange(t *testing.T, q, c int, x []float64, h, w int) (maxd, mean float64) {
	t.Helper()
	j := JPEG{Quality: q}
	per := c * h * w
	n := len(x) / per
	y, again := make([]float64, len(x)), make([]float64, len(x))
	for i := 0; i < n; i++ {
		if err := j.Apply(y[i*per:(i+1)*per], x[i*per:(i+1)*per], c, h, w); err != nil {
			t.Fatal(err)
		}
		if err := j.Apply(again[i*per:(i+1)*per], x[i*per:(i+1)*per], c, h, w); err != nil {
			t.Fatal(err)
		}
	}
	for i, v := range y {
		if v != again[i] {
			t.Fatalf("quality %d: value %d is %v then %v", q, i, v, again[i])
		}
		if v < 0 || v > 1 || math.Abs(v*255-math.Round(v*255)) > 1e-9 {
			t.Fatalf("quality %d: value %d is %v, not a level k/255 in [0, 1]", q, i, v)
		}
		d := math.Abs(v - x[i])
		maxd = math.Max(maxd, d)
		mean += d
	}
	return maxd, mean / float64(len(x))
}

// TestJPEGQuality measures how much JPEG moves MNIST pixels: at quality 100 little
// (MNIST is stored as 8-bit levels, so only the codec moves them), at low quality
// much more, and more the lower the quality.
func TestJPEGQuality(t *testing.T) {
	x, _ := testMNIST(t, 0, 100)
	prevMean := -1.0
	for _, tc := range []struct {
		q              int
		maxLo, maxHi   float64 // measured largest change, with some slack
		meanLo, meanHi float64 // measured mean change
	}{
		{100, 0, 1.01 / 255, 0, 0.0002}, // measured: 1 level, 0.00013
		{75, 0.1, 0.25, 0.008, 0.011},   // measured: 0.184, 0.00947
		{30, 0.3, 0.5, 0.017, 0.022},    // measured: 0.408, 0.01970
		{10, 0.5, 0.7, 0.028, 0.035},    // measured: 0.600, 0.03132
		{1, 0.9, 1, 0.044, 0.054},       // measured: 0.996, 0.04907
	} {
		maxd, mean := jpegChange(t, tc.q, 1, x.Data, 28, 28)
		t.Logf("quality %3d: max |Δ| %.4f (%.1f levels), mean |Δ| %.5f", tc.q, maxd, maxd*255, mean)
		if maxd < tc.maxLo || maxd > tc.maxHi || mean < tc.meanLo || mean > tc.meanHi {
			t.Errorf("quality %d: max |Δ| %.4f outside [%.4f, %.4f] or mean |Δ| %.5f outside [%.5f, %.5f]",
				tc.q, maxd, tc.maxLo, tc.maxHi, mean, tc.meanLo, tc.meanHi)
		}
		if mean <= prevMean {
			t.Errorf("quality %d changes less (mean %.5f) than the quality above it (%.5f)", tc.q, mean, prevMean)
		}
		prevMean = mean
	}
}

// TestJPEGColour runs RGB images through the YCbCr 4:2:0 codec: a grey image in
// three channels, smooth colour gradients and the same with independent noise per
// channel (which the halved chroma resolution averages away even at quality 100),
// and uniform primaries, which keep their channel order.
func TestJPEGColour(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	const c, h, w, n = 3, 32, 32, 4
	image := func(grey bool, noise float64) []float64 {
		x := make([]float64, n*c*h*w)
		for i := 0; i < n; i++ {
			for ch := 0; ch < c; ch++ {
				f := float64(ch + 1)
				if grey {
					f = 1
				}
				for y := 0; y < h; y++ {
					for xx := 0; xx < w; xx++ {
						v := 0.5 + 0.4*math.Sin(f*float64(xx+y)/20+float64(i)) + noise*r.NormFloat64()
						x[((i*c+ch)*h+y)*w+xx] = math.Round(min(max(v, 0), 1)*255) / 255
					}
				}
			}
		}
		if grey { // the same noise in every channel
			for i := 0; i < n; i++ {
				copy(x[(i*c+1)*h*w:(i*c+2)*h*w], x[i*c*h*w:(i*c+1)*h*w])
				copy(x[(i*c+2)*h*w:(i*c+3)*h*w], x[i*c*h*w:(i*c+1)*h*w])
			}
		}
		return x
	}
	for _, tc := range []struct {
		name      string
		grey      bool
		noise     float64
		max100    float64 // bounds on the quality-100 changes (measured, with slack)
		mean100   float64
		min10Mean float64 // quality 10 changes at least this much on average
	}{
		// measured: 0.0039, 0.00037, 0.02089
		{"grey", true, 0.02, 1.01 / 255, 0.0006, 0.015},
		// measured: 0.0784, 0.01197, 0.04877
		{"smooth colour", false, 0, 0.1, 0.015, 0.04},
		// measured: 0.1294, 0.01812, 0.05138
		{"noisy colour", false, 0.02, 0.15, 0.022, 0.04},
	} {
		x := image(tc.grey, tc.noise)
		max100, mean100 := jpegChange(t, 100, c, x, h, w)
		max10, mean10 := jpegChange(t, 10, c, x, h, w)
		t.Logf("RGB %s: quality 100: max |Δ| %.4f, mean %.5f; quality 10: max %.4f, mean %.5f", tc.name, max100, mean100, max10, mean10)
		if max100 > tc.max100 || mean100 > tc.mean100 || mean10 < tc.min10Mean {
			t.Errorf("RGB %s: quality 100 changes max %.4f (want ≤ %.4f), mean %.5f (want ≤ %.5f); quality 10 mean %.5f (want ≥ %.5f)",
				tc.name, max100, tc.max100, mean100, tc.mean100, mean10, tc.min10Mean)
		}
	}
	for ch := 0; ch < c; ch++ {
		x := make([]float64, c*8*8)
		for i := ch * 64; i < (ch+1)*64; i++ {
			x[i] = 1
		}
		y := make([]float64, len(x))
		if err := (JPEG{Quality: 90}).Apply(y, x, c, 8, 8); err != nil {
			t.Fatal(err)
		}
		if d := maxAbsDiff(y, x); d > 3.0/255 {
			t.Errorf("uniform primary %d comes back %g away: R %v, G %v, B %v", ch, d, y[0], y[64], y[128])
		}
	}
	if err := (JPEG{Quality: 50}).Apply(make([]float64, 2*4), make([]float64, 2*4), 2, 2, 2); err == nil {
		t.Error("2 channels went through JPEG")
	}
}
