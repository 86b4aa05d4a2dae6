package attacks

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/certify-dev/certify/nets"
)

// NES is projected gradient descent on gradients estimated from scores alone by
// natural evolution strategies with antithetic Gaussian sampling: Ilyas, Engstrom,
// Athalye & Lin, "Black-box Adversarial Attacks with Limited Queries and
// Information", ICML 2018, Sec. 2.2 and Algorithm 1:
//
//	ĝ = 1/(nσ) Σ_{i=1..n/2} (L(x+σuᵢ) − L(x−σuᵢ))·uᵢ,   uᵢ ~ N(0, I),
//
// an estimate of the gradient of the Gaussian-smoothed loss E L(x+σu). The loss is
// the margin L = z_y − max_{j≠y} z_j on the logits, descended by PGD: with momentum
// m ← μ·m + (1−μ)·ĝ, L∞: x ← Π(x − η·sign(m)); L2: x ← Π(x − η·m/‖m‖₂); Π projects
// onto the budget (Budget.Project). NewNES's μ = 0.9 and η = ε/10 measured best on
// the shipped MLP at L∞ ε = 0.1 (92 of the 99 PGD-breakable samples of the first
// 100; μ = 0: 79; η = ε/4 or ε/2: 89).
//
// Each iteration costs n queries for the estimate and one for the new iterate; the
// first query is x itself. A row stops at the first queried point inside the budget
// that the model misclassifies, or when fewer than n+1 queries are left. The sample
// points x ± σu are queried as they are, not clipped to the domain (the estimate is
// of the model's gradient, and σ is small). Norms: L∞ and L2.
type NES struct {
	Budget Budget
	// Queries is the query budget per row; 0 means 10 000 (the paper's
	// query-limited setting).
	Queries int
	// Samples is n, the queries per gradient estimate, even (antithetic pairs);
	// 0 means 50 (the paper's).
	Samples int
	// Sigma is the search standard deviation σ > 0; 0 means 0.001 (the paper's).
	Sigma float64
	// Step is the step η; 0 means Eps/10.
	Step float64
	// Momentum μ in [0, 1): 0 is plain gradient estimates; NewNES sets 0.9.
	Momentum float64
	Seed     uint64
}

// NewNES returns NES with the paper's settings: 10 000 queries, n = 50, σ = 0.001,
// momentum 0.9, step Eps/10.
func NewNES(b Budget, seed uint64) NES {
	return NES{Budget: b, Queries: 10000, Samples: 50, Sigma: 0.001, Step: b.Eps / 10, Momentum: 0.9, Seed: seed}
}

// Name is "nes".
func (NES) Name() string { return "nes" }

// Run returns the adversarial points found, rows without one reset to x.
func (a NES) Run(ctx context.Context, m nets.Classifier, x *nets.Tensor, labels []int) (*nets.Tensor, error) {
	r, err := a.Attack(ctx, m, x, labels)
	if err != nil {
		return nil, err
	}
	return r.Adv, nil
}

// Attack runs NES-PGD on every row and re-checks the result.
func (a NES) Attack(ctx context.Context, m nets.Classifier, x *nets.Tensor, labels []int) (*Result, error) {
	e := estimatedPGD{name: a.Name(), b: a.Budget, queries: a.Queries, samples: a.Samples, h: a.Sigma,
		step: a.Step, momentum: a.Momentum, seed: a.Seed}
	return e.attack(ctx, m, x, labels)
}

// SPSA is projected gradient descent on gradients estimated by simultaneous
// perturbation stochastic approximation with Rademacher directions: Uesato,
// O'Donoghue, van den Oord & Kohli, "Adversarial Risk and the Dangers of Evaluating
// Against Weak Attacks", ICML 2018, Algorithm 1 (after Spall 1992):
//
//	ĝ = 1/(n/2) Σ_{i=1..n/2} (L(x+δvᵢ) − L(x−δvᵢ))/(2δ) · vᵢ⁻¹,   vᵢ ∈ {−1, 1}ᵈ uniform
//
// (vᵢ⁻¹ = vᵢ elementwise). It shares NES's loop: the same margin loss, momentum and
// projected sign (L∞) or normalised (L2) steps — the paper's Adam update is replaced
// by PGD's, as for NES. Costs, stopping and unclipped sample points as for NES.
type SPSA struct {
	Budget Budget
	// Queries is the query budget per row; 0 means 10 000.
	Queries int
	// Samples is n, the queries per gradient estimate (n/2 directions, two
	// queries each), even; 0 means 50.
	Samples int
	// Delta is the perturbation size δ > 0; 0 means 0.01 (the paper's).
	Delta float64
	// Step is the step η; 0 means Eps/10.
	Step float64
	// Momentum μ in [0, 1): 0 is plain estimates; NewSPSA sets 0.9.
	Momentum float64
	Seed     uint64
}

// NewSPSA returns SPSA with 10 000 queries, n = 50, δ = 0.01, momentum 0.9, step
// Eps/10.
func NewSPSA(b Budget, seed uint64) SPSA {
	return SPSA{Budget: b, Queries: 10000, Samples: 50, Delta: 0.01, Step: b.Eps / 10, Momentum: 0.9, Seed: seed}
}

// Name is "spsa".
func (SPSA) Name() string { return "spsa" }

// Run returns the adversarial points found, rows without one reset to x.
func (a SPSA) Run(ctx context.Context, m nets.Classifier, x *nets.Tensor, labels []int) (*nets.Tensor, error) {
	r, err := a.Attack(ctx, m, x, labels)
	if err != nil {
		return nil, err
	}
	return r.Adv, nil
}

// Attack runs SPSA-PGD on every row and re-checks the result.
func (a SPSA) Attack(ctx context.Context, m nets.Classifier, x *nets.Tensor, labels []int) (*Result, error) {
	e := estimatedPGD{name: a.Name(), b: a.Budget, queries: a.Queries, samples: a.Samples, h: a.Delta,
		step: a.Step, momentum: a.Momentum, seed: a.Seed, rademacher: true}
	return e.attack(ctx, m, x, labels)
}

// estimatedPGD is the loop NES and SPSA share; they differ in the distribution of
// the directions (Gaussian or Rademacher) and the names of their parameters. Both
// estimates are 1/(n·h) Σ_pairs (L(x+h·u) − L(x−h·u))·u.
type estimatedPGD struct {
	name       string
	b          Budget
	queries    int
	samples    int
	h          float64 // σ (NES) or δ (SPSA)
	step       float64
	momentum   float64
	seed       uint64
	rademacher bool
}

func (e estimatedPGD) withDefaults() (estimatedPGD, error) {
	if e.queries == 0 {
		e.queries = 10000
	}
	if e.samples == 0 {
		e.samples = 50
	}
	if e.h == 0 {
		e.h = 0.001
		if e.rademacher {
			e.h = 0.01
		}
	}
	if e.step == 0 {
		e.step = e.b.Eps / 10
	}
	switch {
	case e.queries < 0:
		return e, fmt.Errorf("%s: query budget %d < 0", e.name, e.queries)
	case e.samples < 2 || e.samples%2 != 0:
		return e, fmt.Errorf("%s: %d samples per estimate: want an even number ≥ 2", e.name, e.samples)
	case !(e.h > 0) || math.IsInf(e.h, 0):
		return e, fmt.Errorf("%s: sampling scale %g must be finite and > 0", e.name, e.h)
	case !(e.step >= 0) || math.IsInf(e.step, 0):
		return e, fmt.Errorf("%s: step %g must be finite and ≥ 0", e.name, e.step)
	case !(e.momentum >= 0 && e.momentum < 1):
		return e, fmt.Errorf("%s: momentum %g outside [0, 1)", e.name, e.momentum)
	}
	return e, nil
}

func (e estimatedPGD) attack(ctx context.Context, m nets.Classifier, x *nets.Tensor, labels []int) (*Result, error) {
	e, err := e.withDefaults()
	if err != nil {
		return nil, err
	}
	return bbRows(ctx, e.name, e.b, []Norm{LInf, L2}, m, x, labels, e.queries, func(o *bbOracle, i int) error {
		return e.row(ctx, o, RowRand(e.seed, Row(ctx, i)))
	})
}

// row runs the estimate-and-step loop on one row until success or the budget.
func (e estimatedPGD) row(ctx context.Context, o *bbOracle, r *rand.Rand) error {
	d := len(o.x)
	cur := append([]float64(nil), o.x...)
	if _, _, err := o.query(cur, 1); err != nil {
		return err
	}
	u := make([]float64, e.samples/2*d)
	pts := make([]float64, e.samples*d)
	g := make([]float64, d)
	mom := make([]float64, d)
	for o.left() >= e.samples+1 {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := e.estimate(o, cur, r, u, pts, g); err != nil {
			return err
		}
		for j := range mom {
			mom[j] = e.momentum*mom[j] + (1-e.momentum)*g[j]
		}
		bbDescend(e.b, cur, o.x, mom, e.step)
		if _, _, err := o.query(cur, 1); err != nil {
			return err
		}
	}
	return nil
}

// estimate writes into g the estimate 1/(n·h) Σ_pairs (L(p+h·u) − L(p−h·u))·u of
// the margin loss's gradient at p, spending n = e.samples queries; u and pts are
// scratch space for n/2 directions and n points.
func (e estimatedPGD) estimate(o *bbOracle, p []float64, r *rand.Rand, u, pts, g []float64) error {
	d := len(p)
	pairs := e.samples / 2
	for k := 0; k < pairs; k++ {
		uk := u[k*d : (k+1)*d]
		plus, minus := pts[2*k*d:(2*k+1)*d], pts[(2*k+1)*d:(2*k+2)*d]
		for j := range uk {
			if e.rademacher {
				uk[j] = float64(2*r.IntN(2) - 1)
			} else {
				uk[j] = r.NormFloat64()
			}
			plus[j] = p[j] + e.h*uk[j]
			minus[j] = p[j] - e.h*uk[j]
		}
	}
	if _, _, err := o.query(pts, e.samples); err != nil {
		return err
	}
	clear(g)
	scale := 1 / (float64(e.samples) * e.h)
	for k := 0; k < pairs; k++ {
		c := (o.margin[2*k] - o.margin[2*k+1]) * scale
		if c == 0 || math.IsNaN(c) {
			continue
		}
		for j, v := range u[k*d : (k+1)*d] {
			g[j] += c * v
		}
	}
	return nil
}

// bbDescend takes one projected step of size step against direction g: L∞
// adv ← Π(adv − step·sign(g)), L2 adv ← Π(adv − step·g/‖g‖₂) (no move for g = 0).
func bbDescend(b Budget, adv, x, g []float64, step float64) {
	switch b.Norm {
	case LInf:
		for j, v := range g {
			if v > 0 {
				adv[j] -= step
			} else if v < 0 {
				adv[j] += step
			}
		}
	default:
		n := 0.0
		for _, v := range g {
			n += v * v
		}
		if n == 0 || math.IsInf(n, 0) || math.IsNaN(n) {
			break
		}
		s := step / math.Sqrt(n)
		for j, v := range g {
			adv[j] -= s * v
		}
	}
	b.Project(adv, x)
}
