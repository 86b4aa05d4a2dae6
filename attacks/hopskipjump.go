package attacks

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/certify-dev/certify/nets"
)

// HopSkipJump is the decision-based attack of Chen, Jordan & Wainwright,
// "HopSkipJumpAttack: A Query-Efficient Decision-Based Attack", IEEE S&P 2020: it
// sees only the predicted class (the argmax of the logits) and walks along the
// decision boundary towards x, shrinking the distance. With φ(x') = +1 when x' is
// misclassified and −1 otherwise, each iteration t = 1, 2, … (Algorithm 2):
//
//  1. Gradient-direction estimate at the boundary point x_t (eq. (9) with the
//     baseline of eq. (16)): B = min(B₀·√t, B_max) directions uᵦ, Gaussian (L2) or
//     uniform on [−1,1]ᵈ (L∞), scaled to unit L2 length; with δ_t = √d·θ·d_{t−1}
//     (L2) or d·θ·d_{t−1} (L∞), and 0.1·(Hi−Lo) at t = 1,
//     ṽ = 1/B Σ (φ(x_t + δ_t·uᵦ) − φ̄)·uᵦ, normalised; L∞ steps along sign(ṽ).
//  2. Geometric step-size search (Sec. 4.2): ξ = ‖x_t − x‖/√t, halved until
//     x_t + ξ·v is misclassified.
//  3. Binary search (Algorithm 1) between x and that point back to the boundary:
//     on the segment for L2, on the L∞ projection clip(x', x−α, x+α) for L∞,
//     to the precision θ = γ/d^{3/2} (L2) or γ/d² (L∞).
//
// The start (the authors' initialisation) is a uniform random point of the domain
// that is misclassified (up to InitTries draws), pulled towards x by a binary
// search on the blend (1−λ)x + λx̃ to |Δλ| ≤ 0.001.
//
// HopSkipJump minimises the distance; the budget's radius decides success. Every
// query counts (binary searches, estimates, step sizes); the row stops at the first
// queried point that is misclassified and within Eps of x, or when the query budget
// is spent — a boundary point found farther than Eps is a failure and x is
// returned. The sample points of the estimate are clipped to the domain (and uᵦ
// recomputed from the clipped points, as the authors do). Norms: L2 and L∞.
type HopSkipJump struct {
	Budget Budget
	// Queries is the query budget per row; 0 means 10 000.
	Queries int
	// InitEvals is B₀, the directions of the first estimate; 0 means 100.
	InitEvals int
	// MaxEvals is B_max; 0 means 10 000.
	MaxEvals int
	// Gamma is γ in the binary-search precision θ; 0 means 1.
	Gamma float64
	// InitTries is how many uniform random points may be drawn to find a
	// misclassified start; 0 means 100.
	InitTries int
	Seed      uint64
}

// NewHopSkipJump returns HopSkipJump with the authors' settings (B₀ = 100,
// B_max = 10 000, γ = 1) and a budget of 10 000 queries per row.
func NewHopSkipJump(b Budget, seed uint64) HopSkipJump {
	return HopSkipJump{Budget: b, Queries: 10000, InitEvals: 100, MaxEvals: 10000, Gamma: 1, InitTries: 100, Seed: seed}
}

// Name is "hopskipjump".
func (HopSkipJump) Name() string { return "hopskipjump" }

func (a HopSkipJump) withDefaults() (HopSkipJump, error) {
	d := NewHopSkipJump(a.Budget, a.Seed)
	if a.Queries == 0 {
		a.Queries = d.Queries
	}
	if a.InitEvals == 0 {
		a.InitEvals = d.InitEvals
	}
	if a.MaxEvals == 0 {
		a.MaxEvals = d.MaxEvals
	}
	if a.Gamma == 0 {
		a.Gamma = d.Gamma
	}
	if a.InitTries == 0 {
		a.InitTries = d.InitTries
	}
	switch {
	case a.Queries < 0:
		return a, fmt.Errorf("hopskipjump: query budget %d < 0", a.Queries)
	case a.InitEvals < 1 || a.MaxEvals < a.InitEvals:
		return a, fmt.Errorf("hopskipjump: estimate sizes B₀ = %d, B_max = %d: want 1 ≤ B₀ ≤ B_max", a.InitEvals, a.MaxEvals)
	case !(a.Gamma > 0) || math.IsInf(a.Gamma, 0):
		return a, fmt.Errorf("hopskipjump: γ = %g must be finite and > 0", a.Gamma)
	case a.InitTries < 0:
		return a, fmt.Errorf("hopskipjump: %d initialisation tries < 0", a.InitTries)
	}
	return a, nil
}

// Run returns the adversarial points found, rows without one reset to x.
func (a HopSkipJump) Run(ctx context.Context, m nets.Classifier, x *nets.Tensor, labels []int) (*nets.Tensor, error) {
	r, err := a.Attack(ctx, m, x, labels)
	if err != nil {
		return nil, err
	}
	return r.Adv, nil
}

// Attack runs HopSkipJump on every row and re-checks the result.
func (a HopSkipJump) Attack(ctx context.Context, m nets.Classifier, x *nets.Tensor, labels []int) (*Result, error) {
	a, err := a.withDefaults()
	if err != nil {
		return nil, err
	}
	return bbRows(ctx, a.Name(), a.Budget, []Norm{L2, LInf}, m, x, labels, a.Queries, func(o *bbOracle, i int) error {
		return newHSJRow(a, o, RowRand(a.Seed, Row(ctx, i))).run(ctx)
	})
}

// hsjRow is one row of HopSkipJump.
type hsjRow struct {
	a     HopSkipJump
	o     *bbOracle
	r     *rand.Rand
	d     int
	theta float64
	pt    []float64 // scratch query point
	dec   []bool
}

func newHSJRow(a HopSkipJump, o *bbOracle, r *rand.Rand) *hsjRow {
	d := len(o.x)
	h := &hsjRow{a: a, o: o, r: r, d: d, pt: make([]float64, d)}
	if a.Budget.Norm == L2 {
		h.theta = a.Gamma / (float64(d) * math.Sqrt(float64(d)))
	} else {
		h.theta = a.Gamma / (float64(d) * float64(d))
	}
	return h
}

// adv asks whether one point is misclassified.
func (h *hsjRow) adv(p []float64) (bool, error) {
	var err error
	h.dec, err = h.o.decide(p, 1, h.dec)
	if err != nil {
		return false, err
	}
	return h.dec[0], nil
}

func (h *hsjRow) dist(p []float64) float64 { return Distance(h.a.Budget.Norm, p, h.o.x) }

func (h *hsjRow) run(ctx context.Context) error {
	b, x, d := h.a.Budget, h.o.x, h.d
	// x itself first: a row already misclassified is a success at distance 0.
	if _, err := h.adv(x); err != nil {
		return err
	}
	// Initialisation: a misclassified uniform random point of the domain…
	noise := make([]float64, d)
	found := false
	for t := 0; t < h.a.InitTries && !found; t++ {
		for j := range noise {
			noise[j] = b.Lo + (b.Hi-b.Lo)*h.r.Float64()
		}
		var err error
		if found, err = h.adv(noise); err != nil {
			return err
		}
	}
	if !found {
		return nil
	}
	// …blended towards x.
	lo, hi := 0.0, 1.0
	for hi-lo > 0.001 {
		if err := ctx.Err(); err != nil {
			return err
		}
		mid := (lo + hi) / 2
		hsjBlend(h.pt, x, noise, mid)
		a, err := h.adv(h.pt)
		if err != nil {
			return err
		}
		if a {
			hi = mid
		} else {
			lo = mid
		}
	}
	cur := make([]float64, d)
	hsjBlend(cur, x, noise, hi)
	distPost, err := h.boundary(ctx, cur)
	if err != nil {
		return err
	}
	dist := h.dist(cur)
	grad := make([]float64, d)
	step := make([]float64, d)
	for t := 1; ; t++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		delta := 0.1 * (b.Hi - b.Lo)
		if t > 1 {
			if b.Norm == L2 {
				delta = math.Sqrt(float64(d)) * h.theta * distPost
			} else {
				delta = float64(d) * h.theta * distPost
			}
		}
		evals := min(int(float64(h.a.InitEvals)*math.Sqrt(float64(t))), h.a.MaxEvals, h.o.left())
		if evals < 1 {
			return nil
		}
		if err := h.estimate(cur, delta, evals, grad); err != nil {
			return err
		}
		if b.Norm == LInf {
			for j, v := range grad {
				grad[j] = math.Copysign(1, v)
				if v == 0 {
					grad[j] = 0
				}
			}
		}
		// Geometric step-size search.
		xi := dist / math.Sqrt(float64(t))
		for k := 0; ; k++ {
			if k == 64 {
				return nil // ξ underflowed without crossing: the estimate is useless
			}
			for j := range step {
				step[j] = min(max(cur[j]+xi*grad[j], b.Lo), b.Hi)
			}
			a, err := h.adv(step)
			if err != nil {
				return err
			}
			if a {
				break
			}
			xi /= 2
		}
		copy(cur, step)
		if distPost, err = h.boundary(ctx, cur); err != nil {
			return err
		}
		dist = h.dist(cur)
	}
}

// hsjBlend sets dst = (1−λ)·x + λ·p.
func hsjBlend(dst, x, p []float64, lambda float64) {
	for j := range dst {
		dst[j] = (1-lambda)*x[j] + lambda*p[j]
	}
}

// boundary moves the misclassified point p (in place) to the decision boundary
// between x and p by binary search (the authors' binary_search_batch) and returns
// the distance of p before the search.
func (h *hsjRow) boundary(ctx context.Context, p []float64) (float64, error) {
	b, x := h.a.Budget, h.o.x
	distPost := h.dist(p)
	var lo, hi, thr float64
	at := func(dst []float64, alpha float64) {
		if b.Norm == L2 {
			hsjBlend(dst, x, p, alpha)
			return
		}
		for j := range dst {
			dst[j] = min(max(p[j], x[j]-alpha), x[j]+alpha)
		}
	}
	if b.Norm == L2 {
		lo, hi, thr = 0, 1, h.theta
	} else {
		lo, hi, thr = 0, distPost, min(distPost*h.theta, h.theta)
	}
	if !(thr > 0) {
		return distPost, nil
	}
	for (hi-lo)/thr > 1 {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		mid := (lo + hi) / 2
		at(h.pt, mid)
		a, err := h.adv(h.pt)
		if err != nil {
			return 0, err
		}
		if a {
			hi = mid
		} else {
			lo = mid
		}
	}
	at(h.pt, hi)
	copy(p, h.pt)
	return distPost, nil
}

// estimate writes into grad the unit-length Monte Carlo estimate of the boundary's
// normal at p from evals sign queries at distance delta (eq. (9), (16)). It runs in
// chunks, accumulating Σ φᵦuᵦ and Σ uᵦ: with φ̄ the mean sign,
// 1/B Σ (φᵦ − φ̄)uᵦ = (Σ φᵦuᵦ − φ̄ Σ uᵦ)/B, and when every φᵦ agrees the authors'
// ±mean(uᵦ) is the same Σ φᵦuᵦ/B.
func (h *hsjRow) estimate(p []float64, delta float64, evals int, grad []float64) error {
	const chunk = 256
	b, d := h.a.Budget, h.d
	sumFU := make([]float64, d)
	sumU := make([]float64, d)
	pts := make([]float64, min(chunk, evals)*d)
	u := make([]float64, len(pts))
	sumF := 0.0
	var dec []bool
	for done := 0; done < evals; {
		n := min(chunk, evals-done)
		for k := 0; k < n; k++ {
			uk := u[k*d : (k+1)*d]
			ss := 0.0
			for j := range uk {
				if b.Norm == L2 {
					uk[j] = h.r.NormFloat64()
				} else {
					uk[j] = 2*h.r.Float64() - 1
				}
				ss += uk[j] * uk[j]
			}
			s := 1 / math.Sqrt(ss)
			pk := pts[k*d : (k+1)*d]
			for j := range uk {
				pk[j] = min(max(p[j]+delta*s*uk[j], b.Lo), b.Hi)
				uk[j] = (pk[j] - p[j]) / delta
			}
		}
		var err error
		if dec, err = h.o.decide(pts[:n*d], n, dec); err != nil {
			return err
		}
		for k := 0; k < n; k++ {
			f := -1.0
			if dec[k] {
				f = 1
			}
			sumF += f
			for j, v := range u[k*d : (k+1)*d] {
				sumFU[j] += f * v
				sumU[j] += v
			}
		}
		done += n
	}
	mean := sumF / float64(evals)
	norm := 0.0
	for j := range grad {
		grad[j] = sumFU[j] - mean*sumU[j]
		if mean == 1 || mean == -1 {
			grad[j] = sumFU[j]
		}
		norm += grad[j] * grad[j]
	}
	if norm > 0 {
		s := 1 / math.Sqrt(norm)
		for j := range grad {
			grad[j] *= s
		}
	}
	return nil
}
