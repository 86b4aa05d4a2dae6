package verify

import (
	"container/heap"
	"context"
	"fmt"
	"math"
	"time"

	"github.com/certify-dev/certify/bounds"
	"github.com/certify-dev/certify/nets"
	"github.com/certify-dev/certify/verify/lp"
)

// BaB defaults.
const (
	// DefaultBaBNodes limits the domains bounded per sample.
	DefaultBaBNodes = 100000
	// DefaultBaBBatch is the number of domains split per bounding call: their
	// 2·DefaultBaBBatch children are bounded as one batch.
	DefaultBaBBatch = 32
	// DefaultBaBQueue limits the open domains per sample (each holds its
	// pre-activation bounds) when BaB.MaxDomains is 0: beyond it the search
	// gives up with Unknown.
	DefaultBaBQueue = 50000
	// babQueueBytes caps the memory of the open domains' bounds per sample
	// when BaB.MaxDomains is 0; on wide networks it lowers DefaultBaBQueue.
	babQueueBytes = 1 << 30
	// DefaultBaBIterations is BaB's default of α/β-CROWN steps per bounding.
	DefaultBaBIterations = 10
	// babAttackStarts, babAttackSteps: the PGD falsification at the root.
	babAttackStarts = 8
	babAttackSteps  = 60
)

// BaB is complete verification by branch and bound over ReLU splits (Bunel et
// al., "Branch and Bound for Piecewise Linear Neural Network Verification", JMLR
// 2020), in the style of β-CROWN's batched search (Wang et al., NeurIPS 2021)
// without the β multipliers. Per sample:
//
//  1. α-CROWN, with its intermediate bounds' slopes optimised too
//     (bounds.Options.IntermediateAlpha), bounds the whole region (batched over
//     the samples); a sample it verifies is done.
//  2. Falsification: projected gradient descent of the spec's least row from
//     the region's centre and random points (falsifySpec). A point whose forward
//     pass violates the spec is a counterexample.
//  3. Branch and bound. A domain is a set of split decisions, each fixing one
//     unstable ReLU to active (z ≥ 0) or inactive (z ≤ 0), with the
//     pre-activation bounds that hold on it. The DefaultBaBBatch domains with
//     the least bounds are split at once and their children bounded by CROWN in
//     one batch, with the split decisions and the parent's bounds as clamps on
//     the pre-activations (bounds.Options.Clamp): intermediate bounds after the
//     split layer are re-derived under the splits, so a split tightens every
//     later layer. A child whose clamps cross is empty. A child whose every open
//     spec row is > 0 is verified; a row proven on a domain stays proven on its
//     subdomains. The input point that minimises the child's CROWN bound of its
//     worst row is run through the network: a violation is a counterexample.
//  4. Branching is BaBSR-style (Bunel et al. 2020, §5.1): the worst row's
//     coefficient λ is propagated backwards through the relaxed network, and
//     the neuron whose relaxation costs the bound most is split: the chord's
//     intercept −l·u/(u−l) times |λ| where λ < 0, half the lower line's gap
//     min(u, −l) times λ where λ > 0.
//  5. A domain with no unstable neuron left is bounded by the LP of LP over its
//     bounds, which is exact there (every ReLU is linear): its bound proves the
//     domain, or its minimiser is a counterexample; only an LP tolerance case
//     stays open.
//
// Verified means every leaf is proven or empty; the margin is then the least
// proven bound. Unknown comes from the budget, named by Result.Reason: MaxNodes
// domains bounded (ReasonBaBNodes), MaxDomains open domains (ReasonBaBDomains:
// the open domains plus the children being bounded never exceed it, so a
// batch shrinks near the limit), Timeout per sample (ReasonTimeout), a leaf
// LP over MaxLPNonzeros (ReasonLPSize: that leaf stays open, the search goes
// on). Its margin is the least bound over the open domains (a lower bound over
// the region, as the domains cover it) and never below α-CROWN's. When the
// context ends, VerifyBatch returns its error (the caller decides what a
// deadline means), checked between bounding calls: one call, and the α-CROWN
// pass over the batch, run to their end.
//
// The network must be a chain of affine maps and ReLUs (extractLPNet); its
// weights are read off by probing, exact up to rounding.
type BaB struct {
	// SoundFP also bounds float64 rounding in every CROWN and α-CROWN bound.
	SoundFP bool
	// MaxNodes limits the domains bounded per sample (0: DefaultBaBNodes).
	MaxNodes int
	// Batch is the number of domains split per bounding call (0: DefaultBaBBatch).
	Batch int
	// Timeout limits the search of each sample (0: only the context's deadline).
	Timeout time.Duration
	// Iterations of α/β-CROWN per bounding of a batch of domains (0:
	// DefaultBaBIterations; negative: CROWN with the clamps alone, no β).
	Iterations int
	// Seed of the falsification's random starts.
	Seed uint64
	// MaxDomains limits the open domains held at once per sample (0:
	// DefaultBaBQueue, lowered on wide networks so that their bounds stay
	// under 1 GiB).
	MaxDomains int
	// MaxLPNonzeros limits the nonzeros of a leaf's LP (0: DefaultMaxLPNonzeros).
	MaxLPNonzeros int
}

// Name is "bab".
func (BaB) Name() string { return "bab" }

// Verify decides s over r (batch 1).
func (v BaB) Verify(ctx context.Context, g *nets.Graph, r Region, s bounds.Spec) (Result, error) {
	return verifyOne(ctx, v, g, r, s)
}

// VerifyBatch decides specs[i] over row i of r: α-CROWN on the whole batch, then
// falsification and branch and bound on every sample it does not verify.
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
	if v.MaxNodes < 0 || v.Batch < 0 || v.Timeout < 0 || v.MaxDomains < 0 || v.MaxLPNonzeros < 0 {
		return nil, fmt.Errorf("node limit %d, batch %d, timeout %v, domain limit %d, LP size limit %d: want ≥ 0", v.MaxNodes, v.Batch, v.Timeout, v.MaxDomains, v.MaxLPNonzeros)
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
	opt := bounds.AlphaOptions{Options: bounds.Options{SoundFP: v.SoundFP, IntermediateAlpha: DefaultAlphaIterations, Context: ctx}, Iterations: DefaultAlphaIterations, LR: DefaultAlphaLR}
	res, err := bounds.AlphaCROWN(g, bounds.Box{Lo: r.Lo, Hi: r.Hi}, specs, opt)
	if err != nil {
		return nil, err
	}
	out, err := results(g, r, specs, res.Lower)
	if err != nil {
		return nil, err
	}
	// outOfTime ends the batch when ctx has ended: the samples already decided
	// keep their answers, those from the i-th on that are not are unknown
	// ("timeout"), with what alpha-CROWN proved as their margin. The caller
	// tells a time limit from a cancellation by its own context.
	outOfTime := func(from int) ([]Result, error) {
		for j := from; j < len(out); j++ {
			if out[j].Verdict == Unknown {
				out[j].Reason = ReasonTimeout
			}
		}
		return out, nil
	}
	if ctx.Err() != nil {
		return outOfTime(0)
	}
	n := len(specs)
	per := r.Lo.Len() / n
	shape := r.Lo.Shape[1:]
	for i := range specs {
		if out[i].Verdict != Unknown {
			continue
		}
		if ctx.Err() != nil {
			return outOfTime(i)
		}
		sctx, cancel := ctx, context.CancelFunc(func() {})
		if v.Timeout > 0 {
			sctx, cancel = context.WithTimeout(ctx, v.Timeout)
		}
		xlo, xhi := r.Lo.Data[i*per:(i+1)*per], r.Hi.Data[i*per:(i+1)*per]
		cex, err := falsifySpec(sctx, g, shape, xlo, xhi, specs[i], babAttackStarts, babAttackSteps, v.Seed+uint64(i))
		switch {
		case ctx.Err() != nil:
			cancel()
			return outOfTime(i)
		case err != nil && sctx.Err() != nil: // the sample's Timeout
			cancel()
			out[i].Reason = ReasonTimeout
			continue
		case err != nil:
			cancel()
			return nil, fmt.Errorf("sample %d: falsification: %w", i, err)
		}
		if cex != nil {
			cancel()
			out[i] = Result{Verdict: Falsified, Margin: min(out[i].Margin, 0), Counterexample: cex}
			continue
		}
		lo, hi := make([][]float64, len(net.pre)), make([][]float64, len(net.pre))
		vshape := make([][]int, len(net.pre))
		for k, name := range net.pre {
			box, ok := res.Nodes[name]
			m := len(net.affine[k].b)
			if !ok || box.Lo == nil || box.Lo.Len() != n*m || box.Hi.Len() != n*m {
				cancel()
				return nil, fmt.Errorf("no bounds of %d values per sample for pre-activation %q", m, name)
			}
			lo[k] = append([]float64(nil), box.Lo.Data[i*m:(i+1)*m]...)
			hi[k] = append([]float64(nil), box.Hi.Data[i*m:(i+1)*m]...)
			vshape[k] = box.Lo.Shape[1:]
		}
		s := babSearch{
			g: g, net: net, spec: specs[i], shape: shape, vshape: vshape,
			xlo: xlo, xhi: xhi, soundFP: v.SoundFP,
			maxNodes: v.MaxNodes, batch: v.Batch, maxDomains: v.MaxDomains,
			maxLP: nonzeroLimit(v.MaxLPNonzeros),
		}
		if s.maxDomains == 0 {
			s.maxDomains = babQueueLimit(lo)
		}
		if s.maxNodes == 0 {
			s.maxNodes = DefaultBaBNodes
		}
		if s.batch == 0 {
			s.batch = DefaultBaBBatch
		}
		switch {
		case v.Iterations == 0:
			s.iterations = DefaultBaBIterations
		case v.Iterations > 0:
			s.iterations = v.Iterations
		}
		got, err := s.run(sctx, lo, hi, res.Lower[i])
		cancel()
		got.Nodes = s.nodes
		if err != nil && ctx.Err() == nil {
			return nil, fmt.Errorf("sample %d: %w", i, err)
		}
		if err == nil {
			got.Margin = max(got.Margin, out[i].Margin)
			if got.Verdict == Falsified {
				got.Margin = min(got.Margin, 0)
			}
			out[i] = got
		}
		if ctx.Err() != nil {
			return outOfTime(i)
		}
	}
	return out, nil
}

// babQueueLimit is the open-domain limit for pre-activation bounds shaped like
// lo: DefaultBaBQueue, or fewer when their bounds (two float64 and a split mark
// per neuron) would pass babQueueBytes.
func babQueueLimit(lo [][]float64) int {
	per := 0
	for _, l := range lo {
		per += 17 * len(l)
	}
	return max(1, min(DefaultBaBQueue, babQueueBytes/max(per, 1)))
}

// babDomain is one domain: its pre-activation bounds (split decisions
// included), the least bound of its open spec rows, and where to split it.
type babDomain struct {
	lo, hi [][]float64
	split  [][]int8 // +1 active, −1 inactive, 0 not split (bounds.Options.Splits)
	bound  float64
	// rows are the spec rows not yet proven (> 0) on an enclosing domain;
	// proven is the least bound of the others. A split only shrinks the
	// domain, so a row proven on a domain holds on its subdomains.
	rows   []int
	proven float64
	// layer, neuron to split next (layer < 0: no unstable neuron left).
	layer, neuron int
}

// file records the bound b of spec row row: proven when > 0, else open.
func (d *babDomain) file(row int, b float64) {
	if b > 0 {
		d.proven = min(d.proven, b)
		return
	}
	d.rows = append(d.rows, row)
	d.bound = min(d.bound, b)
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
	shape      []int   // per-sample input shape
	vshape     [][]int // per-sample shape of each pre-activation value
	xlo, xhi   []float64
	soundFP    bool
	maxNodes   int
	batch      int
	maxDomains int // open domains plus the children being bounded
	maxLP      int // nonzeros of a leaf's LP
	// lpSkipped records that a leaf's LP was over maxLP (the leaf is stuck).
	lpSkipped bool
	// ctx is run's context, which also stops a leaf's LP solve.
	ctx context.Context
	// iterations of α/β-CROWN per bounding (0: CROWN with clamps only).
	iterations int
	nodes      int
	// verifiedLB is the least bound of the verified domains' rows.
	verifiedLB float64
	// stuck is the least bound of the domains with nothing left to split whose
	// LP proved nothing (within the LP tolerance of 0).
	stuck float64
}

// babChild is a domain about to be bounded: its parent's bounds with one split.
type babChild struct {
	lo, hi [][]float64
	split  [][]int8
	rows   []int
	proven float64
	layer  int // the split layer: bounds up to it are final (the parent's, split applied)
}

// run searches from the root domain with pre-activation bounds lo, hi and the
// root's bound of every spec row.
func (s *babSearch) run(ctx context.Context, lo, hi [][]float64, rootLower []float64) (Result, error) {
	s.ctx = ctx
	s.verifiedLB, s.stuck = math.Inf(1), math.Inf(1)
	root := &babDomain{lo: lo, hi: hi, split: make([][]int8, len(lo)), bound: math.Inf(1), proven: math.Inf(1)}
	for k := range lo {
		root.split[k] = make([]int8, len(lo[k]))
	}
	for row, b := range rootLower {
		root.file(row, b)
	}
	if len(root.rows) == 0 {
		return Result{Verdict: Verified, Margin: root.proven}, nil
	}
	lambda := s.backward(lo, hi, s.worstRow(root.rows, rootLower))
	root.layer, root.neuron = s.branch(lo, hi, lambda)
	q := &babQueue{}
	if res, err := s.settle(root, q); err != nil || res != nil {
		return deref(res), err
	}
	reason := "" // the budget that ended the search
	for q.Len() > 0 {
		if s.nodes >= s.maxNodes {
			reason = ReasonBaBNodes
		}
		if q.Len() >= s.maxDomains { // no room for one more child
			reason = ReasonBaBDomains
		}
		if ctx.Err() != nil {
			reason = ReasonTimeout
		}
		if reason != "" {
			break
		}
		// The least bound of the open domains: a lower bound over the region
		// while their children are bounded (a child's CROWN bound may fall
		// below its parent's, but the parent's still holds on it).
		lb := min((*q)[0].bound, s.stuck)
		var children []babChild
		// Splitting one domain replaces it by two: the live domains (queue
		// plus children) grow by one, and must stay within maxDomains.
		for len(children) < 2*s.batch && q.Len() > 0 && q.Len()+len(children) < s.maxDomains {
			d := heap.Pop(q).(*babDomain)
			k, o := d.layer, d.neuron
			for _, active := range []bool{true, false} {
				c := babChild{lo: cloneBounds(d.lo), hi: cloneBounds(d.hi), split: make([][]int8, len(d.split)), rows: d.rows, proven: d.proven, layer: k}
				copy(c.split, d.split)
				c.split[k] = append([]int8(nil), d.split[k]...)
				if active {
					c.lo[k][o], c.split[k][o] = 0, 1
				} else {
					c.hi[k][o], c.split[k][o] = 0, -1
				}
				children = append(children, c)
			}
		}
		res, err := s.boundChildren(children, q)
		if err != nil && ctx.Err() != nil {
			// The time ran out while the children were bounded: lb still
			// bounds every open domain, theirs included.
			return Result{Verdict: Unknown, Margin: min(lb, s.verifiedLB), Reason: ReasonTimeout}, nil
		}
		if err != nil {
			return Result{}, err
		}
		if res != nil {
			res.Margin = min(res.Margin, lb)
			return *res, nil
		}
	}
	if q.Len() == 0 && math.IsInf(s.stuck, 1) {
		if math.IsInf(s.verifiedLB, 1) {
			// Every leaf empty: only possible when the region itself is
			// empty, or from rounding; prove nothing.
			return Result{Verdict: Unknown, Margin: math.Inf(-1)}, nil
		}
		return Result{Verdict: Verified, Margin: s.verifiedLB}, nil
	}
	m := min(s.stuck, s.verifiedLB)
	for _, d := range *q {
		m = min(m, d.bound)
	}
	if reason == "" && s.lpSkipped {
		reason = ReasonLPSize
	}
	return Result{Verdict: Unknown, Margin: m, Reason: reason}, nil
}

// settle files a bounded domain: verified domains update verifiedLB, domains
// with a split left go to q, and the others get the LP; a counterexample ends
// the search.
func (s *babSearch) settle(d *babDomain, q *babQueue) (*Result, error) {
	if len(d.rows) == 0 {
		s.verifiedLB = min(s.verifiedLB, d.proven)
		return nil, nil
	}
	if d.layer >= 0 {
		heap.Push(q, d)
		return nil, nil
	}
	return s.exactLP(d)
}

// worstRow returns the row of rows with the least bound.
func (s *babSearch) worstRow(rows []int, lower []float64) int {
	best, arg := math.Inf(1), rows[0]
	for _, row := range rows {
		if lower[row] < best {
			best, arg = lower[row], row
		}
	}
	return arg
}

// boundChildren bounds the children in one CROWN batch and files each.
func (s *babSearch) boundChildren(children []babChild, q *babQueue) (*Result, error) {
	n := len(children)
	s.nodes += n
	per := len(s.xlo)
	inShape := append([]int{n}, s.shape...)
	in := bounds.Box{Lo: nets.NewTensor(inShape...), Hi: nets.NewTensor(inShape...)}
	for i := 0; i < n; i++ {
		copy(in.Lo.Data[i*per:], s.xlo)
		copy(in.Hi.Data[i*per:], s.xhi)
	}
	opt := bounds.Options{SoundFP: s.soundFP, Context: s.ctx, Clamp: map[string]bounds.Box{}, Fixed: map[string][]bool{}, Splits: map[string][]int8{}}
	for k, name := range s.net.pre {
		m := len(s.net.affine[k].b)
		vs := append([]int{n}, s.vshape[k]...)
		c := bounds.Box{Lo: nets.NewTensor(vs...), Hi: nets.NewTensor(vs...)}
		fixed, split := make([]bool, n), make([]int8, n*m)
		for i, ch := range children {
			copy(c.Lo.Data[i*m:(i+1)*m], ch.lo[k])
			copy(c.Hi.Data[i*m:(i+1)*m], ch.hi[k])
			copy(split[i*m:(i+1)*m], ch.split[k])
			fixed[i] = k <= ch.layer
		}
		opt.Clamp[name], opt.Fixed[name], opt.Splits[name] = c, fixed, split
	}
	specs := make([]bounds.Spec, n)
	for i, ch := range children {
		for _, row := range ch.rows {
			specs[i].C = append(specs[i].C, s.spec.C[row])
			specs[i].D = append(specs[i].D, s.spec.D[row])
		}
	}
	var res *bounds.Result
	var err error
	if s.iterations > 0 {
		res, err = bounds.AlphaCROWN(s.g, in, specs, bounds.AlphaOptions{Options: opt, Iterations: s.iterations, LR: DefaultAlphaLR})
	} else {
		res, err = bounds.CROWN(s.g, in, specs, opt)
	}
	if err != nil {
		return nil, fmt.Errorf("bounding %d domains: %w", n, err)
	}
	var open []*babDomain
	var points [][]float64
	for i, ch := range children {
		d := &babDomain{lo: make([][]float64, len(s.net.pre)), hi: make([][]float64, len(s.net.pre)), split: ch.split, bound: math.Inf(1), proven: ch.proven}
		empty := false
		for k, name := range s.net.pre {
			m := len(s.net.affine[k].b)
			box := res.Nodes[name]
			d.lo[k] = append([]float64(nil), box.Lo.Data[i*m:(i+1)*m]...)
			d.hi[k] = append([]float64(nil), box.Hi.Data[i*m:(i+1)*m]...)
			for o, l := range d.lo[k] {
				// With SoundFP the bounds are rigorous and any crossing is
				// real; without, a crossing within rounding is not proof.
				h := d.hi[k][o]
				if tol := emptyTol(s.soundFP, l, h); l > h+tol {
					empty = true
				}
			}
		}
		if empty {
			continue // no input reaches this domain
		}
		lower := make([]float64, len(s.spec.C))
		for j, row := range ch.rows {
			lower[row] = res.Lower[i][j]
			d.file(row, lower[row])
		}
		if len(d.rows) == 0 {
			s.verifiedLB = min(s.verifiedLB, d.proven)
			continue
		}
		lambda := s.backward(d.lo, d.hi, s.worstRow(d.rows, lower))
		d.layer, d.neuron = s.branch(d.lo, d.hi, lambda)
		open = append(open, d)
		points = append(points, s.corner(lambda[0]))
	}
	if len(open) == 0 {
		return nil, nil
	}
	// The corners that minimise the CROWN bounds: cheap candidate
	// counterexamples.
	x := nets.NewTensor(append([]int{len(points)}, s.shape...)...)
	for i, p := range points {
		copy(x.Data[i*per:], p)
	}
	y, err := s.g.Logits(x)
	if err != nil {
		return nil, fmt.Errorf("evaluating candidate counterexamples: %w", err)
	}
	outs := y.Len() / len(points)
	for i := range points {
		val, err := specValue(s.spec, y.Data[i*outs:(i+1)*outs])
		if err != nil {
			return nil, err
		}
		if val <= 0 {
			cex := nets.FromData(points[i], append([]int{1}, s.shape...)...)
			return &Result{Verdict: Falsified, Margin: min(open[i].bound, 0), Counterexample: cex}, nil
		}
	}
	for _, d := range open {
		if res, err := s.settle(d, q); err != nil || res != nil {
			return res, err
		}
	}
	return nil, nil
}

// backward propagates the spec row's coefficient backwards through the relaxed
// network with CROWN's lines on the bounds lo, hi. It returns, per ReLU layer
// k, the coefficient λ of its output h_k (index k+1), and at index 0 the
// coefficient of the input x.
func (s *babSearch) backward(lo, hi [][]float64, row int) [][]float64 {
	K := len(s.net.pre)
	lambda := make([][]float64, K+1)
	a := s.spec.C[row]
	for k := K; k >= 0; k-- {
		aff := s.net.affine[k]
		next := make([]float64, aff.in)
		for o, c := range a {
			if c == 0 {
				continue
			}
			w := aff.W[o*aff.in : (o+1)*aff.in]
			for j, wv := range w {
				next[j] += c * wv
			}
		}
		if k == 0 {
			lambda[0] = next
			break
		}
		lambda[k] = next
		// Through ReLU layer k−1: the coefficient of z is λ·slope.
		mu := make([]float64, len(next))
		for j, l := range next {
			lj, uj := lo[k-1][j], hi[k-1][j]
			switch {
			case uj <= 0:
			case lj >= 0:
				mu[j] = l
			case l < 0:
				mu[j] = l * uj / (uj - lj)
			case uj >= -lj:
				mu[j] = l
			}
		}
		a = mu
	}
	return lambda
}

// corner returns the point of the input box that minimises λ·x.
func (s *babSearch) corner(lambda []float64) []float64 {
	x := make([]float64, len(s.xlo))
	for i, l := range lambda {
		if l > 0 {
			x[i] = s.xlo[i]
		} else if l < 0 {
			x[i] = s.xhi[i]
		} else {
			x[i] = s.xlo[i] + (s.xhi[i]-s.xlo[i])/2
		}
	}
	return x
}

// branch picks the unstable neuron whose relaxation costs the bound most under
// the coefficients λ (see BaB), or the widest triangle when every cost is 0.
// It returns −1, −1 when no neuron is unstable.
func (s *babSearch) branch(lo, hi [][]float64, lambda [][]float64) (int, int) {
	bk, bo, best := -1, -1, 0.0
	wk, wo, widest := -1, -1, -1.0
	for k := range lo {
		for o := range lo[k] {
			l, u := lo[k][o], hi[k][o]
			if !(l < 0 && u > 0) {
				continue
			}
			tri := u * -l / (u - l)
			if tri > widest {
				wk, wo, widest = k, o, tri
			}
			lam := lambda[k+1][o]
			score := -lam * tri
			if lam > 0 {
				score = lam * min(u, -l) / 2
			}
			if score > best {
				bk, bo, best = k, o, score
			}
		}
	}
	if bk >= 0 {
		return bk, bo
	}
	return wk, wo
}

// exactLP bounds the open rows of a domain without unstable neurons by the LP
// over its bounds, which is the network itself there: rows it proves are
// proven; else its minimiser is a counterexample, or (within the LP tolerance)
// the domain stays open as stuck.
//
// A leaf whose LP has more than maxLP nonzeros is left stuck at its CROWN bound
// without building the LP, and the search reports ReasonLPSize if it ends open.
func (s *babSearch) exactLP(d *babDomain) (*Result, error) {
	K := len(s.net.pre)
	if relaxSize(s.net, len(s.xlo), d.lo, d.hi, K, false).Nonzeros > s.maxLP {
		s.lpSkipped = true
		s.stuck = min(s.stuck, d.bound)
		return nil, nil
	}
	ctx := s.ctx
	if ctx == nil { // a search not started by run
		ctx = context.Background()
	}
	relax := buildRelax(s.net, s.xlo, s.xhi, d.lo, d.hi, K, false)
	solver := lp.New()
	defer solver.Close()
	if err := solver.Load(relax.p); err != nil {
		return nil, relaxError("loading a leaf's LP", err)
	}
	last := s.net.affine[K]
	obj := make([]float64, relax.p.NumCols())
	worst := math.Inf(1)
	for _, row := range d.rows {
		clear(obj)
		konst := s.spec.D[row]
		for j, cj := range s.spec.C[row] {
			if cj == 0 {
				continue
			}
			konst += cj * last.b[j]
			for o, wv := range last.W[j*last.in : (j+1)*last.in] {
				obj[relax.base+o] += cj * wv
			}
		}
		b, x, err := relax.minimise(ctx, solver, obj, konst)
		if err != nil && ctx.Err() != nil {
			// The search's time ran out during the solve: the leaf stays
			// open at its bound, and run ends with reason timeout.
			s.stuck = min(s.stuck, d.bound)
			return nil, nil
		}
		if err != nil {
			return nil, relaxError(fmt.Sprintf("a leaf's spec row %d", row), err)
		}
		if b > 0 {
			d.proven = min(d.proven, b)
			continue
		}
		worst = min(worst, b)
		if x != nil {
			xin := make([]float64, len(s.xlo))
			for i := range xin {
				xin[i] = min(max(x[i], s.xlo[i]), s.xhi[i])
			}
			cex := nets.FromData(xin, append([]int{1}, s.shape...)...)
			bad, err := violates(s.g, s.spec, cex)
			if err != nil {
				return nil, err
			}
			if bad {
				return &Result{Verdict: Falsified, Margin: min(worst, 0), Counterexample: cex}, nil
			}
		}
	}
	if math.IsInf(worst, 1) {
		s.verifiedLB = min(s.verifiedLB, d.proven)
		return nil, nil
	}
	s.stuck = min(s.stuck, worst)
	return nil, nil
}

// emptyTol is how far a domain's bounds l > h must cross to prove it empty.
func emptyTol(soundFP bool, l, h float64) float64 {
	if soundFP {
		return 0
	}
	return 1e-9 * (1 + math.Abs(l) + math.Abs(h))
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
