package bounds

import (
	"fmt"
	"math"

	"github.com/certify-dev/certify/nets"
)

// defaultAlphaLR is alpha-CROWN's default Adam step size.
const defaultAlphaLR = 0.1

// AlphaOptions configures AlphaCROWN.
type AlphaOptions struct {
	Options
	Iterations int     // projected gradient steps; 0 means 20
	LR         float64 // Adam step size; 0 means 0.1
}

// AlphaCROWN is CROWN with optimised ReLU lower slopes (Xu, Zhang, Wang, Wang, Jana,
// Lin, Hsieh, "Fast and Complete: Enabling Complete Neural Network Verification
// with Rapid and Massively Parallel Incomplete Verifiers", ICLR 2021, §3.1;
// "alpha-CROWN"): any α ∈ [0, 1] gives a sound lower relaxation y ≥ α·x of an
// unstable ReLU, so the slopes become variables and the final lower bound is
// maximised over them by projected gradient ascent (Adam, β = 0.9, 0.999),
// starting from CROWN's adaptive slopes.
//
// Choices and simplifications (documented, all sound):
//   - α is one variable per sample, spec row and ReLU neuron: each row of each
//     sample's spec optimises its own relaxation, as in auto_LiRPA's default.
//   - Only the final spec's slopes are optimised. The intermediate (pre-activation)
//     bounds stay those of CROWN (IBP ∩ CROWN with adaptive slopes); alpha-CROWN as
//     published also optimises the slopes used for them, which is tighter and
//     costlier. Fixed intermediate bounds are valid for every α, so every iterate
//     is a sound bound.
//   - The bound of every iterate is computed in full (with SoundFP when set) and the
//     best per row is kept; the first iterate is CROWN's own bound and the result
//     is also max'ed with CROWN's and IBP's, so alpha-CROWN ≥ CROWN ≥ IBP per row.
//   - Slopes of other activations (sigmoid, tanh) stay CROWN's.
//
// The gradient is exact (where the bound is differentiable): for fixed slopes the
// bound is A·x* + constant, linear in the coefficient a_x of each pre-activation x;
// its derivative with respect to a_x is the value at x of the input minimiser x*
// propagated forward through the relaxed network (each node's chosen linear
// bound), and a_x depends on α_j through a_y⁺_j·α_j (relu.go, alphaGrad). One
// backward and one forward pass per iteration, batched over samples and rows.
func AlphaCROWN(g *nets.Graph, in Box, specs []Spec, opt AlphaOptions) (*Result, error) {
	iters, lr := opt.Iterations, opt.LR
	if iters == 0 {
		iters = 20
	}
	if lr == 0 {
		lr = defaultAlphaLR
	}
	if iters < 0 || !(lr > 0) || math.IsInf(lr, 0) {
		return nil, fmt.Errorf("alpha-CROWN: %d iterations, learning rate %v: want ≥ 0 and > 0", opt.Iterations, opt.LR)
	}
	ibp, err := SpecIBP(g, in, specs, opt.Options)
	if err != nil {
		return nil, err
	}
	e, err := newEngine(g, in, opt.Options, true)
	if err != nil {
		return nil, err
	}
	crown, err := e.crownLower(specs)
	if err != nil {
		return nil, err
	}
	lower, err := e.alphaLower(specs, iters, lr)
	if err != nil {
		return nil, err
	}
	maxInto(lower, crown)
	maxInto(lower, ibp.Lower)
	return &Result{Lower: lower, Nodes: e.boxes}, nil
}

// alphaLower optimises the slopes per chunk of samples and returns the best bound
// of every row.
func (e *engine) alphaLower(specs []Spec, iters int, lr float64) ([][]float64, error) {
	r := maxRows(specs)
	out := make([][]float64, e.n)
	for i := range out {
		out[i] = make([]float64, len(specs[i].C))
	}
	if r == 0 {
		return out, nil
	}
	path := e.plan.ancestors(e.plan.output)
	var relus []int
	for _, k := range path {
		if l, ok := e.layers[k].(*reluLayer); ok && (l.unstable() || l.hasSplits()) {
			relus = append(relus, k)
		}
	}
	chunks := e.specChunks(r)
	err := parallel(len(chunks), func(c int) error {
		s0, s1 := chunks[c][0], chunks[c][1]
		st := e.newAlphaState(relus, s0, s1, r)
		best := make([]float64, (s1-s0)*r)
		for i := range best {
			best[i] = math.Inf(-1)
		}
		for t := 0; ; t++ {
			if err := e.stopped(); err != nil {
				return err
			}
			p, a0 := e.specPass(specs, s0, s1, r)
			p.alpha, p.beta = st.alpha, st.beta
			p.keep = map[int][]float64{}
			lower, err := p.run(e.plan.output, a0)
			if err != nil {
				return err
			}
			for i, v := range lower {
				if v > best[i] {
					best[i] = v
				}
			}
			if t == iters || len(relus) == 0 {
				break
			}
			grads, bgrads, err := e.alphaGrads(p, path, relus)
			if err != nil {
				return err
			}
			st.step(grads, bgrads, lr)
		}
		for i := s0; i < s1; i++ {
			copy(out[i], best[(i-s0)*r:(i-s0)*r+len(specs[i].C)])
		}
		return nil
	})
	return out, err
}

// unstable reports whether the ReLU has an unstable neuron (one with a chord).
func (l *reluLayer) unstable() bool {
	for _, c := range l.icpt {
		if c > 0 {
			return true
		}
	}
	return false
}

// hasSplits reports whether the ReLU has a split neuron (Options.Splits).
func (l *reluLayer) hasSplits() bool {
	for _, s := range l.split {
		if s != 0 {
			return true
		}
	}
	return false
}

// alphaState holds the slopes, the split multipliers β (Options.Splits) and
// their Adam moments (Kingma & Ba, "Adam", ICLR 2015, Algorithm 1) of one chunk.
type alphaState struct {
	alpha, m, v  map[int][]float64
	beta, mb, vb map[int][]float64
	t            int
}

// newAlphaState starts every slope at CROWN's adaptive choice.
func (e *engine) newAlphaState(relus []int, s0, s1, r int) *alphaState {
	st := &alphaState{alpha: map[int][]float64{}, m: map[int][]float64{}, v: map[int][]float64{},
		beta: map[int][]float64{}, mb: map[int][]float64{}, vb: map[int][]float64{}}
	for _, k := range relus {
		l := e.layers[k].(*reluLayer)
		a := make([]float64, (s1-s0)*r*l.s)
		for i := 0; i < s1-s0; i++ {
			for q := 0; q < r; q++ {
				row := a[(i*r+q)*l.s : (i*r+q+1)*l.s]
				for j := range row {
					g := (s0+i)*l.s + j
					row[j] = l.lsl[g]
				}
			}
		}
		st.alpha[k], st.m[k], st.v[k] = a, make([]float64, len(a)), make([]float64, len(a))
		if l.hasSplits() {
			st.beta[k], st.mb[k], st.vb[k] = make([]float64, len(a)), make([]float64, len(a)), make([]float64, len(a))
		}
	}
	return st
}

// step is one projected Adam ascent step: α ← clip(α + lr·m̂/(√v̂ + ε), 0, 1),
// β ← max(β + lr·m̂/(√v̂ + ε), 0).
func (st *alphaState) step(grads, bgrads map[int][]float64, lr float64) {
	st.t++
	for k, g := range grads {
		st.adam(st.alpha[k], st.m[k], st.v[k], g, lr, 1)
	}
	for k, g := range bgrads {
		st.adam(st.beta[k], st.mb[k], st.vb[k], g, lr, math.Inf(1))
	}
}

func (st *alphaState) adam(a, m, v, g []float64, lr, hi float64) {
	const b1, b2, eps = 0.9, 0.999, 1e-8
	c1, c2 := 1-math.Pow(b1, float64(st.t)), 1-math.Pow(b2, float64(st.t))
	for i, gi := range g {
		m[i] = b1*m[i] + (1-b1)*gi
		v[i] = b2*v[i] + (1-b2)*gi*gi
		a[i] = min(hi, max(0, a[i]+lr*(m[i]/c1)/(math.Sqrt(v[i]/c2)+eps)))
	}
}

// alphaGrads returns ∂bound/∂α for the ReLUs of a finished pass: the input
// minimiser of every row (x_j = l_j where its coefficient is positive, else u_j)
// goes forward through the relaxed network chosen by the pass.
func (e *engine) alphaGrads(p *pass, path, relus []int) (map[int][]float64, map[int][]float64, error) {
	grads, bgrads := map[int][]float64{}, map[int][]float64{}
	if p.in == nil {
		for _, k := range relus {
			grads[k] = make([]float64, len(p.alpha[k]))
		}
		return grads, bgrads, nil
	}
	in := e.plan.input
	s := e.per(in)
	box := e.boxes[in]
	x := make([]float64, len(p.in))
	for i := 0; i < p.n; i++ {
		g0 := (p.s0 + i) * s
		for r := 0; r < p.r; r++ {
			row := (i*p.r + r) * s
			for j := 0; j < s; j++ {
				if p.in[row+j] > 0 {
					x[row+j] = box.Lo.Data[g0+j]
				} else {
					x[row+j] = box.Hi.Data[g0+j]
				}
			}
		}
	}
	isRelu := map[int]bool{}
	need := map[int]bool{} // the nodes whose values reach a ReLU's input
	for _, k := range relus {
		isRelu[k] = true
		for _, a := range e.plan.ancestors(e.plan.nodes[k].Inputs[0]) {
			need[a] = true
		}
	}
	// Values are dropped after their last reader on the path.
	last := map[string]int{}
	for _, k := range path {
		for _, name := range e.plan.nodes[k].Inputs {
			last[name] = k
		}
	}
	vals := map[string][]float64{in: x}
	for _, k := range path {
		if !need[k] && !isRelu[k] {
			continue
		}
		node := e.plan.nodes[k]
		xs := make([][]float64, len(node.Inputs))
		for i, name := range node.Inputs {
			xs[i] = vals[name]
		}
		l := e.layers[k]
		aOut := p.keep[k]
		if l.nonlinear() && aOut == nil {
			aOut = make([]float64, p.rows()*e.per(node.Outputs[0]))
		}
		if isRelu[k] {
			g := make([]float64, len(p.alpha[k]))
			rl := l.(*reluLayer)
			rl.alphaGrad(p, aOut, xs[0], g)
			grads[k] = g
			if p.beta[k] != nil {
				gb := make([]float64, len(g))
				rl.betaGrad(p, xs[0], gb)
				bgrads[k] = gb
			}
			if !need[k] {
				continue
			}
		}
		y, err := l.fwd(p, xs, aOut)
		if err != nil {
			return nil, nil, fmt.Errorf("node %q (%s): %w", node.Name, e.plan.ops[k].OpType(), err)
		}
		vals[node.Outputs[0]] = y
		for _, name := range node.Inputs {
			if last[name] == k {
				delete(vals, name)
			}
		}
	}
	return grads, bgrads, nil
}
