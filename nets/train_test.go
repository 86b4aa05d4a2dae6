package nets

import (
	"math"
	"math/rand/v2"
	"runtime"
	"sort"
	"strings"
	"testing"
)

// One full-batch SGD step through Train equals the hand-derived gradient of mean
// softmax cross-entropy for a linear model z = W·x + b:
// ∂L/∂W = (1/N) Σ (p − e_y) xᵀ, ∂L/∂b = (1/N) Σ (p − e_y), p = softmax(z).
func TestTrainOneSGDStep(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	const n, d, k, lr = 40, 3, 4, 0.5
	g, err := MLP(r, []int{d}, k)
	if err != nil {
		t.Fatal(err)
	}
	for i := range g.Params["fc1.bias"].Data {
		g.Params["fc1.bias"].Data[i] = r.NormFloat64()
	}
	x := randTensor(r, n, d)
	y := make([]int, n)
	for i := range y {
		y[i] = r.IntN(k)
	}
	w0 := g.Params["fc1.weight"].Clone()
	b0 := g.Params["fc1.bias"].Clone()
	// Hand computation.
	dW := make([]float64, k*d)
	db := make([]float64, k)
	wantLoss := 0.0
	for i := 0; i < n; i++ {
		z := make([]float64, k)
		for c := 0; c < k; c++ {
			z[c] = b0.Data[c]
			for j := 0; j < d; j++ {
				z[c] += w0.Data[c*d+j] * x.Data[i*d+j]
			}
		}
		s := 0.0
		for _, v := range z {
			s += math.Exp(v)
		}
		wantLoss += math.Log(s) - z[y[i]]
		for c := 0; c < k; c++ {
			e := math.Exp(z[c]) / s
			if c == y[i] {
				e--
			}
			db[c] += e / n
			for j := 0; j < d; j++ {
				dW[c*d+j] += e * x.Data[i*d+j] / n
			}
		}
	}
	stats, err := Train(g, x, y, TrainConfig{Epochs: 1, BatchSize: n, ChunkSize: 16,
		Optimizer: &SGD{}, Schedule: ConstantLR(lr), Rand: rand.New(rand.NewPCG(1, 1))})
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range g.Params["fc1.weight"].Data {
		if want := w0.Data[i] - lr*dW[i]; math.Abs(v-want) > 1e-13 {
			t.Errorf("W[%d] = %.15g, want %.15g", i, v, want)
		}
	}
	for i, v := range g.Params["fc1.bias"].Data {
		if want := b0.Data[i] - lr*db[i]; math.Abs(v-want) > 1e-13 {
			t.Errorf("b[%d] = %.15g, want %.15g", i, v, want)
		}
	}
	if math.Abs(stats[0].Loss-wantLoss/n) > 1e-12 {
		t.Errorf("epoch loss %v, want %v", stats[0].Loss, wantLoss/n)
	}
}

// separable returns n points of R² labelled by the side of the line x₁ + 2x₂ = 0.5,
// none closer to it than 0.3.
func separable(r *rand.Rand, n int) (*Tensor, []int) {
	x := NewTensor(n, 2)
	y := make([]int, n)
	for i := 0; i < n; {
		a, b := 4*r.Float64()-2, 4*r.Float64()-2
		s := (a + 2*b - 0.5) / math.Sqrt(5)
		if math.Abs(s) < 0.3 {
			continue
		}
		x.Data[2*i], x.Data[2*i+1] = a, b
		if s > 0 {
			y[i] = 1
		}
		i++
	}
	return x, y
}

// Logistic regression on linearly separable data reaches 100% accuracy, with each
// optimizer.
func TestTrainSeparable(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  Optimizer
		lr   float64
	}{
		{"sgd", &SGD{Momentum: 0.9}, 0.5},
		{"adam", NewAdam(), 0.1},
	} {
		r := rand.New(rand.NewPCG(5, 6))
		x, y := separable(r, 300)
		g, err := MLP(r, []int{2}, 2)
		if err != nil {
			t.Fatal(err)
		}
		stats, err := Train(g, x, y, TrainConfig{Epochs: 60, BatchSize: 30, Optimizer: tc.opt,
			Schedule: ConstantLR(tc.lr), Rand: r})
		if err != nil {
			t.Fatal(err)
		}
		acc, err := Accuracy(g, x, y, 64)
		if err != nil {
			t.Fatal(err)
		}
		if acc != 1 {
			t.Errorf("%s: accuracy %v after %d epochs (last epoch loss %.4f), want 1", tc.name, acc, len(stats), stats[len(stats)-1].Loss)
		}
		if last := stats[len(stats)-1]; last.Loss >= stats[0].Loss {
			t.Errorf("%s: loss went from %v to %v", tc.name, stats[0].Loss, last.Loss)
		}
	}
}

// trainSmall trains a small net of the given kind and returns its params.
func trainSmall(t *testing.T, kind string, chunk int) map[string]*Tensor {
	t.Helper()
	r := rand.New(rand.NewPCG(9, 10))
	var g *Graph
	var err error
	var x *Tensor
	n := 50
	switch kind {
	case "mlp":
		g, err = MLP(r, []int{1, 4, 4}, 8, 3)
		x = randTensor(r, n, 1, 4, 4)
	case "cnn":
		g, err = MNISTCNN(r)
		n = 20
		x = randTensor(r, n, 1, 28, 28)
	}
	if err != nil {
		t.Fatal(err)
	}
	y := make([]int, n)
	for i := range y {
		y[i] = r.IntN(3)
	}
	_, err = Train(g, x, y, TrainConfig{Epochs: 2, BatchSize: 16, ChunkSize: chunk, Optimizer: NewAdam(),
		Schedule: CosineLR(1e-2, 2), Rand: r})
	if err != nil {
		t.Fatal(err)
	}
	return g.Params
}

// The same seed gives bit-identical weights, run after run and whatever the number
// of cores, and the chunk size changes only the rounding. Cross-core identity needs
// every op's backward to reduce over a partition that does not depend on GOMAXPROCS.
func TestTrainDeterministic(t *testing.T) {
	kinds := []string{"mlp", "cnn"}
	if testing.Short() {
		kinds = kinds[:1]
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, kind := range kinds {
		runtime.GOMAXPROCS(3)
		a := trainSmall(t, kind, 4)
		again := trainSmall(t, kind, 4)
		c := trainSmall(t, kind, 16)
		runtime.GOMAXPROCS(1)
		b := trainSmall(t, kind, 4)
		for _, name := range sortedKeys(a) {
			p := a[name]
			if !sameBits(p.Data, again[name].Data) {
				t.Errorf("%s %s: two runs with the same seed differ", kind, name)
			}
			if !sameBits(p.Data, b[name].Data) {
				t.Errorf("%s %s: GOMAXPROCS 3 and 1 differ", kind, name)
			}
			for i, v := range p.Data {
				if math.Abs(v-c[name].Data[i]) > 1e-9 {
					t.Errorf("%s %s[%d]: chunk 4 gives %v, chunk 16 %v", kind, name, i, v, c[name].Data[i])
					break
				}
			}
		}
	}
}

func sortedKeys(m map[string]*Tensor) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func TestTrainErrors(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	g, err := MLP(r, []int{2}, 2)
	if err != nil {
		t.Fatal(err)
	}
	x := NewTensor(4, 2)
	y := []int{0, 1, 0, 1}
	ok := TrainConfig{Epochs: 1, BatchSize: 2, Optimizer: &SGD{}, Schedule: ConstantLR(0.1), Rand: r}
	noTrainable := *g
	noTrainable.Trainable = nil
	badName := *g
	badName.Trainable = []string{"nope"}
	for _, tc := range []struct {
		name string
		g    *Graph
		x    *Tensor
		y    []int
		cfg  func(TrainConfig) TrainConfig
		want string
	}{
		{"labels", g, x, y[:3], nil, "3 labels"},
		{"epochs", g, x, y, func(c TrainConfig) TrainConfig { c.Epochs = 0; return c }, "want positive"},
		{"no optimizer", g, x, y, func(c TrainConfig) TrainConfig { c.Optimizer = nil; return c }, "must be set"},
		{"no trainable", &noTrainable, x, y, nil, "no trainable"},
		{"bad trainable", &badName, x, y, nil, `"nope" is not a param`},
		{"bad label", g, x, []int{0, 1, 2, 0}, nil, "label 2 outside"},
		{"wrong input", g, NewTensor(4, 3), y, nil, "expects shape"},
		{"diverged", g, FromData([]float64{math.NaN(), 0, 0, 0, 0, 0, 0, 0}, 4, 2), y, nil, "diverged"},
	} {
		cfg := ok
		if tc.cfg != nil {
			cfg = tc.cfg(cfg)
		}
		_, err := Train(tc.g, tc.x, tc.y, cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
}

// benchTrain reports training throughput in images/s at batch 128.
func benchTrain(b *testing.B, build func(*rand.Rand) (*Graph, error)) {
	r := rand.New(rand.NewPCG(1, 2))
	g, err := build(r)
	if err != nil {
		b.Fatal(err)
	}
	const n = 512
	x := NewTensor(n, 1, 28, 28)
	for i := range x.Data {
		x.Data[i] = r.Float64()
	}
	y := make([]int, n)
	for i := range y {
		y[i] = r.IntN(10)
	}
	cfg := TrainConfig{Epochs: 1, BatchSize: 128, Optimizer: NewAdam(), Schedule: ConstantLR(1e-3), Rand: r}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Train(g, x, y, cfg); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "images/s")
}

func BenchmarkTrainMLP(b *testing.B) {
	benchTrain(b, func(r *rand.Rand) (*Graph, error) { return MLP(r, []int{1, 28, 28}, 100, 100, 10) })
}

func BenchmarkTrainCNN(b *testing.B) { benchTrain(b, MNISTCNN) }
