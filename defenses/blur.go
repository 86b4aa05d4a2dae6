package defenses

import (
	"fmt"
	"math"
)

// maxBlurRadius bounds the kernel half-width: a wider kernel averages a whole
// MNIST or CIFAR image away and costs O(radius) per pixel.
const maxBlurRadius = 100

// Blur is Gaussian blurring, an input transformation defense (the smoothing
// "squeezers" of Xu, Evans & Qi, "Feature Squeezing", NDSS 2018, and of Guo et al.,
// ICLR 2018). Each channel is convolved with the truncated, normalised Gaussian
//
//	K(i, j) = k(i)·k(j),  k(t) = exp(−t²/2σ²) / Σ_{s=−r..r} exp(−s²/2σ²),  |t| ≤ r,
//
// separably, first along rows then along columns:
//
//	y[c,i,j] = Σ_{a,b=−r..r} k(a)·k(b)·x[c, clamp(i+a), clamp(j+b)],
//
// with pixels beyond the border replicated from the nearest edge pixel (clamp to
// [0, H−1] and [0, W−1]), so a constant image stays constant and the output stays
// in the input's range.
//
// Blur is linear, y = B·x, so it is differentiable and its gradient is exact: VJP
// is the adjoint Bᵀ·g (the kernel is symmetric, but the replicated border makes B
// non-symmetric, so Bᵀ scatters back to the clamped pixels). It is no gradient
// masking: the wrapper's own gradient is the adaptive one.
//
// Sigma must be finite and > 0; Radius (the half-width r) from 1 to 100.
type Blur struct {
	Sigma  float64
	Radius int
}

// NewBlur returns the blur of standard deviation sigma (in pixels) and half-width
// radius; radius 0 means ⌈3σ⌉, which keeps all but 0.3% of the Gaussian's mass.
func NewBlur(sigma float64, radius int) (Blur, error) {
	if math.IsNaN(sigma) || math.IsInf(sigma, 0) || sigma <= 0 {
		return Blur{}, fmt.Errorf("blur: sigma %v: want a finite σ > 0 (pixels)", sigma)
	}
	if radius == 0 {
		r := math.Ceil(3 * sigma)
		if r > maxBlurRadius {
			return Blur{}, fmt.Errorf("blur: sigma %v gives a kernel half-width ⌈3σ⌉ = %v, more than %d: use a smaller sigma or give radius", sigma, r, maxBlurRadius)
		}
		radius = int(r)
	}
	b := Blur{Sigma: sigma, Radius: radius}
	if err := b.check(); err != nil {
		return Blur{}, err
	}
	return b, nil
}

func (b Blur) check() error {
	if math.IsNaN(b.Sigma) || math.IsInf(b.Sigma, 0) || b.Sigma <= 0 {
		return fmt.Errorf("blur: sigma %v: want a finite σ > 0 (pixels)", b.Sigma)
	}
	if b.Radius < 1 || b.Radius > maxBlurRadius {
		return fmt.Errorf("blur: radius %d: want a kernel half-width from 1 to %d", b.Radius, maxBlurRadius)
	}
	return nil
}

// Name implements Transform.
func (Blur) Name() string { return "blur" }

// Kernel returns the normalised 1-D kernel k(−r), …, k(r).
func (b Blur) Kernel() []float64 {
	k := make([]float64, 2*b.Radius+1)
	s := 0.0
	for t := -b.Radius; t <= b.Radius; t++ {
		v := math.Exp(-float64(t*t) / (2 * b.Sigma * b.Sigma))
		k[t+b.Radius] = v
		s += v
	}
	for i := range k {
		k[i] /= s
	}
	return k
}

func blurClamp(i, n int) int { return min(max(i, 0), n-1) }

// Apply implements Transform: dst = B·src.
func (b Blur) Apply(dst, src []float64, c, h, w int) error {
	if err := b.check(); err != nil {
		return err
	}
	if len(src) != c*h*w || len(dst) != c*h*w {
		return fmt.Errorf("blur: %d and %d values for a %d×%d×%d image", len(dst), len(src), c, h, w)
	}
	k, r := b.Kernel(), b.Radius
	tmp := make([]float64, h*w)
	pad := make([]float64, w+2*r) // one row with r replicated pixels each side
	for ch := 0; ch < c; ch++ {
		x, y := src[ch*h*w:(ch+1)*h*w], dst[ch*h*w:(ch+1)*h*w]
		for i := 0; i < h; i++ { // along each row
			row, out := x[i*w:(i+1)*w], tmp[i*w:(i+1)*w]
			for p := range pad {
				pad[p] = row[blurClamp(p-r, w)]
			}
			for j := range out {
				s := 0.0
				for t, kt := range k {
					s += kt * pad[j+t]
				}
				out[j] = s
			}
		}
		for i := 0; i < h; i++ { // along each column
			out := y[i*w : (i+1)*w]
			clear(out)
			for t := -r; t <= r; t++ {
				kt, in := k[t+r], tmp[blurClamp(i+t, h)*w:]
				for j := range out {
					out[j] += kt * in[j]
				}
			}
		}
	}
	return nil
}

// VJP implements DifferentiableTransform: dst = Bᵀ·g, whatever x. With B = V·H
// (H along rows, V along columns), Bᵀ = Hᵀ·Vᵀ, each transpose sending k(t)·g at a
// pixel back to the clamped pixel it was read from.
func (b Blur) VJP(dst, x, g []float64, c, h, w int) error {
	if err := b.check(); err != nil {
		return err
	}
	if len(g) != c*h*w || len(dst) != c*h*w {
		return fmt.Errorf("blur: gradient of %d values into %d for a %d×%d×%d image", len(g), len(dst), c, h, w)
	}
	k, r := b.Kernel(), b.Radius
	tmp := make([]float64, h*w)
	pad := make([]float64, w+2*r)
	for ch := 0; ch < c; ch++ {
		gy, gx := g[ch*h*w:(ch+1)*h*w], dst[ch*h*w:(ch+1)*h*w]
		clear(tmp)
		for i := 0; i < h; i++ { // Vᵀ
			in := gy[i*w : (i+1)*w]
			for t := -r; t <= r; t++ {
				kt, out := k[t+r], tmp[blurClamp(i+t, h)*w:]
				for j, v := range in {
					out[j] += kt * v
				}
			}
		}
		for i := 0; i < h; i++ { // Hᵀ, into the padded row, then folded back
			in, out := tmp[i*w:(i+1)*w], gx[i*w:(i+1)*w]
			clear(pad)
			for j, v := range in {
				for t, kt := range k {
					pad[j+t] += kt * v
				}
			}
			clear(out)
			for p, v := range pad {
				out[blurClamp(p-r, w)] += v
			}
		}
	}
	return nil
}

// blurParams are the "blur" spec's params.
type blurParams struct {
	Sigma  *float64 `json:"sigma"`
	Radius *int     `json:"radius"`
}

// defaultBlurSigma is the blur of a spec that gives no sigma: one pixel.
const defaultBlurSigma = 1.0

// buildBlur makes a "blur" wrapper: {"sigma": σ > 0 (default 1 pixel), "radius":
// kernel half-width (default ⌈3σ⌉)}.
func buildBlur(l *Loader, s Spec) (Model, error) {
	var p blurParams
	if err := l.Params(s, &p); err != nil {
		return nil, err
	}
	sigma := defaultBlurSigma
	if p.Sigma != nil {
		sigma = *p.Sigma
	}
	radius := 0
	if p.Radius != nil {
		if *p.Radius < 1 {
			return nil, fmt.Errorf("blur: radius %d: want a kernel half-width from 1 to %d", *p.Radius, maxBlurRadius)
		}
		radius = *p.Radius
	}
	b, err := NewBlur(sigma, radius)
	if err != nil {
		return nil, err
	}
	return buildTransformed(l, s, b)
}
