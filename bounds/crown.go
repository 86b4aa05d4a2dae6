package bounds

import (
	"fmt"
	"math"
	"runtime"

	"github.com/certify-dev/certify/nets"
)

// Result holds proven lower bounds of a batch of specs.
type Result struct {
	Lower [][]float64    // [sample][spec row]: proven lower bound of (C·y + D)_row
	Nodes map[string]Box // the intermediate bounds that were used
}

// CROWN bounds every row of C·y + D from below over the input box, for each sample
// of the batch with its own spec (specs[i] for sample i), by backward linear bound
// propagation (Zhang, Weng, Chen, Hsieh, Daniel, "Efficient Neural Network
// Robustness Certification with General Activation Functions", NeurIPS 2018; with
// ReLU it is DeepPoly's back-substitution, Singh, Gehr, Püschel, Vechev, POPL 2019).
//
// Starting from the coefficient C at the output, every node, in reverse topological
// order, maps the coefficient of its output to its inputs: exactly for linear ops,
// through a lower or upper linear relaxation for nonlinear ones (chosen per element
// by the coefficient's sign), the relaxations' intercepts and the biases gathering in
// a constant term. At the input box the linear function is minimised in closed form,
// Σ a_j·mid_j − |a_j|·rad_j + constant. Where a value is read by several nodes
// (residual connections) the coefficients from all its readers are added before it
// is propagated further. All samples and spec rows of a batch go through each node in
// one call: the coefficient tensor is [samples, rows, …node shape].
//
// The relaxations need bounds on the inputs of the nonlinearities. They are
// computed in topological order: first IBP, then, for the neurons whose relaxation
// is not exact (unstable ReLUs; all neurons of sigmoid, tanh and MaxPool inputs), by
// CROWN itself, backward from that value with the rows ±e_j, and the two are
// intersected (Zhang et al., "Towards Stable and Efficient Training of Verifiably
// Robust Neural Networks", ICLR 2020: on IBP-trained networks CROWN alone can be
// looser than IBP). Values that are an affine image of the input box through a
// single linear layer keep their IBP bounds, which are then exact. Later nodes' IBP
// bounds start from the tightened ones. The final bound is the larger of CROWN's and
// SpecIBP's per row, so it is never below IBP's.
//
// With opt.SoundFP every bound also holds under floating-point rounding (fp.go), for
// the exact network, its float64 evaluation, and the float64 evaluation of C·y + D.
//
// Errors name the node and op that CROWN cannot relax (ErrUnsupported: Softmax, the
// product of two bounded tensors, …; IBP may still bound them).
func CROWN(g *nets.Graph, in Box, specs []Spec, opt Options) (*Result, error) {
	ibp, err := SpecIBP(g, in, specs, opt)
	if err != nil {
		return nil, err
	}
	e, err := newEngine(g, in, opt, true)
	if err != nil {
		return nil, err
	}
	lower, err := e.crownLower(specs)
	if err != nil {
		return nil, err
	}
	if !opt.PlainCROWN {
		maxInto(lower, ibp.Lower)
	}
	return &Result{Lower: lower, Nodes: e.boxes}, nil
}

// maxInto sets dst to the larger of dst and src per entry.
func maxInto(dst, src [][]float64) {
	for i := range dst {
		for r, v := range src[i] {
			if v > dst[i][r] || math.IsNaN(dst[i][r]) {
				dst[i][r] = v
			}
		}
	}
}

// checkSpecs validates one spec per sample against the output size.
func (e *engine) checkSpecs(specs []Spec) error {
	if len(specs) != e.n {
		return fmt.Errorf("%d specs for a batch of %d", len(specs), e.n)
	}
	s := e.per(e.plan.output)
	for i, sp := range specs {
		if len(sp.C) != len(sp.D) {
			return fmt.Errorf("spec %d: %d rows in C, %d in D", i, len(sp.C), len(sp.D))
		}
		for r, row := range sp.C {
			if len(row) != s {
				return fmt.Errorf("spec %d row %d: %d coefficients, the output %q has %d per sample", i, r, len(row), e.plan.output, s)
			}
			for _, v := range row {
				if math.IsNaN(v) || math.IsInf(v, 0) {
					return fmt.Errorf("spec %d row %d: coefficient %v", i, r, v)
				}
			}
			if math.IsNaN(sp.D[r]) || math.IsInf(sp.D[r], 0) {
				return fmt.Errorf("spec %d row %d: D = %v", i, r, sp.D[r])
			}
		}
	}
	return nil
}

// width returns the largest per-sample size of the values a pass from v touches.
func (e *engine) width(v string) int {
	w := e.per(e.plan.input)
	for _, k := range e.plan.ancestors(v) {
		w = max(w, e.per(e.plan.nodes[k].Outputs[0]))
	}
	return w
}

// specEps adds to a pass's error bounds the rounding of evaluating C·y + D in
// float64 (SoundFP): γ(S+1)·(Σ|C_j|·max|y_j| + |D|).
func (e *engine) specEps(p *pass, specs []Spec) {
	out := e.plan.output
	s := e.per(out)
	m := e.mag(out)
	gs := gamma(s + 1)
	for i := 0; i < p.n; i++ {
		sp := specs[p.s0+i]
		mv := m[(p.s0+i)*s : (p.s0+i+1)*s]
		for r, row := range sp.C {
			t := math.Abs(sp.D[r])
			for j, c := range row {
				t += math.Abs(c) * mv[j]
			}
			p.err[i*p.r+r] = up(p.err[i*p.r+r] + gs*sumUp(t, s+1) + underflow(s))
		}
	}
}

// maxRows is the largest number of spec rows of a sample.
func maxRows(specs []Spec) int {
	r := 0
	for _, s := range specs {
		r = max(r, len(s.C))
	}
	return r
}

// specChunks splits the batch into sample ranges for passes of r rows: at most
// budget coefficients each, and at least one per core when the batch allows.
func (e *engine) specChunks(r int) [][2]int {
	w := e.width(e.plan.output)
	per := max(1, budget/max(1, r*w))
	per = min(per, (e.n+runtime.GOMAXPROCS(0)-1)/runtime.GOMAXPROCS(0))
	var out [][2]int
	for s0 := 0; s0 < e.n; s0 += per {
		out = append(out, [2]int{s0, min(e.n, s0+per)})
	}
	return out
}

// specPass returns a pass over samples [s0, s1) seeded with the specs: its start
// coefficient (C, zero rows for samples with fewer rows) and constant term (D).
func (e *engine) specPass(specs []Spec, s0, s1, r int) (*pass, []float64) {
	s := e.per(e.plan.output)
	p := e.newPass(s0, s1-s0, r)
	a0 := make([]float64, p.rows()*s)
	for i := 0; i < p.n; i++ {
		sp := specs[s0+i]
		for q, row := range sp.C {
			copy(a0[(i*r+q)*s:], row)
			p.bias[i*r+q] = sp.D[q]
		}
	}
	if e.opt.SoundFP {
		e.specEps(p, specs)
	}
	return p, a0
}

// crownLower runs the final backward passes of CROWN and returns the bounds per
// sample and row.
func (e *engine) crownLower(specs []Spec) ([][]float64, error) {
	return e.specLower(specs, e.input(), nil)
}

// specLower seeds passes with the specs, runs them back to the value at and
// returns the bounds per sample and row; setup, when not nil, adjusts each pass.
func (e *engine) specLower(specs []Spec, at *centre, setup func(p *pass)) ([][]float64, error) {
	if err := e.checkSpecs(specs); err != nil {
		return nil, err
	}
	r := maxRows(specs)
	out := make([][]float64, e.n)
	for i := range out {
		out[i] = make([]float64, len(specs[i].C))
	}
	if r == 0 {
		return out, nil
	}
	chunks := e.specChunks(r)
	err := parallel(len(chunks), func(c int) error {
		s0, s1 := chunks[c][0], chunks[c][1]
		p, a0 := e.specPass(specs, s0, s1, r)
		if setup != nil {
			setup(p)
		}
		lower, err := p.runTo(e.plan.output, a0, at)
		if err != nil {
			return err
		}
		for i := s0; i < s1; i++ {
			copy(out[i], lower[(i-s0)*r:(i-s0)*r+len(specs[i].C)])
		}
		return nil
	})
	return out, err
}

// refine tightens the box of v, when a nonlinearity reads it, with CROWN bounds
// of its non-exactly relaxed neurons (see CROWN).
func (e *engine) refine(v string) error {
	relu, other := false, false
	for _, k := range e.plan.users[v] {
		switch e.plan.ops[k].(type) {
		case nets.Relu:
			relu = true
		case nets.Sigmoid, nets.Tanh, nets.MaxPool:
			other = true
		}
	}
	if (!relu && !other) || e.affineOfInput(v) {
		return nil
	}
	box := e.boxes[v]
	s := e.per(v)
	lists := make([][]int32, e.n)
	longest := 0
	fixed := e.opt.Fixed[v]
	for n := range lists {
		if n < len(fixed) && fixed[n] {
			continue
		}
		for j := 0; j < s; j++ {
			lo, hi := box.Lo.Data[n*s+j], box.Hi.Data[n*s+j]
			if (relu && lo < 0 && hi > 0) || (other && lo < hi) || (e.opt.PlainCROWN && lo < hi) {
				lists[n] = append(lists[n], int32(j))
			}
		}
		longest = max(longest, len(lists[n]))
	}
	if longest == 0 {
		return nil
	}
	// Rows per pass: 2 per neuron (+e_j for the lower bound, −e_j for the upper).
	w := e.width(v)
	block := min(longest, max(1, budget/(2*w)))
	per := min(e.n, max(1, budget/(2*block*w)))
	workers := runtime.GOMAXPROCS(0)
	blocks := (longest + block - 1) / block
	if per > 1 && ((e.n+per-1)/per)*blocks < workers {
		per = max(1, (e.n+workers-1)/workers)
	}
	type job struct{ s0, s1, b0 int }
	var jobs []job
	for s0 := 0; s0 < e.n; s0 += per {
		s1 := min(e.n, s0+per)
		for b0 := 0; b0 < longest; b0 += block {
			need := false
			for n := s0; n < s1; n++ {
				need = need || len(lists[n]) > b0
			}
			if need {
				jobs = append(jobs, job{s0, s1, b0})
			}
		}
	}
	lo, hi := box.Lo.Clone(), box.Hi.Clone()
	k0 := e.plan.producer[v]
	seeder, _ := e.layers[k0].(unitSeeder)
	// For IntermediateAlpha: the ReLUs before v with a slope to optimise.
	var path, relus []int
	if e.opt.IntermediateAlpha > 0 {
		path = e.plan.ancestors(v)
		for _, k := range path {
			if l, ok := e.layers[k].(*reluLayer); ok && l.unstable() {
				relus = append(relus, k)
			}
		}
	}
	err := parallel(len(jobs), func(c int) error {
		jb := jobs[c]
		r := 2 * block
		p := e.newPass(jb.s0, jb.s1-jb.s0, r)
		idx, sign := make([]int32, p.rows()), make([]float64, p.rows())
		for i := range idx {
			idx[i] = -1
		}
		for i := 0; i < p.n; i++ {
			list := lists[jb.s0+i]
			for q := 0; q < block && jb.b0+q < len(list); q++ {
				idx[i*r+2*q], sign[i*r+2*q] = list[jb.b0+q], 1
				idx[i*r+2*q+1], sign[i*r+2*q+1] = list[jb.b0+q], -1
			}
		}
		var lower []float64
		var err error
		if seeder != nil {
			// The first step by rows of the layer's matrix; its error weight
			// applies with |coefficient| 1.
			if eps := e.layers[k0].eps(); eps != nil {
				for row, j := range idx {
					if j >= 0 {
						g := (p.s0+row/r)*s + int(j)
						p.err[row] = up(p.err[row] + eps[g])
					}
				}
			}
			node := e.plan.nodes[k0]
			ax := seeder.unitBack(p, idx, sign)
			lower, err = p.runFrom(map[string][]float64{node.Inputs[0]: ax}, k0-1, e.input())
			p.release()
		} else {
			a0 := make([]float64, p.rows()*s)
			for row, j := range idx {
				if j >= 0 {
					a0[row*s+int(j)] = sign[row]
				}
			}
			lower, err = p.run(v, a0)
		}
		if err != nil {
			return err
		}
		if len(relus) > 0 {
			if err := e.alphaRefine(v, path, relus, jb.s0, jb.s1, r, idx, sign, lower); err != nil {
				return err
			}
		}
		for i := 0; i < p.n; i++ {
			n := jb.s0 + i
			list := lists[n]
			for q := 0; q < block && jb.b0+q < len(list); q++ {
				// Comparisons skip a NaN (from an overflow): the IBP end stays.
				g := n*s + int(list[jb.b0+q])
				l, h := lower[i*r+2*q], -lower[i*r+2*q+1]
				if e.opt.PlainCROWN {
					// The ablation replaces IBP's bounds instead of intersecting.
					if !math.IsNaN(l) && !math.IsNaN(h) {
						lo.Data[g], hi.Data[g] = l, h
					}
					continue
				}
				if l > lo.Data[g] {
					lo.Data[g] = l
				}
				if h < hi.Data[g] {
					hi.Data[g] = h
				}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	_, clamped := e.opt.Clamp[v]
	for g, l := range lo.Data {
		if h := hi.Data[g]; l > h && !clamped {
			// Only rounding can cross sound bounds (never with SoundFP): keep both.
			// Under a clamp a crossing means no input reaches the domain: kept.
			lo.Data[g], hi.Data[g] = h, l
		}
	}
	e.boxes[v] = Box{Lo: lo, Hi: hi}
	e.mu.Lock()
	delete(e.mags, v)
	e.mu.Unlock()
	return nil
}

// alphaRefine raises lower, CROWN's lower bounds of the unit rows (idx, sign)
// of value v for samples [s0, s1), by alpha-CROWN: IntermediateAlpha projected
// Adam steps on the slopes of relus (those before v), the best iterate kept per
// row (see AlphaCROWN).
func (e *engine) alphaRefine(v string, path, relus []int, s0, s1, r int, idx []int32, sign, lower []float64) error {
	s := e.per(v)
	a0 := make([]float64, (s1-s0)*r*s)
	for row, j := range idx {
		if j >= 0 {
			a0[row*s+int(j)] = sign[row]
		}
	}
	st := e.newAlphaState(relus, s0, s1, r)
	for t := 0; t < e.opt.IntermediateAlpha; t++ {
		if err := e.stopped(); err != nil {
			return err
		}
		p := e.newPass(s0, s1-s0, r)
		p.alpha, p.keep = st.alpha, map[int][]float64{}
		got, err := p.run(v, append([]float64(nil), a0...))
		if err != nil {
			return err
		}
		for i, b := range got {
			if b > lower[i] {
				lower[i] = b
			}
		}
		if t == e.opt.IntermediateAlpha-1 {
			break
		}
		grads, _, err := e.alphaGrads(p, path, relus)
		if err != nil {
			return err
		}
		st.step(grads, nil, defaultAlphaLR)
	}
	return nil
}

// affineOfInput reports whether v is the image of the input box under one linear
// op (Gemm, MatMul, Conv, a pool) and elementwise ops that keep its bounds exact:
// then IBP's bounds of v are exact and CROWN would not tighten them. Before the
// linear op (walking forward) only ops that neither mix nor duplicate elements are
// allowed: data movement and size-preserving elementwise affine or monotone maps.
func (e *engine) affineOfInput(v string) bool {
	linear := 0
	for name := v; name != e.plan.input; {
		k, ok := e.plan.producer[name]
		if !ok {
			return false
		}
		node := e.plan.nodes[k]
		next := ""
		for _, in := range node.Inputs {
			if e.boxes[in].Lo != nil {
				if next != "" {
					return false // two bounded inputs
				}
				next = in
			}
		}
		switch e.plan.ops[k].(type) {
		case nets.Gemm, nets.MatMul, nets.Conv, nets.AveragePool, nets.GlobalAveragePool:
			linear++
			if linear > 1 {
				return false
			}
		case nets.Relu, nets.Sigmoid, nets.Tanh, nets.BatchNormalization,
			nets.Flatten, nets.Reshape, nets.Transpose, nets.Identity, nets.Dropout, nets.Pad:
		case nets.Add, nets.Sub, nets.Mul, nets.Div, nets.Concat:
			if linear == 1 && e.per(node.Outputs[0]) != e.per(next) {
				return false // may repeat elements before the linear op
			}
		default:
			return false
		}
		name = next
	}
	return true
}
