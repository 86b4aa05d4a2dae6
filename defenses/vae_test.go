package defenses

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/certify-dev/certify/nets"
)

// genRandImages returns n images of shape [c,h,w] with pixels uniform in [0,1].
func genRandImages(r *rand.Rand, n int, shape ...int) *nets.Tensor {
	x := nets.NewTensor(append([]int{n}, shape...)...)
	for i := range x.Data {
		x.Data[i] = r.Float64()
	}
	return x
}

// vaeLoss is the mean negative ELBO of lossGrad, recomputed from its definition
// with plain loops over the weights (no graphs): the independent check of the
// backpropagation.
func vaeLossByHand(w map[string]*nets.Tensor, x, eps *nets.Tensor) float64 {
	dense := func(name string, in []float64) []float64 {
		W, b := w[name+".weight"], w[name+".bias"]
		out := make([]float64, W.Shape[0])
		for o := range out {
			s := b.Data[o]
			for i, v := range in {
				s += W.Data[o*W.Shape[1]+i] * v
			}
			out[o] = s
		}
		return out
	}
	relu := func(v []float64) []float64 {
		for i := range v {
			v[i] = math.Max(v[i], 0)
		}
		return v
	}
	n, per, k := x.Shape[0], x.Len()/x.Shape[0], eps.Shape[1]
	var total float64
	for i := range n {
		xi := x.Data[i*per : (i+1)*per]
		h := relu(dense("enc.fc1", xi))
		mu, lv := dense("enc.mu", h), dense("enc.logvar", h)
		z := make([]float64, k)
		for j := range z {
			z[j] = mu[j] + math.Exp(lv[j]/2)*eps.Data[i*k+j]
			total += -0.5 * (1 + lv[j] - mu[j]*mu[j] - math.Exp(lv[j]))
		}
		a := dense("dec.fc2", relu(dense("dec.fc1", z)))
		for j, aj := range a {
			p := 1 / (1 + math.Exp(-aj))
			total -= xi[j]*math.Log(p) + (1-xi[j])*math.Log(1-p)
		}
	}
	return total / float64(n)
}

func TestVAELossGradFiniteDifferences(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	v, err := newVAE(r, []int{1, 3, 3}, 5, 2)
	if err != nil {
		t.Fatal(err)
	}
	w := map[string]*nets.Tensor{}
	for i, name := range v.names {
		w[name] = v.params[i]
	}
	x := genRandImages(r, 20, 1, 3, 3) // more rows than one chunk
	eps := nets.NewTensor(20, 2)
	for i := range eps.Data {
		eps.Data[i] = r.NormFloat64()
	}
	loss, grads, err := v.lossGrad(x, eps)
	if err != nil {
		t.Fatal(err)
	}
	if want := vaeLossByHand(w, x, eps); math.Abs(loss-want) > 1e-9*math.Abs(want) {
		t.Fatalf("loss %v, recomputed %v", loss, want)
	}
	const h = 1e-6
	for i, name := range v.names {
		p := v.params[i]
		for j := range p.Data {
			old := p.Data[j]
			p.Data[j] = old + h
			up := vaeLossByHand(w, x, eps)
			p.Data[j] = old - h
			down := vaeLossByHand(w, x, eps)
			p.Data[j] = old
			fd := (up - down) / (2 * h)
			if g := grads[i].Data[j]; math.Abs(g-fd) > 1e-5*(1+math.Abs(fd)) {
				t.Errorf("%s[%d]: gradient %v, finite difference %v", name, j, g, fd)
			}
		}
	}
}

// TestVAEKLClosedForm checks the KL term and its gradient against numerical
// integration of ∫ q log(q/p) for q = N(μ, e^λ), p = N(0, 1), one dimension at a
// time, and against finite differences.
func TestVAEKLClosedForm(t *testing.T) {
	for _, c := range []struct{ mu, lv float64 }{{0, 0}, {1, 0}, {-2, 0.5}, {0.3, -3}, {2.5, 1.2}} {
		kl, dmu, dlv := gaussianKL([]float64{c.mu}, []float64{c.lv})
		sd := math.Exp(c.lv / 2)
		logN := func(t, m, s float64) float64 {
			return -0.5*math.Log(2*math.Pi) - math.Log(s) - (t-m)*(t-m)/(2*s*s)
		}
		// Simpson's rule on μ ± 12σ.
		const steps = 20000
		lo, hi := c.mu-12*sd, c.mu+12*sd
		step := (hi - lo) / steps
		var integral float64
		for i := 0; i <= steps; i++ {
			tt := lo + float64(i)*step
			f := math.Exp(logN(tt, c.mu, sd)) * (logN(tt, c.mu, sd) - logN(tt, 0, 1))
			wt := 2.0
			if i == 0 || i == steps {
				wt = 1
			} else if i%2 == 1 {
				wt = 4
			}
			integral += wt * f
		}
		integral *= step / 3
		if math.Abs(kl-integral) > 1e-8 {
			t.Errorf("μ %v, log σ² %v: KL %v, integral %v", c.mu, c.lv, kl, integral)
		}
		const h = 1e-6
		klAt := func(m, l float64) float64 { v, _, _ := gaussianKL([]float64{m}, []float64{l}); return v }
		if fd := (klAt(c.mu+h, c.lv) - klAt(c.mu-h, c.lv)) / (2 * h); math.Abs(fd-dmu[0]) > 1e-6 {
			t.Errorf("μ %v, log σ² %v: dKL/dμ %v, finite difference %v", c.mu, c.lv, dmu[0], fd)
		}
		if fd := (klAt(c.mu, c.lv+h) - klAt(c.mu, c.lv-h)) / (2 * h); math.Abs(fd-dlv[0]) > 1e-6 {
			t.Errorf("μ %v, log σ² %v: dKL/dλ %v, finite difference %v", c.mu, c.lv, dlv[0], fd)
		}
	}
	// Dimensions add up.
	kl, _, _ := gaussianKL([]float64{1, -2}, []float64{0, 0.5})
	a, _, _ := gaussianKL([]float64{1}, []float64{0})
	b, _, _ := gaussianKL([]float64{-2}, []float64{0.5})
	if math.Abs(kl-(a+b)) > 1e-12 {
		t.Errorf("KL of two dimensions %v, sum of each %v", kl, a+b)
	}
}

// genMNIST returns the first n training images and the first m test images.
func genMNIST(t *testing.T, n, m int) (train, test *nets.Tensor) {
	t.Helper()
	dir, err := nets.FindMNIST()
	if err != nil {
		t.Fatal(err)
	}
	xtr, _, err := nets.LoadMNIST(dir, "train")
	if err != nil {
		t.Fatal(err)
	}
	xte, _ := testMNIST(t, 0, m)
	return rowsOf(xtr, 0, n).Clone(), xte
}

// genMSE is the mean over all pixels of (a − b)².
func genMSE(a, b *nets.Tensor) float64 {
	var s float64
	for i, v := range a.Data {
		d := v - b.Data[i]
		s += d * d
	}
	return s / float64(len(a.Data))
}

// TestVAEReconstructs trains a small VAE on 3000 MNIST digits for two epochs and
// checks that it reconstructs held-out digits better than the mean training image
// does, that the graph survives ONNX export, and that a seed gives the same weights.
func TestVAEReconstructs(t *testing.T) {
	train, test := genMNIST(t, 3000, 200)
	cfg := VAEConfig{Hidden: 128, Latent: 16, Epochs: 2, Batch: 32, LR: 3e-3, Seed: 7}
	start := time.Now()
	p, err := TrainVAE(Data{X: train}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	rec, err := p.Logits(test)
	if err != nil {
		t.Fatal(err)
	}
	mean := nets.NewTensor(test.Shape...)
	per := train.Len() / train.Shape[0]
	for i, v := range train.Data {
		mean.Data[i%per] += v / float64(train.Shape[0])
	}
	for i := per; i < mean.Len(); i++ {
		mean.Data[i] = mean.Data[i%per]
	}
	mse, base := genMSE(rec, test), genMSE(mean, test)
	t.Logf("VAE %+v on %d images: %v (%.0f images/s); held-out MSE %.4f, mean image %.4f",
		cfg, train.Shape[0], took, float64(cfg.Epochs*train.Shape[0])/took.Seconds(), mse, base)
	if mse > 0.6*base {
		t.Errorf("reconstruction MSE %.4f; want well below the mean image's %.4f", mse, base)
	}

	path := filepath.Join(t.TempDir(), "vae.onnx")
	if err := nets.WriteONNX(p, path); err != nil {
		t.Fatal(err)
	}
	back, err := nets.ReadONNX(path)
	if err != nil {
		t.Fatal(err)
	}
	rec2, err := back.Logits(test)
	if err != nil {
		t.Fatal(err)
	}
	if d := maxAbsDiff(rec.Data, rec2.Data); d > 1e-4 {
		t.Errorf("ONNX round trip changes the reconstruction by %v (float32 weights)", d)
	}

	cfg.Epochs = 1
	small := Data{X: rowsOf(train, 0, 200).Clone()}
	a, err := TrainVAE(small, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	b, err := TrainVAE(small, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for name, w := range a.Params {
		if d := maxAbsDiff(w.Data, b.Params[name].Data); d != 0 {
			t.Errorf("same seed, weight %s differs by %v between all cores and one", name, d)
		}
	}
}

func TestVAEConfigErrors(t *testing.T) {
	x := genRandImages(rand.New(rand.NewPCG(1, 1)), 4, 1, 2, 2)
	for _, c := range []struct {
		cfg  VAEConfig
		x    *nets.Tensor
		want string
	}{
		{VAEConfig{Hidden: 0, Latent: 2, Epochs: 1, Batch: 2, LR: 1e-3}, x, "want positive"},
		{VAEConfig{Hidden: 3, Latent: 2, Epochs: 1, Batch: 2, LR: math.NaN()}, x, "learning rate"},
		{VAEConfig{Hidden: 3, Latent: 2, Epochs: 1, Batch: 2, LR: 1e-3}, nets.FromData([]float64{2, 0, 0, 0}, 1, 1, 2, 2), "outside [0,1]"},
	} {
		_, err := TrainVAE(Data{X: c.x}, c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v; want one mentioning %q", c.cfg, err, c.want)
		}
	}
}
