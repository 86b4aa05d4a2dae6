package defenses

import (
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/certify-dev/certify/nets"
)

// TestGANLossClosedForms checks the discriminator's and the non-saturating
// generator's losses on hand logits against −log σ(a) and −log(1 − σ(a)), and the
// gradient against σ(a) − y.
func TestGANLossClosedForms(t *testing.T) {
	logits := []float64{-30, -2, 0, 0.5, 3, 40}
	for _, y := range []int{1, 0} {
		labels := make([]int, len(logits))
		for i := range labels {
			labels[i] = y
		}
		vals, grad, err := ganLoss{}.Eval(nets.FromData(logits, len(logits), 1), labels)
		if err != nil {
			t.Fatal(err)
		}
		for i, a := range logits {
			s := 1 / (1 + math.Exp(-a))
			want := -math.Log(s) // real: −log D(x)
			if y == 0 {
				want = -math.Log1p(-s) // fake: −log(1 − D(G(z)))
			}
			if math.IsInf(want, 0) { // 1 − σ(40) rounds to 0: use the asymptote a
				want = a
			}
			if math.Abs(vals[i]-want) > 1e-12*(1+math.Abs(want)) {
				t.Errorf("label %d, logit %v: loss %v, want %v", y, a, vals[i], want)
			}
			if g := grad.Data[i]; math.Abs(g-(s-float64(y))) > 1e-15 {
				t.Errorf("label %d, logit %v: gradient %v, want %v", y, a, g, s-float64(y))
			}
		}
	}
	// Hand values: softplus(0) = log 2, softplus(−2) = log(1 + e⁻²).
	vals, _, err := ganLoss{}.Eval(nets.FromData([]float64{0, 2}, 2, 1), []int{1, 1})
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(vals[0]-math.Ln2) > 1e-15 || math.Abs(vals[1]-math.Log(1+math.Exp(-2))) > 1e-15 {
		t.Errorf("losses %v; want [log 2, log(1+e⁻²)]", vals)
	}
	if _, _, err := (ganLoss{}).Eval(nets.FromData([]float64{0}, 1, 1), []int{2}); err == nil {
		t.Error("label 2 accepted")
	}
}

// TestGANGeneratorGradFiniteDifferences checks the generator's gradient through
// the discriminator against finite differences of the mean loss.
func TestGANGeneratorGradFiniteDifferences(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	gen, disc, err := newGAN(r, []int{1, 3, 3}, 6, 3)
	if err != nil {
		t.Fatal(err)
	}
	z := genNormal(r, 20, 3)
	meanLoss := func() float64 {
		x, err := gen.Logits(z)
		if err != nil {
			t.Fatal(err)
		}
		a, err := disc.Logits(x)
		if err != nil {
			t.Fatal(err)
		}
		var s float64
		for _, v := range a.Data {
			s += -math.Log(1 / (1 + math.Exp(-v)))
		}
		return s / float64(len(a.Data))
	}
	loss, grads, err := generatorGrad(gen, disc, z)
	if err != nil {
		t.Fatal(err)
	}
	if want := meanLoss(); math.Abs(loss-want) > 1e-12 {
		t.Fatalf("loss %v, recomputed %v", loss, want)
	}
	const h = 1e-6
	for i, name := range gen.Trainable {
		p := gen.Params[name]
		for j := range p.Data {
			old := p.Data[j]
			p.Data[j] = old + h
			up := meanLoss()
			p.Data[j] = old - h
			down := meanLoss()
			p.Data[j] = old
			if fd := (up - down) / (2 * h); math.Abs(grads[i].Data[j]-fd) > 1e-6*(1+math.Abs(fd)) {
				t.Errorf("%s[%d]: gradient %v, finite difference %v", name, j, grads[i].Data[j], fd)
			}
		}
	}
}

// TestGANTrains trains a small GAN on 3000 MNIST digits for two epochs and checks
// that its samples moved towards the data: the mean of 500 generated images is at
// least 4× closer (in MSE) to the mean digit than before training. (It does not
// check diversity: that takes thousands of steps; see TestDefenseGANMeasure.)
func TestGANTrains(t *testing.T) {
	train, _ := genMNIST(t, 3000, 1)
	cfg := GANConfig{Hidden: 128, Latent: 16, Epochs: 2, Batch: 16, LR: 2e-4, Seed: 5}
	start := time.Now()
	g, err := TrainGAN(Data{X: train}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	// The untrained generator of the same seed.
	g0, _, err := newGAN(rand.New(rand.NewPCG(cfg.Seed, 0x67616e0a)), []int{1, 28, 28}, cfg.Hidden, cfg.Latent)
	if err != nil {
		t.Fatal(err)
	}
	per := 784
	dataMean := make([]float64, per)
	for i, v := range train.Data {
		dataMean[i%per] += v / float64(train.Shape[0])
	}
	dist := func(gr *nets.Graph) float64 {
		x, err := gr.Logits(genNormal(rand.New(rand.NewPCG(9, 9)), 500, cfg.Latent))
		if err != nil {
			t.Fatal(err)
		}
		m := make([]float64, per)
		for i, v := range x.Data {
			m[i%per] += v / 500
		}
		var s float64
		for i, v := range m {
			s += (v - dataMean[i]) * (v - dataMean[i])
		}
		return s / float64(per)
	}
	before, after := dist(g0), dist(g)
	t.Logf("GAN %+v on %d images: %v (%.0f images/s); mean-image MSE to data %.4f before, %.4f after",
		cfg, train.Shape[0], took, float64(cfg.Epochs*train.Shape[0])/took.Seconds(), before, after)
	if after > 0.25*before {
		t.Errorf("mean generated image MSE to the data mean %.4f after training, %.4f before; want a 4× drop", after, before)
	}
}

// TestGANDeterministic checks that a seed gives the same generator on one core as
// on all of them.
func TestGANDeterministic(t *testing.T) {
	x := genRandImages(rand.New(rand.NewPCG(6, 6)), 100, 1, 5, 5)
	cfg := GANConfig{Hidden: 8, Latent: 3, Epochs: 2, Batch: 40, LR: 1e-3, Seed: 3}
	a, err := TrainGAN(Data{X: x}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	b, err := TrainGAN(Data{X: x}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for name, w := range a.Params {
		if d := maxAbsDiff(w.Data, b.Params[name].Data); d != 0 {
			t.Errorf("weight %s differs by %v between GOMAXPROCS %d and 1", name, d, runtime.NumCPU())
		}
	}
	cfg.Seed = 4
	c, err := TrainGAN(Data{X: x}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if maxAbsDiff(a.Params["gen.fc2.weight"].Data, c.Params["gen.fc2.weight"].Data) == 0 {
		t.Error("seeds 3 and 4 give the same generator")
	}
}
