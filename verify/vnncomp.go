package verify

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/certify-dev/certify/bounds"
	"github.com/certify-dev/certify/nets"
)

// Outcome is a VNN-COMP answer about a Property.
type Outcome int

const (
	// OutcomeUnknown: neither proved nor disproved within the effort allowed.
	OutcomeUnknown Outcome = iota
	// OutcomeSat: a counterexample was found and re-checked by evaluating the
	// network (Decision.X, Decision.Y).
	OutcomeSat
	// OutcomeUnsat: the unsafe set was proved empty by sound bounds.
	OutcomeUnsat
	// OutcomeTimeout: the context ended before an answer.
	OutcomeTimeout
)

// String is the VNN-COMP spelling: sat, unsat, unknown, timeout.
func (o Outcome) String() string {
	switch o {
	case OutcomeUnknown:
		return "unknown"
	case OutcomeSat:
		return "sat"
	case OutcomeUnsat:
		return "unsat"
	case OutcomeTimeout:
		return "timeout"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// Decision is the answer of Decide.
type Decision struct {
	Outcome Outcome
	// X (flat input) and Y (flat output, as evaluated in float64) of the
	// counterexample when Sat.
	X, Y []float64
}

// DecideOptions tune Decide. The zero value is usable.
type DecideOptions struct {
	// Starts is the number of PGD starting points per open conjunct and round (0: 8).
	Starts int
	// Steps of each PGD run (0: 40).
	Steps int
	// Rounds of PGD before and after the bound proofs (0: 4).
	Rounds int
	// MaxSplitDims: input splitting is used when at most this many inputs have a
	// non-zero width (0: 16); above, only the bounds over the whole box are tried.
	MaxSplitDims int
	// MaxBoxes bounds the number of sub-boxes input splitting may queue (0: 200000).
	MaxBoxes int
	// Seed of the random starting points.
	Seed uint64
}

func (o DecideOptions) withDefaults() DecideOptions {
	if o.Starts <= 0 {
		o.Starts = 8
	}
	if o.Steps <= 0 {
		o.Steps = 40
	}
	if o.Rounds <= 0 {
		o.Rounds = 4
	}
	if o.MaxSplitDims <= 0 {
		o.MaxSplitDims = 16
	}
	if o.MaxBoxes <= 0 {
		o.MaxBoxes = 200000
	}
	return o
}

// Decide answers a VNN-COMP property about g:
//
//   - sat: a point of some case's box found by evaluating the box centre, random
//     points and projected gradient ascent (Madry et al., ICLR 2018) on the least
//     satisfied halfspace of a conjunct, and re-checked by a plain forward pass:
//     inside the box, every halfspace of the conjunct satisfied;
//   - unsat: for every case and conjunct, some halfspace C·y + D ≥ 0 has a proven
//     upper bound below 0 over the box, i.e. a proven lower bound of −C·y − D
//     above 0, by CROWN and alpha-CROWN with float rounding accounted for
//     (bounds.Options.SoundFP); for networks with few inputs the box is split
//     along its widest side until every piece is proven (input-space branch and
//     bound, as in ReluVal, Wang et al., USENIX Security 2018);
//   - timeout when ctx ends first, unknown when the effort of opt is spent.
//
// It never answers unsat without a proof nor sat without a re-checked point.
// Errors are for properties that do not fit the network and networks the
// bounds cannot handle.
func Decide(ctx context.Context, g *nets.Graph, p *Property, opt DecideOptions) (Decision, error) {
	opt = opt.withDefaults()
	if g == nil || p == nil {
		return Decision{}, errors.New("decide: no graph or property")
	}
	shape, err := g.InputShape()
	if err != nil {
		return Decision{}, fmt.Errorf("decide: %w", err)
	}
	for _, s := range shape {
		if s <= 0 {
			return Decision{}, fmt.Errorf("decide: input shape %v has a free dimension besides the batch", shape)
		}
	}
	if n := nets.NumElements(shape); n != p.NumInputs {
		return Decision{}, fmt.Errorf("decide: the property has %d inputs, the network input shape %v holds %d", p.NumInputs, shape, n)
	}
	d := &decider{ctx: ctx, g: g, p: p, shape: shape, opt: opt, rng: rand.New(rand.NewPCG(opt.Seed, 0x766e6e)), chunk: 64}
	// Models exported with a fixed batch (often 1) are bounded that many boxes
	// at a time, as bounds checks the declared batch.
	for _, vi := range g.Inputs {
		if _, isParam := g.Params[vi.Name]; !isParam && len(vi.Shape) > 0 && vi.Shape[0] > 0 {
			d.chunk = vi.Shape[0]
		}
	}

	// Open (case, conjunct) pairs: those not yet proven empty.
	var open []item
	for c, cs := range p.Cases {
		for k := range cs.Out {
			open = append(open, item{c: c, k: k, lo: cs.Lo, hi: cs.Hi})
		}
	}
	if len(open) == 0 {
		return Decision{Outcome: OutcomeUnsat}, nil
	}
	// Cheap falsification first: centres and random points.
	if dec, err := d.sample(open, 16); err != nil || dec.Outcome == OutcomeSat {
		return dec, err
	}
	// Proofs over the whole boxes.
	if open, err = d.prove(open, false); err != nil {
		return Decision{}, err
	}
	if len(open) > 0 && d.ctx.Err() == nil {
		if open, err = d.prove(open, true); err != nil {
			return Decision{}, err
		}
	}
	if len(open) == 0 {
		return Decision{Outcome: OutcomeUnsat}, nil
	}
	if dec, err := d.pgd(open, opt.Rounds); err != nil || dec.Outcome != OutcomeUnknown {
		return dec, err
	}
	if d.splittable(open) {
		dec, err := d.split(open)
		if err != nil || dec.Outcome != OutcomeUnknown {
			return dec, err
		}
	} else {
		dec, err := d.bab(open)
		if err != nil || dec.Outcome != OutcomeUnknown {
			return dec, err
		}
	}
	if ctx.Err() != nil {
		return Decision{Outcome: OutcomeTimeout}, nil
	}
	return Decision{Outcome: OutcomeUnknown}, nil
}

// item is one conjunct k of case c over a sub-box of the case's box.
type item struct {
	c, k   int
	lo, hi []float64
}

type decider struct {
	ctx   context.Context
	g     *nets.Graph
	p     *Property
	shape []int
	opt   DecideOptions
	rng   *rand.Rand
	chunk int // boxes per bounds call
}

// batch stacks flat inputs into a tensor [n, shape...].
func (d *decider) batch(xs [][]float64) *nets.Tensor {
	per := d.p.NumInputs
	t := nets.NewTensor(append([]int{len(xs)}, d.shape...)...)
	for i, x := range xs {
		copy(t.Data[i*per:(i+1)*per], x)
	}
	return t
}

// outputs evaluates the network on flat inputs: one flat output per input.
func (d *decider) outputs(xs [][]float64) ([][]float64, error) {
	y, err := d.g.Logits(d.batch(xs))
	if err != nil {
		return nil, fmt.Errorf("decide: evaluating the network: %w", err)
	}
	per := y.Len() / len(xs)
	if per != d.p.NumOutputs {
		return nil, fmt.Errorf("decide: the network has %d outputs, the property %d", per, d.p.NumOutputs)
	}
	out := make([][]float64, len(xs))
	for i := range xs {
		out[i] = y.Data[i*per : (i+1)*per]
	}
	return out, nil
}

// check evaluates candidate points xs[i] for items its[i]; it returns a Sat
// decision for the first that lies in its case's box and satisfies its conjunct.
func (d *decider) check(its []item, xs [][]float64) (Decision, error) {
	ys, err := d.outputs(xs)
	if err != nil {
		return Decision{}, err
	}
	for i, it := range its {
		cs := d.p.Cases[it.c]
		if inBox(xs[i], cs.Lo, cs.Hi) && cs.Out[it.k].Holds(ys[i]) {
			return Decision{Outcome: OutcomeSat, X: append([]float64(nil), xs[i]...), Y: append([]float64(nil), ys[i]...)}, nil
		}
	}
	return Decision{}, nil
}

func inBox(x, lo, hi []float64) bool {
	for i, v := range x {
		if !(v >= lo[i] && v <= hi[i]) {
			return false
		}
	}
	return true
}

// sample checks the centre and n random points of every item's box.
func (d *decider) sample(open []item, n int) (Decision, error) {
	var its []item
	var xs [][]float64
	for _, it := range open {
		for s := 0; s <= n; s++ {
			x := make([]float64, len(it.lo))
			for i := range x {
				if s == 0 {
					x[i] = it.lo[i] + (it.hi[i]-it.lo[i])/2
				} else {
					x[i] = it.lo[i] + (it.hi[i]-it.lo[i])*d.rng.Float64()
				}
				x[i] = math.Min(math.Max(x[i], it.lo[i]), it.hi[i])
			}
			its, xs = append(its, it), append(xs, x)
		}
	}
	for s := 0; s < len(xs); s += 256 {
		e := min(s+256, len(xs))
		if dec, err := d.check(its[s:e], xs[s:e]); err != nil || dec.Outcome == OutcomeSat {
			return dec, err
		}
	}
	return Decision{}, nil
}

// prove bounds the items in batches and returns those not proven empty. An item
// is empty when some halfspace h of its conjunct has a proven lower bound of
// −(C·y + D) above 0 over its box: the spec rows are the negated halfspaces, and
// one positive row suffices (not all, as for Verified).
func (d *decider) prove(open []item, alpha bool) ([]item, error) {
	var rest []item
	chunk := d.chunk
	for s := 0; s < len(open); s += chunk {
		if d.ctx.Err() != nil {
			return append(rest, open[s:]...), nil
		}
		part := open[s:min(s+chunk, len(open))]
		var rows, specs = 0, make([]bounds.Spec, len(part))
		los, his := make([][]float64, len(part)), make([][]float64, len(part))
		for i, it := range part {
			for _, h := range d.p.Cases[it.c].Out[it.k] {
				c := make([]float64, len(h.C))
				for j, v := range h.C {
					c[j] = -v
				}
				specs[i].C = append(specs[i].C, c)
				specs[i].D = append(specs[i].D, -h.D)
			}
			rows = max(rows, len(specs[i].C))
			los[i], his[i] = it.lo, it.hi
		}
		if rows == 0 { // no item has a halfspace to refute
			rest = append(rest, part...)
			continue
		}
		// bounds wants the same number of rows in every sample: pad with a
		// copy of the sample's first row (or, for an empty conjunct, a row
		// 0·y − 1, never positive).
		for i := range specs {
			for len(specs[i].C) < rows {
				if len(specs[i].C) == 0 {
					specs[i].C = append(specs[i].C, make([]float64, d.p.NumOutputs))
					specs[i].D = append(specs[i].D, -1)
					continue
				}
				specs[i].C = append(specs[i].C, specs[i].C[0])
				specs[i].D = append(specs[i].D, specs[i].D[0])
			}
		}
		box := bounds.Box{Lo: d.batch(los), Hi: d.batch(his)}
		var res *bounds.Result
		var err error
		if alpha {
			res, err = bounds.AlphaCROWN(d.g, box, specs, bounds.AlphaOptions{
				Options: bounds.Options{SoundFP: true}, Iterations: DefaultAlphaIterations, LR: DefaultAlphaLR})
		} else {
			res, err = bounds.CROWN(d.g, box, specs, bounds.Options{SoundFP: true})
		}
		if err != nil {
			return nil, fmt.Errorf("decide: bounding: %w", err)
		}
		for i, it := range part {
			proven := false
			for _, l := range res.Lower[i] {
				if l > 0 {
					proven = true
				}
			}
			if !proven {
				rest = append(rest, it)
			}
		}
	}
	return rest, nil
}

// violation is the nets.Loss of PGD: for sample i, the least slack
// min_h (C_h·y + D_h) of the halfspaces of conjunct conj[i]; it is ≥ 0 at a
// counterexample. Its gradient is that of the minimising halfspace, C_h. The
// labels given to Eval index conj.
type violation struct {
	conj []Conjunct
}

func (v violation) Eval(logits *nets.Tensor, labels []int) ([]float64, *nets.Tensor, error) {
	n := len(labels)
	if n == 0 || logits.Len()%n != 0 {
		return nil, nil, fmt.Errorf("violation loss: %d outputs for %d samples", logits.Len(), n)
	}
	per := logits.Len() / n
	vals := make([]float64, n)
	grad := nets.NewTensor(logits.Shape...)
	for i, l := range labels {
		if l < 0 || l >= len(v.conj) {
			return nil, nil, fmt.Errorf("violation loss: conjunct %d of %d", l, len(v.conj))
		}
		y := logits.Data[i*per : (i+1)*per]
		best, arg := math.Inf(1), -1
		for k, h := range v.conj[l] {
			if len(h.C) != per {
				return nil, nil, fmt.Errorf("violation loss: halfspace over %d outputs, network has %d", len(h.C), per)
			}
			s := h.D
			for j, c := range h.C {
				s += c * y[j]
			}
			if s < best {
				best, arg = s, k
			}
		}
		if arg < 0 {
			vals[i] = 1 // an empty conjunct: every point is a counterexample
			continue
		}
		vals[i] = best
		copy(grad.Data[i*per:(i+1)*per], v.conj[l][arg].C)
	}
	return vals, grad, nil
}

// pgd runs rounds of projected signed-gradient ascent (boxAscent) of the
// violation loss from random points of the items' boxes (the first round also
// from the centres), each iterate re-checked as a counterexample when its loss
// says so.
func (d *decider) pgd(open []item, rounds int) (Decision, error) {
	conj := make([]Conjunct, len(open))
	for i, it := range open {
		conj[i] = d.p.Cases[it.c].Out[it.k]
	}
	for r := 0; r < rounds; r++ {
		var its []item
		var xs, los, his [][]float64
		var labels []int
		for i, it := range open {
			for s := 0; s < d.opt.Starts; s++ {
				x := make([]float64, len(it.lo))
				for j := range x {
					t := d.rng.Float64()
					if r == 0 && s == 0 {
						t = 0.5
					}
					x[j] = math.Min(math.Max(it.lo[j]+(it.hi[j]-it.lo[j])*t, it.lo[j]), it.hi[j])
				}
				its, xs, labels = append(its, it), append(xs, x), append(labels, i)
				los, his = append(los, it.lo), append(his, it.hi)
			}
		}
		var dec Decision
		a := boxAscent{g: d.g, shape: d.shape, loss: violation{conj: conj}, steps: d.opt.Steps, lo: los, hi: his, labels: labels,
			check: func(cand []int, xs [][]float64) (bool, error) {
				ci, cx := make([]item, len(cand)), make([][]float64, len(cand))
				for t, i := range cand {
					ci[t], cx[t] = its[i], xs[i]
				}
				var err error
				dec, err = d.check(ci, cx)
				return dec.Outcome == OutcomeSat, err
			}}
		done, err := a.run(d.ctx, xs)
		switch {
		case d.ctx.Err() != nil:
			return Decision{Outcome: OutcomeTimeout}, nil
		case err != nil:
			return Decision{}, fmt.Errorf("decide: %w", err)
		case done:
			return dec, nil
		}
	}
	return Decision{}, nil
}

// bab runs branch and bound over ReLU splits (BaB, with float rounding
// bounded) on the open items, one after the other, until ctx ends: an item
// whose conjunct is one halfspace C·y + D ≥ 0 is proven empty when BaB
// verifies −C·y − D > 0 over its box, and a BaB counterexample is re-checked
// as a sat point. Items with several halfspaces, and networks that are not a
// chain of affine maps and ReLUs, are left open. It returns Unsat when every
// item is proven.
func (d *decider) bab(open []item) (Decision, error) {
	g, ok := freeBatch(d.g, d.shape)
	if !ok {
		return Decision{}, nil // BaB bounds many domains per call: it needs a free batch
	}
	remaining := 0
	for _, it := range open {
		conj := d.p.Cases[it.c].Out[it.k]
		if len(conj) != 1 {
			remaining++
			continue
		}
		if d.ctx.Err() != nil {
			return Decision{Outcome: OutcomeTimeout}, nil
		}
		h := conj[0]
		c := make([]float64, len(h.C))
		for j, v := range h.C {
			c[j] = -v
		}
		spec := bounds.Spec{C: [][]float64{c}, D: []float64{-h.D}}
		in := append([]int{1}, d.shape...)
		r := Region{Lo: nets.FromData(append([]float64(nil), it.lo...), in...), Hi: nets.FromData(append([]float64(nil), it.hi...), in...)}
		res, err := BaB{SoundFP: true, Seed: d.opt.Seed}.Verify(d.ctx, g, r, spec)
		if errors.Is(err, bounds.ErrUnsupported) {
			return Decision{}, nil
		}
		if err != nil {
			if d.ctx.Err() != nil {
				return Decision{Outcome: OutcomeTimeout}, nil
			}
			return Decision{}, fmt.Errorf("decide: branch and bound: %w", err)
		}
		if res.Verdict == Unknown && d.ctx.Err() != nil { // BaB keeps its answer when time runs out
			return Decision{Outcome: OutcomeTimeout}, nil
		}
		switch res.Verdict {
		case Verified:
			continue
		case Falsified:
			dec, err := d.check([]item{it}, [][]float64{res.Counterexample.Data})
			if err != nil || dec.Outcome == OutcomeSat {
				return dec, err
			}
		}
		remaining++
	}
	if remaining == 0 {
		return Decision{Outcome: OutcomeUnsat}, nil
	}
	return Decision{}, nil
}

// freeBatch returns g with a free batch dimension when its input declares a
// fixed one (models exported for a batch of 1) and the graph evaluates a batch
// of two points exactly as it does each alone; BaB bounds many domains per call.
func freeBatch(g *nets.Graph, shape []int) (*nets.Graph, bool) {
	var in int = -1
	for i, vi := range g.Inputs {
		if _, isParam := g.Params[vi.Name]; !isParam {
			in = i
		}
	}
	if in < 0 || len(g.Inputs[in].Shape) == 0 {
		return nil, false
	}
	if g.Inputs[in].Shape[0] < 0 {
		return g, true
	}
	free := *g
	free.Inputs = append([]nets.ValueInfo(nil), g.Inputs...)
	free.Inputs[in].Shape = append([]int{-1}, g.Inputs[in].Shape[1:]...)
	n := nets.NumElements(shape)
	two := nets.NewTensor(append([]int{2}, shape...)...)
	for i := range two.Data {
		two.Data[i] = float64(i%7) / 7
	}
	y2, err := free.Logits(two)
	if err != nil {
		return nil, false
	}
	for row := 0; row < 2; row++ {
		y, err := g.Logits(nets.FromData(append([]float64(nil), two.Data[row*n:(row+1)*n]...), append([]int{1}, shape...)...))
		if err != nil || y2.Len() != 2*y.Len() {
			return nil, false
		}
		for j, v := range y.Data {
			if y2.Data[row*y.Len()+j] != v {
				return nil, false
			}
		}
	}
	return &free, true
}

// splittable reports whether every open item has few enough inputs of non-zero
// width for input splitting to be worth it.
func (d *decider) splittable(open []item) bool {
	for _, it := range open {
		n := 0
		for j := range it.lo {
			if it.hi[j] > it.lo[j] {
				n++
			}
		}
		if n > d.opt.MaxSplitDims {
			return false
		}
	}
	return true
}

// split is input-space branch and bound: each unproven item's box is halved
// along its widest side, the halves' centres are checked as counterexamples and
// the halves bounded by CROWN, until every piece is proven (unsat), a
// counterexample turns up (sat), the queue outgrows MaxBoxes (unknown) or ctx
// ends (timeout). The halves cover the box exactly, so proving all pieces proves
// the box.
func (d *decider) split(open []item) (Decision, error) {
	queue := open
	for len(queue) > 0 {
		if d.ctx.Err() != nil {
			return Decision{Outcome: OutcomeTimeout}, nil
		}
		if len(queue) > d.opt.MaxBoxes {
			return Decision{}, nil
		}
		// Depth first on the most recent pieces keeps the queue small.
		n := min(len(queue), 256)
		batch := queue[len(queue)-n:]
		queue = queue[:len(queue)-n]
		var halves []item
		for _, it := range batch {
			j, w := 0, -1.0
			for t := range it.lo {
				if it.hi[t]-it.lo[t] > w {
					j, w = t, it.hi[t]-it.lo[t]
				}
			}
			mid := it.lo[j] + w/2
			if !(mid > it.lo[j] && mid < it.hi[j]) {
				return Decision{}, nil // cannot split further: give up
			}
			a, b := it, it
			a.hi = append([]float64(nil), it.hi...)
			a.hi[j] = mid
			b.lo = append([]float64(nil), it.lo...)
			b.lo[j] = mid
			halves = append(halves, a, b)
		}
		xs := make([][]float64, len(halves))
		for i, h := range halves {
			xs[i] = make([]float64, len(h.lo))
			for j := range h.lo {
				xs[i][j] = h.lo[j] + (h.hi[j]-h.lo[j])/2
			}
		}
		if dec, err := d.check(halves, xs); err != nil || dec.Outcome == OutcomeSat {
			return dec, err
		}
		rest, err := d.prove(halves, false)
		if err != nil {
			return Decision{}, err
		}
		queue = append(queue, rest...)
	}
	return Decision{Outcome: OutcomeUnsat}, nil // every piece proven
}
