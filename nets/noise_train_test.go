package nets

import (
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
)

// trainNoisyMLP trains a 16-8-3 MLP on fixed random data with Gaussian augmentation
// σ, in chunks of 4 rows so that batches run on several goroutines, and returns
// its params.
func trainNoisyMLP(t *testing.T, sigma float64) map[string]*Tensor {
	t.Helper()
	r := rand.New(rand.NewPCG(11, 12))
	g, err := MLP(r, []int{1, 4, 4}, 8, 3)
	if err != nil {
		t.Fatal(err)
	}
	const n = 50
	x := randTensor(r, n, 1, 4, 4)
	y := make([]int, n)
	for i := range y {
		y[i] = r.IntN(3)
	}
	_, err = Train(g, x, y, TrainConfig{Epochs: 3, BatchSize: 16, ChunkSize: 4, Optimizer: NewAdam(),
		Schedule: CosineLR(1e-2, 2), Rand: r, NoiseSigma: sigma})
	if err != nil {
		t.Fatal(err)
	}
	return g.Params
}

// With noise, the same seed still gives bit-identical weights run after run and on 1
// or 2 cores; σ > 0 changes the weights, and σ = 0 is plain training.
func TestTrainNoiseDeterministic(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	runtime.GOMAXPROCS(2)
	two := trainNoisyMLP(t, 0.3)
	again := trainNoisyMLP(t, 0.3)
	clean := trainNoisyMLP(t, 0)
	runtime.GOMAXPROCS(1)
	one := trainNoisyMLP(t, 0.3)
	changed := false
	for _, name := range sortedKeys(two) {
		p := two[name].Data
		if !sameBits(p, again[name].Data) {
			t.Errorf("%s: two runs with the same seed and σ differ", name)
		}
		if !sameBits(p, one[name].Data) {
			t.Errorf("%s: GOMAXPROCS 2 and 1 differ", name)
		}
		if !sameBits(p, clean[name].Data) {
			changed = true
		}
	}
	if !changed {
		t.Error("σ = 0.3 gives the same weights as σ = 0")
	}
}

// One full-batch SGD step with noise σ equals one step without noise on the batch
// the documentation promises: rows in the order of the epoch's Perm, plus σ·z with z
// drawn from the same generator right after it, row-major. Only the summation order
// of the gradient differs (Train shuffles the given batch again), so the weights agree
// to rounding.
func TestTrainNoiseIsDocumentedDraw(t *testing.T) {
	const n, d, k, lr, sigma = 24, 5, 3, 0.5, 0.7
	data := rand.New(rand.NewPCG(21, 22))
	x := randTensor(data, n, d)
	y := make([]int, n)
	for i := range y {
		y[i] = data.IntN(k)
	}
	init := func() *Graph {
		g, err := MLP(rand.New(rand.NewPCG(23, 24)), []int{d}, k)
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	noisy := init()
	if _, err := Train(noisy, x, y, TrainConfig{Epochs: 1, BatchSize: n, ChunkSize: 5, Optimizer: &SGD{},
		Schedule: ConstantLR(lr), Rand: rand.New(rand.NewPCG(25, 26)), NoiseSigma: sigma}); err != nil {
		t.Fatal(err)
	}
	// The same draws by hand.
	r := rand.New(rand.NewPCG(25, 26))
	perm := r.Perm(n)
	xb := NewTensor(n, d)
	yb := make([]int, n)
	for i, j := range perm {
		for c := 0; c < d; c++ {
			xb.Data[i*d+c] = x.Data[j*d+c]
		}
		yb[i] = y[j]
	}
	for i := range xb.Data {
		xb.Data[i] += sigma * r.NormFloat64()
	}
	manual := init()
	if _, err := Train(manual, xb, yb, TrainConfig{Epochs: 1, BatchSize: n, ChunkSize: 5, Optimizer: &SGD{},
		Schedule: ConstantLR(lr), Rand: rand.New(rand.NewPCG(1, 1))}); err != nil {
		t.Fatal(err)
	}
	clean := init()
	if _, err := Train(clean, x, y, TrainConfig{Epochs: 1, BatchSize: n, ChunkSize: 5, Optimizer: &SGD{},
		Schedule: ConstantLR(lr), Rand: rand.New(rand.NewPCG(25, 26))}); err != nil {
		t.Fatal(err)
	}
	for _, name := range sortedKeys(noisy.Params) {
		far := 0.0
		for i, v := range noisy.Params[name].Data {
			if want := manual.Params[name].Data[i]; math.Abs(v-want) > 1e-12 {
				t.Errorf("%s[%d] = %.15g, want %.15g (the hand-noised batch)", name, i, v, want)
			}
			far = max(far, math.Abs(v-clean.Params[name].Data[i]))
		}
		if far < 1e-3 {
			t.Errorf("%s: noisy and clean steps differ by at most %g", name, far)
		}
	}
}

// Gaussian augmentation does what it is for (Cohen et al. 2019): an MLP trained
// on 600 MNIST digits with σ = 1 noise classifies the other 400 under that noise
// much better than the same MLP trained on clean digits (about 65% against 46%), and
// still classifies them clean.
func TestTrainNoiseHelpsOnNoisyInputs(t *testing.T) {
	x, err := ReadNPY("../testdata/mnist-test-1k.npy")
	if err != nil {
		t.Fatal(err)
	}
	lab, err := ReadNPY("../testdata/mnist-test-1k-labels.npy")
	if err != nil {
		t.Fatal(err)
	}
	const nTrain, sigma = 600, 1.0
	y := make([]int, len(lab.Data))
	for i, v := range lab.Data {
		y[i] = int(v)
	}
	trainX, testX := sliceRows(x, 0, nTrain), sliceRows(x, nTrain, len(y))
	trainY, testY := y[:nTrain], y[nTrain:]
	noisyX := testX.Clone()
	addGaussianNoise(noisyX.Data, sigma, rand.New(rand.NewPCG(31, 32)))

	acc := map[float64][2]float64{} // σ of training → clean, noisy test accuracy
	for _, s := range []float64{0, sigma} {
		r := rand.New(rand.NewPCG(33, 34))
		g, err := MLP(r, []int{1, 28, 28}, 32, 10)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Train(g, trainX, trainY, TrainConfig{Epochs: 30, BatchSize: 50, Optimizer: NewAdam(),
			Schedule: ConstantLR(2e-3), Rand: r, NoiseSigma: s}); err != nil {
			t.Fatal(err)
		}
		c, err := Accuracy(g, testX, testY, 400)
		if err != nil {
			t.Fatal(err)
		}
		nz, err := Accuracy(g, noisyX, testY, 400)
		if err != nil {
			t.Fatal(err)
		}
		acc[s] = [2]float64{c, nz}
	}
	t.Logf("trained clean: clean %.3f, noisy %.3f; trained σ=%g: clean %.3f, noisy %.3f",
		acc[0][0], acc[0][1], sigma, acc[sigma][0], acc[sigma][1])
	if acc[sigma][1] < acc[0][1]+0.1 {
		t.Errorf("noisy accuracy %.3f with augmentation, %.3f without: want at least 10 points better", acc[sigma][1], acc[0][1])
	}
	if acc[sigma][0] < 0.75 || acc[0][0] < 0.75 {
		t.Errorf("clean accuracy %.3f with augmentation, %.3f without: want ≥ 0.75", acc[sigma][0], acc[0][0])
	}
}

func TestTrainNoiseSigmaErrors(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	g, err := MLP(r, []int{2}, 2)
	if err != nil {
		t.Fatal(err)
	}
	x := NewTensor(4, 2)
	y := []int{0, 1, 0, 1}
	for _, s := range []float64{-0.1, math.NaN(), math.Inf(1)} {
		_, err := Train(g, x, y, TrainConfig{Epochs: 1, BatchSize: 2, Optimizer: &SGD{},
			Schedule: ConstantLR(0.1), Rand: r, NoiseSigma: s})
		if err == nil || !strings.Contains(err.Error(), "noise σ") {
			t.Errorf("σ %v: error %v, want one about the noise σ", s, err)
		}
	}
}
