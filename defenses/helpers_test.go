package defenses

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certify-dev/certify/nets"
)

// Test helpers shared by the defenses tests: the shipped data and networks, spec
// files, small seeded networks and training configurations.

// testMNIST returns rows [lo,hi) of the shipped 1000 MNIST test images
// (testdata/mnist-test-1k.npy, [n,1,28,28] in [0,1]) and their labels.
func testMNIST(t testing.TB, lo, hi int) (*nets.Tensor, []int) {
	t.Helper()
	x, err := nets.ReadNPY("../testdata/mnist-test-1k.npy")
	if err != nil {
		t.Fatal(err)
	}
	yt, err := nets.ReadNPY("../testdata/mnist-test-1k-labels.npy")
	if err != nil {
		t.Fatal(err)
	}
	per := x.Len() / x.Shape[0]
	xs := nets.FromData(append([]float64(nil), x.Data[lo*per:hi*per]...), append([]int{hi - lo}, x.Shape[1:]...)...)
	y := make([]int, hi-lo)
	for i := range y {
		y[i] = int(yt.Data[lo+i])
	}
	return xs, y
}

// testData is testMNIST's rows [lo,hi) as training Data.
func testData(t testing.TB, lo, hi int) Data {
	t.Helper()
	x, y := testMNIST(t, lo, hi)
	return Data{X: x, Labels: y}
}

// testGraph reads a shipped network from testdata.
func testGraph(t testing.TB, name string) *nets.Graph {
	t.Helper()
	g, err := nets.ReadONNX(filepath.Join("..", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// testCNN is the shipped undefended CNN, testdata/mnist_cnn.onnx.
func testCNN(t testing.TB) *nets.Graph {
	t.Helper()
	return testGraph(t, "mnist_cnn.onnx")
}

// testAbs is the absolute path of a shipped network, for specs in temp folders.
func testAbs(t testing.TB, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// cnnPath is the shipped CNN, absolute, for specs written to temporary folders.
func cnnPath(t testing.TB) string {
	t.Helper()
	return testAbs(t, "mnist_cnn.onnx")
}

// writeSpec writes a spec file into dir and returns its path.
func writeSpec(t testing.TB, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// testMLP is a small 784-h-10 MLP with seeded He initialisation.
func testMLP(t testing.TB, seed uint64, h int) *nets.Graph {
	t.Helper()
	g, err := nets.MLP(rand.New(rand.NewPCG(seed, 1)), []int{1, 28, 28}, h, 10)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// testConfig is Adam at lr with a seeded shuffle.
func testConfig(epochs, batch int, lr float64, seed uint64) nets.TrainConfig {
	return nets.TrainConfig{Epochs: epochs, BatchSize: batch, Optimizer: nets.NewAdam(),
		Schedule: nets.ConstantLR(lr), Rand: rand.New(rand.NewPCG(seed, 2))}
}

// testLoss is the per-row loss of m's logits on x.
func testLoss(t testing.TB, m nets.Classifier, x *nets.Tensor, labels []int, loss nets.Loss) []float64 {
	t.Helper()
	z, err := m.Logits(x)
	if err != nil {
		t.Fatal(err)
	}
	v, _, err := loss.Eval(z, labels)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// specErrors loads each spec body, written to a fresh temporary folder, and wants
// an error containing the given text.
func specErrors(t *testing.T, cases []struct{ name, body, want string }) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Load(writeSpec(t, t.TempDir(), "spec.json", c.body))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Load: error %v; want one containing %q", err, c.want)
			}
		})
	}
}

// testDirection draws a direction u of x's shape, standard normal from r in
// row-major order, for central differences along it: it returns u, x + h·u and
// x − h·u.
func testDirection(r *rand.Rand, x *nets.Tensor, h float64) (u, xp, xm *nets.Tensor) {
	u = nets.NewTensor(x.Shape...)
	for i := range u.Data {
		u.Data[i] = r.NormFloat64()
	}
	xp, xm = x.Clone(), x.Clone()
	for i := range u.Data {
		xp.Data[i] += h * u.Data[i]
		xm.Data[i] -= h * u.Data[i]
	}
	return u, xp, xm
}

// rowDots is ⟨g_i, u_i⟩ for every row i of two batches of one shape: the
// directional derivatives along u of a per-row loss with input gradient g.
func rowDots(g, u *nets.Tensor) []float64 {
	n := g.Shape[0]
	per := g.Len() / n
	out := make([]float64, n)
	for i := range out {
		an := 0.0
		for j := i * per; j < (i+1)*per; j++ {
			an += g.Data[j] * u.Data[j]
		}
		out[i] = an
	}
	return out
}

// testLogits is m's logits on x.
func testLogits(t testing.TB, m nets.Classifier, x *nets.Tensor) *nets.Tensor {
	t.Helper()
	z, err := m.Logits(x)
	if err != nil {
		t.Fatal(err)
	}
	return z
}

// maxAbsDiff is max_i |a_i − b_i| over the indices of a.
func maxAbsDiff(a, b []float64) float64 {
	m := 0.0
	for i := range a {
		m = math.Max(m, math.Abs(a[i]-b[i]))
	}
	return m
}

// testAccuracy is the fraction of rows of x that m classifies as labelled.
func testAccuracy(t testing.TB, m nets.Classifier, x *nets.Tensor, y []int) float64 {
	t.Helper()
	ok := 0
	for i, c := range testLogits(t, m, x).Argmax() {
		if c == y[i] {
			ok++
		}
	}
	return float64(ok) / float64(len(y))
}
