package verify

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/certify-dev/certify/bounds"
	"github.com/certify-dev/certify/nets"
	"github.com/certify-dev/certify/verify/lp"
)

// DefaultBaBNodes is BaB's default limit on the domains bounded per sample.
const DefaultBaBNodes = 200

// BaB is complete verification by branch and bound over ReLU splits (Bunel et
// al., "Branch and Bound for Piecewise Linear Neural Network Verification", JMLR
// 2020; "A Unified View of Piecewise Linear Neural Network Verification",
// NeurIPS 2018). Per sample, a domain is a set of split decisions, each fixing
// one unstable ReLU to active (z ≥ 0, h = z) or inactive (z ≤ 0, h = 0). A domain
// is bounded by the triangle LP of LP (lpRelax) built from α-CROWN's
// pre-activation bounds with the split neurons made stable: the root LP is
// loaded once, with a column t = h − z ∈ [0, −l] per unstable neuron, and a
// split only sets column bounds (active: z ≥ 0, t = 0; inactive: z ≤ 0, h = 0),
// which makes that neuron exact, so each domain's LP is warm-started from the
// last basis. Bounds are Neumaier–Shcherbina safe bounds (lpRelax.safeBound)
// less lpTolerance, as in LP. A spec row proven on a domain is not re-solved on
// its subdomains (a split only shrinks the relaxation). A domain whose LP
// bound of every spec row is > 0 is verified; otherwise the input part of its LP
// minimiser is run through the network, and a spec violation there is a
// counterexample (Falsified). Else the domain is split on the unstable neuron
// whose relaxation is most violated at the minimiser (the gap h − max(z, 0), a
// cheap stand-in for the BaBSR score of Bunel et al. 2020, §5.1), or, when the
// minimiser violates none, on the one with the widest triangle, u·(−l)/(u−l).
// Domains are expanded worst bound first. When every unstable ReLU of a domain
// is split the LP is exact there, so, given enough nodes, the search settles
// every property whose minimum is not within the LP tolerance of 0. As for LP,
// the weights are read off by probing (extractLPNet), exact up to rounding.
//
// A domain whose LP the simplex reports infeasible is empty (the relaxation
// contains every point of the domain) and counts as verified. Intermediate
// bounds are not re-derived after a split (sound, only looser).
//
// Budget: MaxNodes domains bounded per sample, and the context's deadline; either
// exhausted gives Unknown with Margin the least bound over the open domains (and
// never below α-CROWN's).
type BaB struct {
	// SoundFP widens the α-CROWN bounds by their float64 rounding error.
	SoundFP bool
	// MaxNodes limits the domains bounded per sample (0: DefaultBaBNodes).
	MaxNodes int
}

// Name is "bab".
func (BaB) Name() string { return "bab" }

// Verify decides s over r (batch 1).
func (v BaB) Verify(ctx context.Context, g *nets.Graph, r Region, s bounds.Spec) (Result, error) {
	return verifyOne(ctx, v, g, r, s)
}

// VerifyBatch decides specs[i] over row i of r: α-CROWN on the whole batch, then
// branch and bound on every sample it neither verifies nor falsifies.
func (v BaB) VerifyBatch(ctx context.Context, g *nets.Graph, r Region, specs []bounds.Spec) ([]Result, error) {
	out, err := v.verifyBatch(ctx, g, r, specs)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", v.Name(), err)
	}
	return out, nil
}

func (v BaB) verifyBatch(ctx context.Context, g *nets.Graph, r Region, specs []bounds.Spec) ([]Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if g == nil {
		return nil, fmt.Errorf("no graph")
	}
	if v.MaxNodes < 0 {
		return nil, fmt.Errorf("node limit %d, want ≥ 0", v.MaxNodes)
	}
	if err := r.check(len(specs)); err != nil {
		return nil, err
	}
	for i, s := range specs {
		if err := checkSpec(s); err != nil {
			return nil, fmt.Errorf("spec %d: %w", i, err)
		}
	}
	net, err := extractLPNet(g, r.Lo.Shape[1:])
	if err != nil {
		return nil, err
	}
	opt := bounds.AlphaOptions{Options: bounds.Options{SoundFP: v.SoundFP}, Iterations: DefaultAlphaIterations, LR: DefaultAlphaLR}
	res, err := bounds.AlphaCROWN(g, bounds.Box{Lo: r.Lo, Hi: r.Hi}, specs, opt)
	if err != nil {
		return nil, err
	}
	out, err := results(g, r, specs, res.Lower)
	if err != nil {
		return nil, err
	}
	n := len(specs)
	per := r.Lo.Len() / n
	for i := range specs {
		if out[i].Verdict != Unknown {
			continue
		}
		if err := ctx.Err(); err != nil {
			break // out of time: the rest stay Unknown
		}
		lo, hi := make([][]float64, len(net.pre)), make([][]float64, len(net.pre))
		for k, name := range net.pre {
			box, ok := res.Nodes[name]
			m := len(net.affine[k].b)
			if !ok || box.Lo == nil || box.Lo.Len() != n*m || box.Hi.Len() != n*m {
				return nil, fmt.Errorf("no bounds of %d values per sample for pre-activation %q", m, name)
			}
			lo[k] = append([]float64(nil), box.Lo.Data[i*m:(i+1)*m]...)
			hi[k] = append([]float64(nil), box.Hi.Data[i*m:(i+1)*m]...)
		}
		s := babSearch{
			g: g, net: net, spec: specs[i], shape: append([]int{1}, r.Lo.Shape[1:]...),
			xlo: r.Lo.Data[i*per : (i+1)*per], xhi: r.Hi.Data[i*per : (i+1)*per],
			maxNodes: v.MaxNodes,
		}
		if s.maxNodes == 0 {
			s.maxNodes = DefaultBaBNodes
		}
		got, err := s.run(ctx, lo, hi)
		if err != nil {
			return nil, fmt.Errorf("sample %d: %w", i, err)
		}
		got.Margin = max(got.Margin, out[i].Margin)
		if got.Verdict == Falsified {
			got.Margin = min(got.Margin, 0)
		}
		out[i] = got
	}
	return out, nil
}

// babDomain is one domain: the pre-activation bounds with its splits applied,
// its LP bound (the least over the spec rows), and where to split it.
type babDomain struct {
	lo, hi [][]float64
	bound  float64
	// rows are the spec rows not yet proven (> 0) on an enclosing domain;
	// proven is the least bound of the others. A split only shrinks the
	// relaxation, so a row proven on a domain holds on its subdomains.
	rows   []int
	proven float64
	// layer, neuron to split next (layer < 0: none left).
	layer, neuron int
}

// babQueue is a min-heap of domains by bound.
type babQueue []*babDomain

func (q babQueue) Len() int           { return len(q) }
func (q babQueue) Less(i, j int) bool { return q[i].bound < q[j].bound }
func (q babQueue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *babQueue) Push(x any)        { *q = append(*q, x.(*babDomain)) }
func (q *babQueue) Pop() any {
	old := *q
	d := old[len(old)-1]
	*q = old[:len(old)-1]
	return d
}

// babSearch is the branch and bound of one sample.
type babSearch struct {
	g          *nets.Graph
	net        *lpNet
	spec       bounds.Spec
	shape      []int
	xlo, xhi   []float64
	maxNodes   int
	nodes      int
	solver     lp.Solver
	verifiedLB float64 // least bound of the verified domains
	// relax is the root relaxation, loaded once, with a slack column
	// t = h − z ∈ [0, −l] per unstable neuron (slack[k][o], −1 if stable):
	// a split only changes column bounds (active: z ≥ 0, t = 0 so h = z;
	// inactive: z ≤ 0, h = 0), so every domain is solved warm-started from the
	// last basis. relax.p's column bounds follow the solver's.
	relax          *lpRelax
	rootLo, rootHi [][]float64
	slack          [][]int
}

// addSlacks adds to the root relaxation r, built with bounds lo, hi, a column t
// and a row h − z − t = 0 for every unstable neuron.
func (s *babSearch) addSlacks(r *lpRelax, lo, hi [][]float64) {
	p := r.p
	type entry struct {
		row int
		v   float64
	}
	extra := make([][]entry, p.NumCols())
	s.slack = make([][]int, len(lo))
	for k := range lo {
		s.slack[k] = make([]int, len(lo[k]))
		for o := range lo[k] {
			s.slack[k][o] = -1
			l, u := lo[k][o], hi[k][o]
			if !(l < 0 && u > 0) {
				continue
			}
			row := p.NumRows()
			p.RowLo, p.RowHi = append(p.RowLo, 0), append(p.RowHi, 0)
			h, z := r.h[k]+o, r.z[k]+o
			extra[h] = append(extra[h], entry{row, 1})
			extra[z] = append(extra[z], entry{row, -1})
			t := len(extra)
			extra = append(extra, []entry{{row, -1}})
			p.ColLo, p.ColHi, p.Obj = append(p.ColLo, 0), append(p.ColHi, -l), append(p.Obj, 0)
			s.slack[k][o] = t
		}
	}
	var ri []int
	var vals []float64
	start := []int{0}
	for j := range extra {
		if j < len(p.ColStart)-1 {
			ri = append(ri, p.RowIndex[p.ColStart[j]:p.ColStart[j+1]]...)
			vals = append(vals, p.Values[p.ColStart[j]:p.ColStart[j+1]]...)
		}
		for _, e := range extra[j] {
			ri, vals = append(ri, e.row), append(vals, e.v)
		}
		start = append(start, len(ri))
	}
	p.ColStart, p.RowIndex, p.Values = start, ri, vals
}

// setCol sets column j's bounds in the solver and in relax.p, if they differ.
func (s *babSearch) setCol(j int, lo, hi float64) error {
	p := s.relax.p
	if p.ColLo[j] == lo && p.ColHi[j] == hi {
		return nil
	}
	if err := s.solver.SetColBounds(j, lo, hi); err != nil {
		return relaxError("setting a split", err)
	}
	p.ColLo[j], p.ColHi[j] = lo, hi
	return nil
}

// apply sets the columns of every root-unstable neuron to the domain lo, hi.
func (s *babSearch) apply(lo, hi [][]float64) error {
	for k := range s.slack {
		for o, t := range s.slack[k] {
			if t < 0 {
				continue
			}
			rl, ru := s.rootLo[k][o], s.rootHi[k][o]
			z, h := s.relax.z[k]+o, s.relax.h[k]+o
			zl, zu, hu, tu := rl, ru, ru, -rl
			switch {
			case lo[k][o] >= 0: // active
				zl, tu = 0, 0
			case hi[k][o] <= 0: // inactive
				zu, hu = 0, 0
			}
			if err := s.setCol(z, zl, zu); err != nil {
				return err
			}
			if err := s.setCol(h, 0, hu); err != nil {
				return err
			}
			if err := s.setCol(t, 0, tu); err != nil {
				return err
			}
		}
	}
	return nil
}

// run searches from the root domain with pre-activation bounds lo, hi.
func (s *babSearch) run(ctx context.Context, lo, hi [][]float64) (Result, error) {
	s.solver = lp.New()
	defer s.solver.Close()
	s.verifiedLB = math.Inf(1)
	K := len(s.net.pre)
	s.rootLo, s.rootHi = cloneBounds(lo), cloneBounds(hi)
	s.relax = buildRelax(s.net, s.xlo, s.xhi, lo, hi, K, false)
	s.addSlacks(s.relax, lo, hi)
	if err := s.solver.Load(s.relax.p); err != nil {
		return Result{}, relaxError("loading the relaxation", err)
	}
	q := &babQueue{}
	stuck := math.Inf(1) // least bound of the open domains with no split left
	all := make([]int, len(s.spec.C))
	for i := range all {
		all[i] = i
	}
	root, res, err := s.bound(lo, hi, all, math.Inf(1))
	if err != nil || res != nil {
		return deref(res), err
	}
	if root != nil {
		heap.Push(q, root)
	}
	for q.Len() > 0 {
		if s.nodes >= s.maxNodes || ctx.Err() != nil {
			break
		}
		d := heap.Pop(q).(*babDomain)
		if d.layer < 0 { // nothing left to split: the LP is exact, its bound ≈ 0
			stuck = min(stuck, d.bound)
			continue
		}
		k, o := d.layer, d.neuron
		for _, active := range []bool{true, false} {
			lo2, hi2 := cloneBounds(d.lo), cloneBounds(d.hi)
			if active {
				lo2[k][o] = 0
			} else {
				hi2[k][o] = 0
			}
			child, res, err := s.bound(lo2, hi2, d.rows, d.proven)
			if err != nil || res != nil {
				return deref(res), err
			}
			if child != nil {
				heap.Push(q, child)
			}
		}
	}
	// Some leaf holds a point of the region, so its bound is finite: an infinite
	// verifiedLB means every LP failed, which proves nothing.
	if q.Len() == 0 && math.IsInf(stuck, 1) && !math.IsInf(s.verifiedLB, 1) {
		return Result{Verdict: Verified, Margin: s.verifiedLB}, nil
	}
	m := min(stuck, s.verifiedLB)
	if q.Len() > 0 {
		m = min(m, (*q)[0].bound)
	}
	return Result{Verdict: Unknown, Margin: m}, nil
}

func deref(r *Result) Result {
	if r == nil {
		return Result{}
	}
	return *r
}

func cloneBounds(b [][]float64) [][]float64 {
	c := make([][]float64, len(b))
	for k := range b {
		c[k] = append([]float64(nil), b[k]...)
	}
	return c
}

// bound bounds the spec rows rows of the domain lo, hi by LP (proven: the least
// bound of the other rows, all > 0). It returns nil, nil, nil for a verified
// (or empty) domain, a Falsified result when the LP minimiser violates the spec,
// and else the open domain with its split choice.
func (s *babSearch) bound(lo, hi [][]float64, rows []int, proven float64) (*babDomain, *Result, error) {
	s.nodes++
	K := len(s.net.pre)
	relax := s.relax
	if err := s.apply(lo, hi); err != nil {
		return nil, nil, err
	}
	last := s.net.affine[K]
	obj := make([]float64, relax.p.NumCols())
	worst := math.Inf(1)
	var point []float64
	var open []int
	for _, row := range rows {
		c := s.spec.C[row]
		if len(c) != len(last.b) {
			return nil, nil, fmt.Errorf("spec row %d has %d columns, the network %d outputs", row, len(c), len(last.b))
		}
		clear(obj)
		konst := s.spec.D[row]
		for j, cj := range c {
			if cj == 0 {
				continue
			}
			konst += cj * last.b[j]
			w := last.W[j*last.in : (j+1)*last.in]
			for o, wv := range w {
				obj[relax.base+o] += cj * wv
			}
		}
		if err := s.solver.SetObjective(obj); err != nil {
			return nil, nil, relaxError("objective", err)
		}
		sol, err := s.solver.Solve()
		if errors.Is(err, lp.ErrInfeasible) {
			if s.nodes == 1 { // the root holds the region's points: a solver failure
				return &babDomain{lo: lo, hi: hi, bound: math.Inf(-1), layer: -1}, nil, nil
			}
			return nil, nil, nil // an empty domain
		}
		b, x := math.Inf(-1), []float64(nil)
		if err == nil && sol.Status == lp.Optimal {
			b = relax.safeBound(obj, sol) + konst - lpTolerance*max(1, math.Abs(konst))
			x = sol.X
		} else if err != nil && !errors.Is(err, lp.ErrUnbounded) && !errors.Is(err, lp.ErrFailed) {
			return nil, nil, relaxError(fmt.Sprintf("spec row %d", row), err)
		}
		if b > 0 {
			proven = min(proven, b)
		} else {
			open = append(open, row)
		}
		if b < worst || point == nil && x != nil && b <= worst {
			worst = b
			point = x
		}
	}
	if len(open) == 0 {
		s.verifiedLB = min(s.verifiedLB, proven)
		return nil, nil, nil
	}
	d := &babDomain{lo: lo, hi: hi, bound: worst, rows: open, proven: proven, layer: -1}
	if point != nil {
		xin := make([]float64, len(s.xlo))
		for i := range xin {
			xin[i] = min(max(point[i], s.xlo[i]), s.xhi[i])
		}
		x := nets.FromData(xin, s.shape...)
		y, err := s.g.Logits(x)
		if err != nil {
			return nil, nil, fmt.Errorf("evaluating an LP minimiser: %w", err)
		}
		val, err := specValue(s.spec, y.Data)
		if err != nil {
			return nil, nil, err
		}
		if val <= 0 {
			return nil, &Result{Verdict: Falsified, Margin: min(worst, 0), Counterexample: x}, nil
		}
	}
	d.layer, d.neuron = s.branch(relax, lo, hi, point)
	return d, nil, nil
}

// branch picks the unstable neuron to split: the largest relaxation gap
// h − max(z, 0) at the LP minimiser x, else (no minimiser, or no gap) the widest
// triangle u·(−l)/(u−l). It returns −1, −1 when no neuron is unstable.
func (s *babSearch) branch(relax *lpRelax, lo, hi [][]float64, x []float64) (int, int) {
	const minGap = 1e-9
	bk, bo, best := -1, -1, minGap
	wk, wo, widest := -1, -1, 0.0
	for k := range lo {
		for o := range lo[k] {
			l, u := lo[k][o], hi[k][o]
			if !(l < 0 && u > 0) {
				continue
			}
			if w := u * -l / (u - l); w > widest {
				wk, wo, widest = k, o, w
			}
			if x != nil {
				if gap := x[relax.h[k]+o] - max(x[relax.z[k]+o], 0); gap > best {
					bk, bo, best = k, o, gap
				}
			}
		}
	}
	if bk >= 0 {
		return bk, bo
	}
	return wk, wo
}
