package defenses

import (
	"context"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/certify-dev/certify/attacks"
	"github.com/certify-dev/certify/nets"
)

// genTinyDefenseVAE returns a DefenseVAE over an untrained VAE projection and an MLP
// classifier on 1×4×4 images, and the VAE and classifier themselves.
func genTinyDefenseVAE(t *testing.T) (*DefenseVAE, *vae, *nets.Graph) {
	t.Helper()
	r := rand.New(rand.NewPCG(21, 22))
	v, err := newVAE(r, []int{1, 4, 4}, 9, 3)
	if err != nil {
		t.Fatal(err)
	}
	f, err := nets.MLP(r, []int{1, 4, 4}, 10, 3)
	if err != nil {
		t.Fatal(err)
	}
	return &DefenseVAE{Net: f, Autoencoder: v.proj}, v, f
}

// TestDefenseVAELogits checks Logits = f(decoder(μ(x))), with the projection
// computed by hand through the encoder's μ and the decoder graphs.
func TestDefenseVAELogits(t *testing.T) {
	d, v, f := genTinyDefenseVAE(t)
	x := genRandImages(rand.New(rand.NewPCG(5, 5)), 7, 1, 4, 4)
	got, err := d.Logits(x)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := v.enc.Forward(map[string]*nets.Tensor{"input": x})
	if err != nil {
		t.Fatal(err)
	}
	dv, err := v.dec.Forward(map[string]*nets.Tensor{"z": ev[vaeMu]})
	if err != nil {
		t.Fatal(err)
	}
	want, err := f.Logits(dv[vaeOut])
	if err != nil {
		t.Fatal(err)
	}
	if diff := maxAbsDiff(got.Data, want.Data); diff > 1e-12 {
		t.Errorf("Logits differ from f(decoder(μ(x))) by %v", diff)
	}
}

// TestDefenseVAEGradFiniteDifferences checks LossGrad, the exact gradient through
// the autoencoder, against central differences of the loss of Logits.
func TestDefenseVAEGradFiniteDifferences(t *testing.T) {
	d, _, _ := genTinyDefenseVAE(t)
	x := genRandImages(rand.New(rand.NewPCG(6, 6)), 20, 1, 4, 4)
	labels := make([]int, 20)
	for i := range labels {
		labels[i] = i % 3
	}
	for _, loss := range []nets.Loss{nets.CrossEntropy{}, nets.Margin{}} {
		vals, g, err := d.LossGrad(x, labels, loss)
		if err != nil {
			t.Fatal(err)
		}
		lossAt := func(x *nets.Tensor) []float64 { return testLoss(t, d, x, labels, loss) }
		if diff := maxAbsDiff(vals, lossAt(x)); diff > 1e-12 {
			t.Errorf("%T: loss values differ from the loss of Logits by %v", loss, diff)
		}
		const h = 1e-6
		per := 16
		for j := range x.Data {
			row := j / per
			old := x.Data[j]
			x.Data[j] = old + h
			up := lossAt(x)[row]
			x.Data[j] = old - h
			down := lossAt(x)[row]
			x.Data[j] = old
			if fd := (up - down) / (2 * h); math.Abs(g.Data[j]-fd) > 1e-6*(1+math.Abs(fd)) {
				t.Errorf("%T: d loss/dx[%d] = %v, finite difference %v", loss, j, g.Data[j], fd)
			}
		}
	}
	at, err := d.AdaptiveTarget()
	if err != nil {
		t.Fatal(err)
	}
	if m, ok := at.Model.(*DefenseVAE); !ok || m != d || at.Name != "exact-gradient" {
		t.Errorf("adaptive target %q, a %T; want the exact chain", at.Name, at.Model)
	}
}

func TestDefenseVAESpec(t *testing.T) {
	dir := t.TempDir()
	genSpecFiles(t, dir)
	r := rand.New(rand.NewPCG(8, 8))
	big, err := newVAE(r, []int{1, 28, 28}, 6, 2)
	if err != nil {
		t.Fatal(err)
	}
	small, err := newVAE(r, []int{1, 4, 4}, 6, 2)
	if err != nil {
		t.Fatal(err)
	}
	for name, g := range map[string]*nets.Graph{"vae.onnx": big.proj, "vae_small.onnx": small.proj} {
		if err := nets.WriteONNX(g, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	x := genRandImages(r, 3, 1, 28, 28)
	for _, c := range []struct {
		name, params string
		want         string
	}{
		{"ok", `{"autoencoder": "vae.onnx"}`, ""},
		{"no-autoencoder", `{}`, `no "autoencoder"`},
		{"missing-file", `{"autoencoder": "nope.onnx"}`, "nope.onnx"},
		{"shape", `{"autoencoder": "vae_small.onnx"}`, "takes inputs of shape [1 4 4] but the classifier takes [1 28 28]"},
		{"generator", `{"autoencoder": "gen.onnx"}`, "takes inputs of shape [4] but the classifier takes [1 28 28]"},
	} {
		path := filepath.Join(dir, c.name+".json")
		spec := `{"kind": "defense-vae", "model": "classifier.onnx", "params": ` + c.params + `}`
		if err := os.WriteFile(path, []byte(spec), 0o644); err != nil {
			t.Fatal(err)
		}
		m, err := Load(path)
		if c.want != "" {
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s: error %v; want one containing %q", c.name, err, c.want)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		// The loaded wrapper computes f(P(x)) with the float32-rounded weights.
		f, err := nets.ReadONNX(filepath.Join(dir, "classifier.onnx"))
		if err != nil {
			t.Fatal(err)
		}
		p, err := nets.ReadONNX(filepath.Join(dir, "vae.onnx"))
		if err != nil {
			t.Fatal(err)
		}
		px, err := p.Logits(x)
		if err != nil {
			t.Fatal(err)
		}
		want, err := f.Logits(px)
		if err != nil {
			t.Fatal(err)
		}
		got, err := m.Logits(x)
		if err != nil {
			t.Fatal(err)
		}
		if diff := maxAbsDiff(got.Data, want.Data); diff != 0 {
			t.Errorf("loaded defense-vae differs from f(P(x)) by %v", diff)
		}
	}
}

// TestDefenseVAEMeasure trains the recommended VAE on a subset of MNIST and
// compares the two adaptive attacks on DefenseVAE over testdata/mnist_cnn.onnx:
// PGD through the exact gradient of the chain and PGD on the straight-through
// BPDA target. It runs only with CERTIFY_MEASURE_GENERATIVE=n (n training images).
func TestDefenseVAEMeasure(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("CERTIFY_MEASURE_GENERATIVE"))
	if n <= 0 {
		t.Skip("set CERTIFY_MEASURE_GENERATIVE=<training images> to measure")
	}
	train, _ := genMNIST(t, n, 1)
	const m = 200
	x, labels := testMNIST(t, 0, m)
	cfg := VAEConfig{Hidden: 400, Latent: 20, Epochs: 2, Batch: 64, LR: 1e-3, Seed: 1}
	p, err := TrainVAE(Data{X: train}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	f := testCNN(t)
	d := &DefenseVAE{Net: f, Autoencoder: p}
	acc := func(c nets.Classifier) int {
		z, err := c.Logits(x)
		if err != nil {
			t.Fatal(err)
		}
		k := 0
		for i := range m {
			if z.Row(i).Argmax()[0] == labels[i] {
				k++
			}
		}
		return k
	}
	t.Logf("VAE %+v on %d images: clean accuracy %d/%d undefended, %d/%d defended", cfg, n, acc(f), m, acc(d), m)
	bpda := attacks.BPDA{Pre: d.project, Net: f}
	for _, eps := range []float64{0.1, 0.2, 0.3} {
		pgd := attacks.NewPGD(attacks.Budget{Norm: attacks.LInf, Eps: eps, Lo: 0, Hi: 1}, 1)
		pgd.Steps, pgd.Step = 100, eps/40
		for _, c := range []struct {
			name  string
			model nets.Differentiable
		}{{"exact", d}, {"bpda", bpda}} {
			res, err := pgd.Attack(context.Background(), c.model, x, labels)
			if err != nil {
				t.Fatal(err)
			}
			robust := 0
			z, err := d.Logits(res.Adv)
			if err != nil {
				t.Fatal(err)
			}
			for i := range m {
				if z.Row(i).Argmax()[0] == labels[i] {
					robust++
				}
			}
			t.Logf("ε %.1f, PGD-100 %s gradient: defended accuracy %d/%d", eps, c.name, robust, m)
		}
	}
}
