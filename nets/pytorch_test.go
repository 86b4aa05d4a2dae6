package nets

import (
	"fmt"
	"math"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// The fixtures in ../testdata/pytorch are standard nn.Sequential models exported by
// torch.onnx.export (torch 1.13), with PyTorch's own outputs on 64 inputs; see
// make_fixtures.py and the README there. Each test loads a model with ReadONNX and
// checks our forward and backward passes against PyTorch's.

const pytorchDir = "../testdata/pytorch"

// pytorchFixture describes one exported model and what its graph must contain, so
// that a passing test proves the ops it claims to prove.
type pytorchFixture struct {
	name  string
	opset int
	// batch is the exported batch dimension of the input: -1 when dynamic.
	batch int
	// ops counts the nodes of each op type the graph must hold (Constant and
	// Identity nodes are not counted: an importer may fold them into params).
	ops map[string]int
}

var pytorchFixtures = []pytorchFixture{
	{"mlp_op9", 9, -1, map[string]int{
		"Sub": 1, "Div": 1, "Flatten": 1, "Gemm": 3, "Relu": 2}},
	{"mlp_dropout_op13", 13, -1, map[string]int{
		"Sub": 1, "Div": 1, "Flatten": 1, "Gemm": 3, "Relu": 2, "Dropout": 1}},
	{"cnn_bn_op11", 11, 1, map[string]int{
		"Sub": 1, "Div": 1, "Conv": 2, "BatchNormalization": 1, "Relu": 3, "MaxPool": 1,
		"Pad": 1, "AveragePool": 1, "Flatten": 1, "Gemm": 2}},
	{"cnn_fused_op13", 13, -1, map[string]int{
		"Sub": 1, "Div": 1, "Conv": 2, "Relu": 3, "MaxPool": 1,
		"Pad": 1, "AveragePool": 1, "Flatten": 1, "Gemm": 2}},
	{"cnn_bn_op17", 17, -1, map[string]int{
		"Sub": 1, "Div": 1, "Conv": 2, "BatchNormalization": 1, "Relu": 3, "MaxPool": 1,
		"Pad": 1, "AveragePool": 1, "Flatten": 1, "Gemm": 2}},
}

// Tolerances.
//
// Against PyTorch in float32 (NAME.expected.npy): PyTorch rounds every product and
// partial sum to float32 (unit roundoff 2^-24 ≈ 6e-8), we compute in float64 from
// the same float32 weights. make_fixtures.py measures PyTorch's float32 error
// against its own float64 run: at most 1.2e-5 absolute, on logits up to 48 in
// magnitude. The bound 1e-4·max(1,|y|) is never below 1e-4, so it leaves at least
// 8× headroom for that rounding, yet a wrong pad, pooling window or transposition
// moves logits by far more than 1e-3. Subtler slips (say, a dropped BatchNorm
// epsilon, ~1e-5 relative) are left to the float64 check:
//
// against PyTorch in float64 (NAME.expected64.npy, same weights as the file), only
// the summation order differs, with error ≲ K·2^-53·Σ|terms| ≈ 1e-12 for K ≤ 800
// terms of size ≤ 10; 1e-9·max(1,|y|) is safe and still shows we compute exactly
// the model PyTorch computes, not an approximation of it.
const (
	tolFloat32 = 1e-4
	tolFloat64 = 1e-9
)

// readNPYFile reads a fixture array or fails the test.
func readNPYFile(t *testing.T, name string) *Tensor {
	t.Helper()
	x, err := ReadNPY(filepath.Join(pytorchDir, name))
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	return x
}

// opCounts returns the number of nodes per op type, and the sorted types as a string.
func opCounts(g *Graph) (map[string]int, string) {
	counts := map[string]int{}
	for _, n := range g.Nodes {
		counts[n.Op.OpType()]++
	}
	types := make([]string, 0, len(counts))
	for op, c := range counts {
		types = append(types, fmt.Sprintf("%s×%d", op, c))
	}
	sort.Strings(types)
	return counts, strings.Join(types, " ")
}

// rowwise runs f on each sample separately (for models exported with a fixed batch
// of 1) and stacks the results.
func rowwise(x *Tensor, f func(*Tensor) (*Tensor, error)) (*Tensor, error) {
	parts := make([]*Tensor, x.Batch())
	for i := range parts {
		y, err := f(x.Row(i))
		if err != nil {
			return nil, fmt.Errorf("sample %d: %w", i, err)
		}
		parts[i] = y
	}
	return concatRows(parts)
}

// compare checks got against want elementwise with |got−want| ≤ tol·max(1,|want|)
// and returns the largest absolute difference.
func compare(t *testing.T, what string, got, want *Tensor, tol float64) float64 {
	t.Helper()
	if !SameShape(got.Shape, want.Shape) {
		t.Fatalf("%s: shape %v, PyTorch %v", what, got.Shape, want.Shape)
	}
	worst, bad := 0.0, 0
	for i, w := range want.Data {
		d := math.Abs(got.Data[i] - w)
		worst = math.Max(worst, d)
		if !(d <= tol*math.Max(1, math.Abs(w))) { // also catches NaN
			if bad < 5 {
				t.Errorf("%s: element %d = %.9g, PyTorch %.9g (diff %.3g)", what, i, got.Data[i], w, d)
			}
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d elements outside tolerance %g", what, bad, len(want.Data), tol)
	}
	return worst
}

func TestPyTorchFixtures(t *testing.T) {
	x := readNPYFile(t, "inputs.npy")
	if !SameShape(x.Shape, []int{64, 1, 28, 28}) {
		t.Fatalf("inputs.npy has shape %v, want [64 1 28 28]", x.Shape)
	}
	for _, fx := range pytorchFixtures {
		t.Run(fx.name, func(t *testing.T) {
			g, err := ReadONNX(filepath.Join(pytorchDir, fx.name+".onnx"))
			if err != nil {
				t.Fatalf("ReadONNX: %v", err)
			}
			counts, types := opCounts(g)
			t.Logf("opset %d, %d nodes: %s", g.Opset, len(g.Nodes), types)
			if g.Opset != fx.opset {
				t.Errorf("opset %d, exported with %d", g.Opset, fx.opset)
			}
			for op, want := range fx.ops {
				if counts[op] != want {
					t.Errorf("graph has %d %s nodes, the export has %d", counts[op], op, want)
				}
			}
			for op := range counts {
				if _, ok := fx.ops[op]; !ok && op != "Constant" && op != "Identity" {
					t.Errorf("unexpected %s node", op)
				}
			}
			shape, err := g.InputShape()
			if err != nil {
				t.Fatal(err)
			}
			if !SameShape(shape, []int{1, 28, 28}) {
				t.Fatalf("input shape %v, want [1 28 28]", shape)
			}
			in, _, _ := g.single()
			if in.Shape[0] != fx.batch {
				t.Errorf("input batch dimension %d, exported as %d", in.Shape[0], fx.batch)
			}

			var logits *Tensor
			if fx.batch == -1 {
				logits, err = g.Logits(x)
			} else {
				logits, err = rowwise(x, g.Logits)
			}
			if err != nil {
				t.Fatalf("Logits: %v", err)
			}
			want32 := readNPYFile(t, fx.name+".expected.npy")
			want64 := readNPYFile(t, fx.name+".expected64.npy")
			d32 := compare(t, "logits vs float32 PyTorch", logits, want32, tolFloat32)
			d64 := compare(t, "logits vs float64 PyTorch", logits, want64, tolFloat64)
			t.Logf("max |logit − PyTorch|: %.3g (float32 PyTorch), %.3g (float64 PyTorch)", d32, d64)
			got, w := logits.Argmax(), want32.Argmax()
			classes := map[int]bool{}
			for i := range got {
				classes[w[i]] = true
				if got[i] != w[i] {
					t.Errorf("sample %d: predicted %d, PyTorch %d", i, got[i], w[i])
				}
			}
			if len(classes) < 4 {
				t.Errorf("PyTorch predicts only %d distinct classes: the fixture proves little", len(classes))
			}

			// Backward: cross-entropy gradients in the input for the first samples,
			// at label (argmax+1) mod 10 as in make_fixtures.py.
			wantLoss := readNPYFile(t, fx.name+".loss64.npy")
			wantGrad := readNPYFile(t, fx.name+".grad64.npy")
			n := wantLoss.Len()
			xs := sliceRows(x, 0, n)
			labels := make([]int, n)
			for i := range labels {
				labels[i] = (w[i] + 1) % 10
			}
			lossGrad := func(xi *Tensor, yi []int) ([]float64, *Tensor, error) {
				return g.LossGrad(xi, yi, CrossEntropy{})
			}
			var losses []float64
			var grad *Tensor
			if fx.batch == -1 {
				losses, grad, err = lossGrad(xs, labels)
			} else {
				grad = NewTensor(xs.Shape...)
				per := xs.Len() / n
				for i := 0; i < n && err == nil; i++ {
					var l []float64
					var gi *Tensor
					l, gi, err = lossGrad(xs.Row(i), labels[i:i+1])
					if err == nil {
						losses = append(losses, l[0])
						copy(grad.Data[i*per:], gi.Data)
					}
				}
			}
			if err != nil {
				t.Fatalf("LossGrad: %v", err)
			}
			dl := compare(t, "losses vs float64 PyTorch", FromData(losses, n), wantLoss, tolFloat64)
			dg := compare(t, "input gradients vs float64 PyTorch", grad, wantGrad, tolFloat64)
			t.Logf("max |loss − PyTorch| %.3g, max |∂loss/∂x − PyTorch| %.3g", dl, dg)
		})
	}
}
