package bounds_test

// Helpers of the black-box tests: they build networks by hand, evaluate specs with
// the network's own forward pass, find exact or grid minima, and attack with PGD.
// None of them uses package bounds, so the tests compare bounds with independent
// computations.

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/certify-dev/certify/bounds"
	"github.com/certify-dev/certify/nets"
)

// denseNet builds x → Gemm → act → Gemm → act → … → Gemm → y from weights
// ws[l] ([out][in], as in PyTorch's Linear) and biases bs[l]; act is "Relu",
// "Sigmoid" or "Tanh". The input "x" is [batch, len(ws[0][0])].
func denseNet(ws [][][]float64, bs [][]float64, act string) (*nets.Graph, error) {
	if len(ws) == 0 || len(ws) != len(bs) {
		return nil, fmt.Errorf("denseNet: %d weight and %d bias layers", len(ws), len(bs))
	}
	ctor, ok := nets.Constructors()[act]
	if !ok {
		return nil, fmt.Errorf("denseNet: no op %q", act)
	}
	actOp, err := ctor(nets.NodeSpec{Attrs: nets.NewAttrs(), Opset: 13, NumInputs: 1, NumOutputs: 1})
	if err != nil {
		return nil, err
	}
	in := len(ws[0][0])
	g := &nets.Graph{
		Name:   "dense",
		Inputs: []nets.ValueInfo{{Name: "x", Shape: []int{-1, in}}},
		Params: map[string]*nets.Tensor{},
		Opset:  13,
	}
	cur := "x"
	for l, w := range ws {
		out := len(w)
		wt := nets.NewTensor(out, in)
		for i, row := range w {
			if len(row) != in {
				return nil, fmt.Errorf("denseNet: layer %d row %d has %d inputs, want %d", l, i, len(row), in)
			}
			copy(wt.Data[i*in:], row)
		}
		if len(bs[l]) != out {
			return nil, fmt.Errorf("denseNet: layer %d has %d biases, want %d", l, len(bs[l]), out)
		}
		wn, bn := fmt.Sprintf("W%d", l+1), fmt.Sprintf("b%d", l+1)
		g.Params[wn] = wt
		g.Params[bn] = nets.FromData(append([]float64(nil), bs[l]...), out)
		z := fmt.Sprintf("z%d", l+1)
		if l == len(ws)-1 {
			z = "y"
		}
		g.Nodes = append(g.Nodes, &nets.Node{Name: z, Op: nets.Gemm{TransB: true, Alpha: 1, Beta: 1},
			Inputs: []string{cur, wn, bn}, Outputs: []string{z}})
		cur = z
		if l < len(ws)-1 {
			h := fmt.Sprintf("h%d", l+1)
			g.Nodes = append(g.Nodes, &nets.Node{Name: h, Op: actOp, Inputs: []string{cur}, Outputs: []string{h}})
			cur = h
		}
		in = out
	}
	g.Outputs = []nets.ValueInfo{{Name: "y", Shape: []int{-1, in}}}
	return g, g.Validate()
}

// randomNet returns a dense net with the given widths (inputs first, outputs
// last), weights N(0, 1/fan_in)·scale and biases N(0, 0.25).
func randomNet(rng *rand.Rand, act string, widths ...int) (*nets.Graph, error) {
	var ws [][][]float64
	var bs [][]float64
	for l := 1; l < len(widths); l++ {
		w := make([][]float64, widths[l])
		sd := 1.5 / math.Sqrt(float64(widths[l-1]))
		for i := range w {
			w[i] = make([]float64, widths[l-1])
			for j := range w[i] {
				w[i][j] = sd * rng.NormFloat64()
			}
		}
		b := make([]float64, widths[l])
		for i := range b {
			b[i] = 0.5 * rng.NormFloat64()
		}
		ws, bs = append(ws, w), append(bs, b)
	}
	return denseNet(ws, bs, act)
}

// specValues returns (C·y + D) for every row, y being one sample's outputs.
func specValues(s bounds.Spec, y []float64) []float64 {
	out := make([]float64, len(s.C))
	for r, c := range s.C {
		v := s.D[r]
		for j, w := range c {
			v += w * y[j]
		}
		out[r] = v
	}
	return out
}

// rowMins evaluates g on the points pts ([n, 2]) and returns, per spec row, the
// minimum of (C·y + D)_row over them and the point attaining it.
func rowMins(t *testing.T, g *nets.Graph, s bounds.Spec, pts *nets.Tensor) ([]float64, [][]float64) {
	t.Helper()
	y, err := g.Logits(pts)
	if err != nil {
		t.Fatal(err)
	}
	k := y.Len() / y.Batch()
	d := pts.Len() / pts.Batch()
	mins := make([]float64, len(s.C))
	arg := make([][]float64, len(s.C))
	for r := range mins {
		mins[r] = math.Inf(1)
	}
	for p := 0; p < y.Batch(); p++ {
		for r, v := range specValues(s, y.Data[p*k:(p+1)*k]) {
			if v < mins[r] {
				mins[r] = v
				arg[r] = pts.Data[p*d : (p+1)*d]
			}
		}
	}
	return mins, arg
}

// gridPoints returns the n×n grid over the 2-D box [lo, hi] (corners included),
// as a batch [n*n, 2].
func gridPoints(lo, hi [2]float64, n int) *nets.Tensor {
	pts := nets.NewTensor(n*n, 2)
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			p := (i*n + j) * 2
			pts.Data[p] = lo[0] + (hi[0]-lo[0])*float64(i)/float64(n-1)
			pts.Data[p+1] = lo[1] + (hi[1]-lo[1])*float64(j)/float64(n-1)
		}
	}
	// The last grid line is hi exactly, not lo + (hi-lo)·1 rounded.
	for i := 0; i < n; i++ {
		pts.Data[((n-1)*n+i)*2] = hi[0]
		pts.Data[(i*n+n-1)*2+1] = hi[1]
	}
	return pts
}

// vertexPoints returns the vertices of the arrangement that the lines
// w·x + b = 0 (one per row of the first layer) cut into the 2-D box [lo, hi]: its
// corners, where each line crosses its edges and where two lines cross inside it.
// A function linear on every cell of the arrangement — the output of a ReLU net
// with one hidden layer — attains its minimum over the box at one of them.
func vertexPoints(w [][]float64, b []float64, lo, hi [2]float64) *nets.Tensor {
	in := func(p [2]float64) bool {
		const tol = 1e-12
		return p[0] >= lo[0]-tol && p[0] <= hi[0]+tol && p[1] >= lo[1]-tol && p[1] <= hi[1]+tol
	}
	clip := func(p [2]float64) [2]float64 {
		return [2]float64{min(max(p[0], lo[0]), hi[0]), min(max(p[1], lo[1]), hi[1])}
	}
	pts := [][2]float64{{lo[0], lo[1]}, {lo[0], hi[1]}, {hi[0], lo[1]}, {hi[0], hi[1]}}
	for i := range w {
		a0, a1, c := w[i][0], w[i][1], b[i]
		// Crossings with the edges x0 = lo0, hi0 and x1 = lo1, hi1.
		for _, x0 := range []float64{lo[0], hi[0]} {
			if a1 != 0 {
				if p := [2]float64{x0, -(c + a0*x0) / a1}; in(p) {
					pts = append(pts, clip(p))
				}
			}
		}
		for _, x1 := range []float64{lo[1], hi[1]} {
			if a0 != 0 {
				if p := [2]float64{-(c + a1*x1) / a0, x1}; in(p) {
					pts = append(pts, clip(p))
				}
			}
		}
		for j := i + 1; j < len(w); j++ {
			det := a0*w[j][1] - a1*w[j][0]
			if math.Abs(det) < 1e-12 {
				continue
			}
			// Cramer's rule for a0·x + a1·y = −c, w_j0·x + w_j1·y = −b_j.
			p := [2]float64{(-c*w[j][1] + a1*b[j]) / det, (-a0*b[j] + c*w[j][0]) / det}
			if in(p) {
				pts = append(pts, clip(p))
			}
		}
	}
	t := nets.NewTensor(len(pts), 2)
	for i, p := range pts {
		t.Data[2*i], t.Data[2*i+1] = p[0], p[1]
	}
	return t
}

// concatPoints stacks batches of points.
func concatPoints(ps ...*nets.Tensor) *nets.Tensor {
	n, d := 0, ps[0].Len()/ps[0].Batch()
	for _, p := range ps {
		n += p.Batch()
	}
	out := nets.NewTensor(n, d)
	off := 0
	for _, p := range ps {
		copy(out.Data[off:], p.Data)
		off += p.Len()
	}
	return out
}

// pgd runs projected gradient descent on the robustness margin of each sample
// inside its box [lo, hi] (batched): from the centre of the box and from
// restarts-1 uniform random points, steps of x ← clip(x + step·sign(∇ℓ)), ℓ being
// nets.Margin (max_{j≠y} z_j − z_y, whose increase decreases every spec row
// z_y − z_j it involves). visit is called with the logits of every iterate,
// starting points included.
func pgd(t *testing.T, g *nets.Graph, box bounds.Box, labels []int, steps, restarts int, step float64, rng *rand.Rand, visit func(logits *nets.Tensor, x *nets.Tensor)) {
	t.Helper()
	lo, hi := box.Lo, box.Hi
	for r := 0; r < restarts; r++ {
		x := nets.NewTensor(lo.Shape...)
		for i := range x.Data {
			u := 0.5
			if r > 0 {
				u = rng.Float64()
			}
			x.Data[i] = min(max(lo.Data[i]+u*(hi.Data[i]-lo.Data[i]), lo.Data[i]), hi.Data[i])
		}
		for s := 0; ; s++ {
			logits, err := g.Logits(x)
			if err != nil {
				t.Fatal(err)
			}
			visit(logits, x)
			if s == steps {
				break
			}
			_, grad, err := g.LossGrad(x, labels, nets.Margin{})
			if err != nil {
				t.Fatal(err)
			}
			for i, gv := range grad.Data {
				switch {
				case gv > 0:
					x.Data[i] += step
				case gv < 0:
					x.Data[i] -= step
				}
				x.Data[i] = min(max(x.Data[i], lo.Data[i]), hi.Data[i])
			}
		}
	}
}

// robustnessSpecs returns bounds.RobustnessSpec(classes, labels[i]) for every i.
func robustnessSpecs(t *testing.T, classes int, labels []int) []bounds.Spec {
	t.Helper()
	specs := make([]bounds.Spec, len(labels))
	for i, y := range labels {
		s, err := bounds.RobustnessSpec(classes, y)
		if err != nil {
			t.Fatal(err)
		}
		specs[i] = s
	}
	return specs
}

// readMNIST loads the shipped model path and the first n test samples with labels.
func readMNIST(t *testing.T, path string, n int) (*nets.Graph, *nets.Tensor, []int) {
	t.Helper()
	g, err := nets.ReadONNX(path)
	if err != nil {
		t.Fatal(err)
	}
	x, err := nets.ReadNPY("../testdata/mnist-test-1k.npy")
	if err != nil {
		t.Fatal(err)
	}
	yt, err := nets.ReadNPY("../testdata/mnist-test-1k-labels.npy")
	if err != nil {
		t.Fatal(err)
	}
	per := x.Len() / x.Batch()
	xs := nets.FromData(append([]float64(nil), x.Data[:n*per]...), n, 1, 28, 28)
	labels := make([]int, n)
	for i := range labels {
		labels[i] = int(yt.Data[i])
	}
	return g, xs, labels
}
