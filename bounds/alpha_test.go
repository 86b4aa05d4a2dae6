package bounds

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestAlphaGradient compares alphaGrads with finite differences of the bound: the
// bound is piecewise linear in each slope, so a small step inside a piece gives
// the derivative exactly (up to rounding).
func TestAlphaGradient(t *testing.T) {
	for _, name := range []string{"mlp-relu", "residual", "cnn-bn-maxpool", "mlp-mixed"} {
		tn := testNetNamed(t, 5, name)
		r := rand.New(rand.NewPCG(5, 6))
		box, _ := randomBoxes(r, 3, tn.in)
		e, err := newEngine(tn.g, box, Options{}, true)
		if err != nil {
			t.Fatal(err)
		}
		specs := randomSpecs(r, 3, 2, e.per(e.plan.output))
		rows := maxRows(specs)
		path := e.plan.ancestors(e.plan.output)
		var relus []int
		for _, k := range path {
			if l, ok := e.layers[k].(*reluLayer); ok && l.unstable() {
				relus = append(relus, k)
			}
		}
		if len(relus) == 0 {
			t.Fatalf("%s: no unstable ReLU", name)
		}
		st := e.newAlphaState(relus, 0, e.n, rows)
		for k, a := range st.alpha {
			l := e.layers[k].(*reluLayer)
			for i := range a {
				if l.icpt[(i/(rows*l.s))*l.s+i%l.s] > 0 && r.IntN(4) != 0 {
					a[i] = 0.05 + 0.9*r.Float64() // unstable: anywhere in (0, 1)
				}
			}
		}
		bound := func() ([]float64, *pass) { return stateBound(t, e, specs, rows, st) }
		base, p := bound()
		grads, _, err := e.alphaGrads(p, path, relus)
		if err != nil {
			t.Fatal(err)
		}
		checked := 0
		for _, k := range relus {
			l := e.layers[k].(*reluLayer)
			for q, gr := range grads[k] {
				if gr == 0 && r.IntN(20) != 0 {
					continue
				}
				row := q / l.s
				fd, ok := finiteDiff(bound, &st.alpha[k][q], base, row)
				if !ok {
					continue // a kink of the piecewise-linear bound at this α
				}
				if math.Abs(fd-gr) > 1e-5*(1+math.Abs(gr)) {
					t.Errorf("%s: ∂bound[%d]/∂α[%d][%d] = %v, finite difference %v (bound %v)", name, row, k, q, gr, fd, base[row])
				}
				checked++
			}
		}
		if checked < 5 {
			t.Errorf("%s: only %d derivatives checked", name, checked)
		}
	}
}

// TestAlphaImproves: on the random ReLU nets alpha-CROWN strictly improves some
// rows over CROWN, and more iterations never make a row worse than fewer
// (the best iterate is kept and the first iterate is CROWN).
func TestAlphaImproves(t *testing.T) {
	improved, rows := 0, 0
	for _, tn := range testNets(7) {
		if tn.name != "mlp-relu" && tn.name != "residual" && tn.name != "cnn-bn-maxpool" {
			continue
		}
		r := rand.New(rand.NewPCG(7, 8))
		box, _ := randomBoxes(r, 6, tn.in)
		y, err := IBP(tn.g, box, Options{})
		if err != nil {
			t.Fatal(err)
		}
		out := y[tn.g.Outputs[0].Name]
		specs := randomSpecs(r, 6, 3, out.Lo.Len()/out.Lo.Batch())
		crown, err := CROWN(tn.g, box, specs, Options{})
		if err != nil {
			t.Fatal(err)
		}
		few, err := AlphaCROWN(tn.g, box, specs, AlphaOptions{Iterations: 5})
		if err != nil {
			t.Fatal(err)
		}
		many, err := AlphaCROWN(tn.g, box, specs, AlphaOptions{Iterations: 40})
		if err != nil {
			t.Fatal(err)
		}
		for i := range specs {
			for q := range specs[i].C {
				rows++
				if many.Lower[i][q] > crown.Lower[i][q]+1e-9 {
					improved++
				}
				if many.Lower[i][q] < few.Lower[i][q] {
					t.Errorf("%s sample %d row %d: 40 iterations %v < 5 iterations %v", tn.name, i, q, many.Lower[i][q], few.Lower[i][q])
				}
			}
		}
	}
	t.Logf("alpha-CROWN above CROWN on %d of %d rows", improved, rows)
	if improved == 0 {
		t.Error("alpha-CROWN never improved on CROWN")
	}
}

// TestBetaGradient compares the β gradient (betaGrad) with finite differences
// of the bound, on random nets with some unstable neurons split (Clamp and
// Splits) and random β > 0: the bound is piecewise linear in each β.
func TestBetaGradient(t *testing.T) {
	for _, name := range []string{"mlp-relu", "cnn-bn-maxpool"} {
		tn := testNetNamed(t, 5, name)
		r := rand.New(rand.NewPCG(5, 6))
		box, _ := randomBoxes(r, 3, tn.in)
		e0, err := newEngine(tn.g, box, Options{}, true)
		if err != nil {
			t.Fatal(err)
		}
		opt := Options{Clamp: map[string]Box{}, Splits: map[string][]int8{}}
		for _, l := range e0.layers {
			rl, ok := l.(*reluLayer)
			if !ok {
				continue
			}
			v := rl.in[0].name
			b := e0.boxes[v]
			c := Box{Lo: b.Lo.Clone(), Hi: b.Hi.Clone()}
			sp := make([]int8, b.Lo.Len())
			for j := range sp {
				if c.Lo.Data[j] < 0 && c.Hi.Data[j] > 0 && r.IntN(3) == 0 {
					if r.IntN(2) == 0 {
						sp[j], c.Lo.Data[j] = 1, 0
					} else {
						sp[j], c.Hi.Data[j] = -1, 0
					}
				}
			}
			opt.Clamp[v], opt.Splits[v] = c, sp
		}
		e, err := newEngine(tn.g, box, opt, true)
		if err != nil {
			t.Fatal(err)
		}
		specs := randomSpecs(r, 3, 2, e.per(e.plan.output))
		rows := maxRows(specs)
		path := e.plan.ancestors(e.plan.output)
		var relus []int
		for _, k := range path {
			if l, ok := e.layers[k].(*reluLayer); ok && (l.unstable() || l.hasSplits()) {
				relus = append(relus, k)
			}
		}
		st := e.newAlphaState(relus, 0, e.n, rows)
		if len(st.beta) == 0 {
			t.Fatalf("%s: no split", name)
		}
		for _, b := range st.beta {
			for i := range b {
				b[i] = 2 * r.Float64()
			}
		}
		bound := func() ([]float64, *pass) { return stateBound(t, e, specs, rows, st) }
		base, p := bound()
		_, bgrads, err := e.alphaGrads(p, path, relus)
		if err != nil {
			t.Fatal(err)
		}
		checked := 0
		for k, g := range bgrads {
			l := e.layers[k].(*reluLayer)
			for q, gr := range g {
				if l.split[(q/(rows*l.s))*l.s+q%l.s] == 0 {
					if gr != 0 {
						t.Errorf("%s: gradient %v of an unsplit neuron's β", name, gr)
					}
					continue
				}
				row := q / l.s
				fd, ok := finiteDiff(bound, &st.beta[k][q], base, row)
				if !ok {
					continue // a kink
				}
				if math.Abs(fd-gr) > 1e-5*(1+math.Abs(gr)) {
					t.Errorf("%s: ∂bound[%d]/∂β[%d][%d] = %v, finite difference %v", name, row, k, q, gr, fd)
				}
				checked++
			}
		}
		t.Logf("%s: %d β derivatives checked", name, checked)
		if checked < 5 {
			t.Errorf("%s: only %d derivatives checked", name, checked)
		}
	}
}

// stateBound runs the spec pass of the engine's samples with the slopes and
// multipliers of st, recording what alphaGrads needs.
func stateBound(t *testing.T, e *engine, specs []Spec, rows int, st *alphaState) ([]float64, *pass) {
	t.Helper()
	p, a0 := e.specPass(specs, 0, e.n, rows)
	p.alpha, p.beta, p.keep = st.alpha, st.beta, map[int][]float64{}
	lower, err := p.run(e.plan.output, a0)
	if err != nil {
		t.Fatal(err)
	}
	return lower, p
}

// finiteDiff is the central difference of bound's row with respect to *v, and
// false at a kink (the one-sided differences disagree).
func finiteDiff(bound func() ([]float64, *pass), v *float64, base []float64, row int) (float64, bool) {
	const h = 1e-7
	old := *v
	*v = old - h
	lo, _ := bound()
	*v = old + h
	hi, _ := bound()
	*v = old
	fd := (hi[row] - lo[row]) / (2 * h)
	left, right := (base[row]-lo[row])/h, (hi[row]-base[row])/h
	return fd, math.Abs(left-right) <= 1e-4*(1+math.Abs(fd))
}

// testNetNamed returns the test net called name among testNets(seed).
func testNetNamed(t *testing.T, seed uint64, name string) testNet {
	t.Helper()
	for _, c := range testNets(seed) {
		if c.name == name {
			return c
		}
	}
	t.Fatalf("no test net %q", name)
	return testNet{}
}
