package attacks

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/certify-dev/certify/nets"
)

// Square is the Square Attack of Andriushchenko, Croce, Flammarion & Hein, "Square
// Attack: a query-efficient black-box adversarial attack via random search", ECCV
// 2020: a random search that needs only the model's scores. It minimises the margin
// loss L(x') = z_y(x') − max_{j≠y} z_j(x') (Sec. 3) by changing one random square
// window at a time and keeping a change only if L decreases.
//
// L∞ (Algorithms 1 and 2): start from vertical stripes, x̂ = Π(x + ε·s) with one
// random sign s ∈ {−ε, ε} per channel and column; then each iteration draws a window
// of side h = round(√(p·H·W)) (clamped to [1, min(H,W)−1]) at a uniform position and,
// per channel, one sign, and sets the window of the candidate to Π(x ± ε) there —
// every coordinate is always at a vertex of the ε-box, where L∞ attacks on
// near-linear models end up anyway (Sec. 3.2).
//
// The fraction p of pixels changed follows the authors' schedule: PInit halved at
// iterations 10, 50, 200, 500, 1000, 2000, 4000, 6000 and 8000 of 10 000, rescaled to
// the query budget (iteration i of Queries counts as i·10000/Queries).
//
// L2 (Algorithm 3 and the authors' square_attack_l2): the start is a 5×5 grid of
// tiles, each holding the pattern below with a random sign per channel, scaled to
// ‖δ‖₂ = ε. Each iteration draws two windows W₁, W₂ of side h = max(round(√(p·H·W)),
// 3) (made odd, at most min(H,W)−1) and moves mass from W₂ to W₁: per channel, the
// new W₁ content is (±pattern + δ_W₁/‖δ_W₁‖) rescaled to norm
// √(max(ε² − ‖δ‖², 0)/C + ‖δ_{W₁∪W₂}‖²), W₂ is zeroed, and the whole δ is rescaled to
// ‖δ‖₂ = ε before clipping to the domain. The pattern (the authors'
// meta_pseudo_gaussian_pert) is two stacked halves of concentric rectangles weighted
// 1/(k+1)², of opposite signs, transposed with probability ½.
//
// Queries count every model evaluation of a row: the clean point, the start,
// then one per window. A row stops at its first misclassified point (success) or
// when its budget is spent. Samples are laid out as C×H×W (bbGrid); for L∞, flat
// samples (rank 1) get windows of round(p·W) consecutive values; L2 needs images of
// at least 5×5. L1 budgets are not supported.
type Square struct {
	Budget Budget
	// Queries is the query budget per row; 0 means 5000.
	Queries int
	// PInit is the initial fraction of pixels a window covers, in (0, 1]; 0 means
	// the paper's defaults, 0.05 for L∞ and 0.1 for L2.
	PInit float64
	Seed  uint64
}

// NewSquare returns the Square attack with the paper's defaults: 5000 queries and
// p_init = 0.05 (L∞) or 0.1 (L2).
func NewSquare(b Budget, seed uint64) Square {
	a := Square{Budget: b, Queries: 5000, PInit: 0.05, Seed: seed}
	if b.Norm == L2 {
		a.PInit = 0.1
	}
	return a
}

// Name is "square".
func (Square) Name() string { return "square" }

func (a Square) withDefaults() (Square, error) {
	if a.Queries == 0 {
		a.Queries = 5000
	}
	if a.PInit == 0 {
		a.PInit = NewSquare(a.Budget, a.Seed).PInit
	}
	if a.Queries < 0 {
		return a, fmt.Errorf("square: query budget %d < 0", a.Queries)
	}
	if !(a.PInit > 0 && a.PInit <= 1) {
		return a, fmt.Errorf("square: PInit %g outside (0, 1]", a.PInit)
	}
	return a, nil
}

// Run returns the adversarial points found, rows without one reset to x.
func (a Square) Run(ctx context.Context, m nets.Classifier, x *nets.Tensor, labels []int) (*nets.Tensor, error) {
	r, err := a.Attack(ctx, m, x, labels)
	if err != nil {
		return nil, err
	}
	return r.Adv, nil
}

// Attack runs the Square attack on every row, rows advancing in lockstep so one
// model call carries up to bbChunk rows, and re-checks the result.
func (a Square) Attack(ctx context.Context, m nets.Classifier, x *nets.Tensor, labels []int) (*Result, error) {
	a, err := a.withDefaults()
	if err != nil {
		return nil, err
	}
	n, per, err := bbCheck(a.Budget, x, labels, LInf, L2)
	if err != nil {
		return nil, fmt.Errorf("square: %w", err)
	}
	g := bbGridOf(x.Shape[1:])
	if a.Budget.Norm == L2 && min(g.h, g.w) < 5 {
		return nil, fmt.Errorf("square: the L2 attack needs images of at least 5×5, got %d×%d (sample shape %v)", g.h, g.w, x.Shape[1:])
	}
	rows := make([]bbStepper, n)
	sq := make([]*squareRow, n)
	for i := range rows {
		sq[i] = &squareRow{
			a: a, g: g, x: x.Data[i*per : (i+1)*per], y: labels[i], r: RowRand(a.Seed, Row(ctx, i)),
			best: make([]float64, per), cand: make([]float64, per),
		}
		rows[i] = sq[i]
	}
	if err := bbLockstep(ctx, m, x.Shape[1:], per, labels, rows); err != nil {
		return nil, fmt.Errorf("square: %w", err)
	}
	adv := x.Clone()
	queries := make([]int, n)
	for i, s := range sq {
		queries[i] = s.used
		if s.success {
			copy(adv.Data[i*per:(i+1)*per], s.best)
		}
	}
	r, err := Check(m, a.Budget, x, adv, labels, queries)
	if err != nil {
		return nil, fmt.Errorf("square: %w", err)
	}
	return r, nil
}

// squareP is the fraction of pixels changed at iteration it of n: the authors'
// p_selection schedule, defined on 10 000 iterations and rescaled to n.
func squareP(pInit float64, it, n int) float64 {
	return pInit / math.Exp2(float64(squareHalvings(it, n)))
}

// squareRow is one row of the Square attack.
type squareRow struct {
	a       Square
	g       bbGrid
	x       []float64
	y       int
	r       *rand.Rand
	best    []float64 // x̂, the best point so far (the adversarial point once success)
	cand    []float64 // the point being queried
	loss    float64   // L(x̂)
	used    int       // queries spent
	it      int       // windows tried
	stage   int       // 0: query x; 1: query the stripes; 2: windows
	success bool
}

func (s *squareRow) active() bool {
	if s.a.Budget.Eps == 0 && s.stage > 0 {
		return false // nothing to search: only x itself is in the budget
	}
	return !s.success && s.used < s.a.Queries
}

// vertex returns x_i moved by sign·ε and clipped to the domain: a coordinate of
// the ε-box around x, inside the budget by construction.
func (s *squareRow) vertex(i int, sign float64) float64 {
	b := s.a.Budget
	return min(max(s.x[i]+sign*b.Eps, b.Lo), b.Hi)
}

func (s *squareRow) randSign() float64 {
	if s.r.IntN(2) == 0 {
		return -1
	}
	return 1
}

func (s *squareRow) propose(dst []float64) {
	g := s.g
	switch s.stage {
	case 0:
		copy(s.cand, s.x)
	case 1:
		if s.a.Budget.Norm == L2 {
			s.initL2()
			break
		}
		// Vertical stripes: one sign per channel and column, constant down the column.
		for c := 0; c < g.c; c++ {
			for w := 0; w < g.w; w++ {
				sign := s.randSign()
				for h := 0; h < g.h; h++ {
					i := (c*g.h+h)*g.w + w
					s.cand[i] = s.vertex(i, sign)
				}
			}
		}
	default:
		if s.a.Budget.Norm == L2 {
			s.stepL2()
			s.it++
			break
		}
		copy(s.cand, s.best)
		sh, sw := squareWindow(g, squareP(s.a.PInit, s.it, s.a.Queries))
		r0, c0 := s.r.IntN(g.h-sh+1), s.r.IntN(g.w-sw+1)
		// Redraw the signs while they would leave the window as it is (the authors'
		// check: such a query cannot change the loss). One of the two signs always
		// changes a channel when ε > 0, so this ends; 100 draws bound it anyway.
		for try := 0; try < 100; try++ {
			changed := false
			for c := 0; c < g.c; c++ {
				sign := s.randSign()
				for h := r0; h < r0+sh; h++ {
					for w := c0; w < c0+sw; w++ {
						i := (c*g.h+h)*g.w + w
						s.cand[i] = s.vertex(i, sign)
						changed = changed || math.Abs(s.cand[i]-s.best[i]) >= 1e-7
					}
				}
			}
			if changed {
				break
			}
		}
		s.it++
	}
	copy(dst, s.cand)
}

func (s *squareRow) observe(z []float64) error {
	s.used++
	if bbFooled(z, s.y) {
		s.success = true
		copy(s.best, s.cand)
		return nil
	}
	l := bbMargin(z, s.y)
	switch s.stage {
	case 0:
		s.stage = 1
	case 1:
		copy(s.best, s.cand)
		s.loss = l
		s.stage = 2
	default:
		if l < s.loss {
			s.best, s.cand = s.cand, s.best
			s.loss = l
		}
	}
	return nil
}

// squareWindow is the window size for a fraction p of the H×W pixels: a square of
// side round(√(p·H·W)) in [1, min(H,W)−1] for images, a run of round(p·W) values in
// [1, W−1] for flat samples (H = 1).
func squareWindow(g bbGrid, p float64) (sh, sw int) {
	if g.h == 1 || g.w == 1 {
		l := max(g.h, g.w)
		n := min(max(int(math.Round(p*float64(l))), 1), max(l-1, 1))
		if g.h == 1 {
			return 1, n
		}
		return n, 1
	}
	side := min(max(int(math.Round(math.Sqrt(p*float64(g.h*g.w)))), 1), min(g.h, g.w)-1)
	return side, side
}

// initL2 sets cand to the L2 start: a grid of 5×5 tiles of side ⌊H/5⌋, centred,
// each the pattern with a random sign per channel, scaled to ‖δ‖₂ = ε.
func (s *squareRow) initL2() {
	g := s.g
	delta := make([]float64, len(s.x))
	side := g.h / 5
	off := (g.h - 5*side) / 2
	for r0 := off; r0+side <= g.h && r0 < off+5*side; r0 += side {
		for c0 := off; c0+side <= g.w && c0 < off+5*side; c0 += side {
			pat := squarePattern(side, s.r.Float64() > 0.5)
			for c := 0; c < g.c; c++ {
				sign := s.randSign()
				for i := 0; i < side; i++ {
					for j := 0; j < side; j++ {
						delta[(c*g.h+r0+i)*g.w+c0+j] += sign * pat[i*side+j]
					}
				}
			}
		}
	}
	s.setL2(delta)
}

// setL2 sets cand = clip(x + ε·δ/‖δ‖₂) (x itself for δ = 0).
func (s *squareRow) setL2(delta []float64) {
	b := s.a.Budget
	n := 0.0
	for _, v := range delta {
		n += v * v
	}
	scale := 0.0
	if n > 0 {
		scale = b.Eps / math.Sqrt(n)
	}
	for j, v := range delta {
		s.cand[j] = min(max(s.x[j]+scale*v, b.Lo), b.Hi)
	}
}

// stepL2 sets cand to an L2 update of best: mass moved from a window W₂ to a window
// W₁, whose new content is the pattern plus its old direction.
func (s *squareRow) stepL2() {
	g, eps := s.g, s.a.Budget.Eps
	side := max(int(math.Round(math.Sqrt(squareP(s.a.PInit, s.it, s.a.Queries)*float64(g.h*g.w)))), 3)
	if side%2 == 0 {
		side++
	}
	side = min(side, min(g.h, g.w)-1)
	r1, c1 := s.r.IntN(g.h-side), s.r.IntN(g.w-side)
	r2, c2 := s.r.IntN(g.h-side), s.r.IntN(g.w-side)
	delta := make([]float64, len(s.x))
	img := 0.0
	for j := range delta {
		delta[j] = s.best[j] - s.x[j]
		img += delta[j] * delta[j]
	}
	in1 := func(i, j int) bool { return i >= r1 && i < r1+side && j >= c1 && j < c1+side }
	in2 := func(i, j int) bool { return i >= r2 && i < r2+side && j >= c2 && j < c2+side }
	pat := squarePattern(side, s.r.Float64() > 0.5)
	nd := make([]float64, side*side)
	for c := 0; c < g.c; c++ {
		sign := s.randSign()
		w1, both := 0.0, 0.0 // ‖δ_c on W₁‖², ‖δ_c on W₁ ∪ W₂‖²
		for i := 0; i < g.h; i++ {
			for j := 0; j < g.w; j++ {
				v := delta[(c*g.h+i)*g.w+j]
				if in1(i, j) {
					w1 += v * v
				}
				if in1(i, j) || in2(i, j) {
					both += v * v
				}
			}
		}
		w1 = math.Sqrt(w1)
		nn := 0.0
		for i := 0; i < side; i++ {
			for j := 0; j < side; j++ {
				k := i*side + j
				nd[k] = sign*pat[k] + delta[(c*g.h+r1+i)*g.w+c1+j]/(1e-10+w1)
				nn += nd[k] * nd[k]
			}
		}
		target := math.Sqrt(max(eps*eps-img, 0)/float64(g.c) + both)
		scale := 0.0
		if nn > 0 {
			scale = target / math.Sqrt(nn)
		}
		for i := r2; i < r2+side; i++ {
			for j := c2; j < c2+side; j++ {
				delta[(c*g.h+i)*g.w+j] = 0
			}
		}
		for i := 0; i < side; i++ {
			for j := 0; j < side; j++ {
				delta[(c*g.h+r1+i)*g.w+c1+j] = scale * nd[i*side+j]
			}
		}
	}
	s.setL2(delta)
}

// squareHalvings is how many times the schedule has halved p_init at iteration it
// of n: once past each of iterations 10, 50, 200, 500, 1000, 2000, 4000, 6000 and
// 8000 of 10 000 (iteration it counts as it·10000/n), none beyond 10 000.
func squareHalvings(it, n int) int {
	i := int(float64(it) / float64(n) * 10000)
	cuts := [...]int{10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000}
	k := 0
	for k < len(cuts) && i > cuts[k] {
		k++
	}
	if i > 10000 {
		return 0
	}
	return k
}

// squarePattern is the authors' meta_pseudo_gaussian_pert: an s×s array (row-major)
// whose top ⌊s/2⌋ rows are concentric rectangles weighted 1/(k+1)² and whose bottom
// rows are the same for the rest, negated; unit L2 norm; transposed if asked.
func squarePattern(s int, transpose bool) []float64 {
	top, bottom := pseudoGaussianRect(s/2, s), pseudoGaussianRect(s-s/2, s)
	out := make([]float64, s*s)
	copy(out, top)
	for k, v := range bottom {
		out[len(top)+k] = -v
	}
	n := 0.0
	for _, v := range out {
		n += v * v
	}
	n = math.Sqrt(n)
	for k := range out {
		out[k] /= n
	}
	if transpose {
		t := make([]float64, s*s)
		for i := 0; i < s; i++ {
			for j := 0; j < s; j++ {
				t[j*s+i] = out[i*s+j]
			}
		}
		out = t
	}
	return out
}

// pseudoGaussianRect is an r×c array of concentric rectangles around
// (r/2, c/2) (0-based, rounding down), the k-th (k = 0 the centre) of size
// (2k+1)×(2k+1) adding 1/(k+1)², normalised to unit L2 norm.
func pseudoGaussianRect(r, c int) []float64 {
	d := make([]float64, r*c)
	if r == 0 || c == 0 {
		return d
	}
	xc, yc := r/2, c/2
	for k := 0; k < max(r/2+1, c/2+1); k++ {
		for i := max(xc-k, 0); i < min(xc+k+1, r); i++ {
			for j := max(yc-k, 0); j < min(yc+k+1, c); j++ {
				d[i*c+j] += 1 / float64((k+1)*(k+1))
			}
		}
	}
	n := 0.0
	for _, v := range d {
		n += v * v
	}
	n = math.Sqrt(n)
	for k := range d {
		d[k] /= n
	}
	return d
}
