package defenses

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/certify-dev/certify/attacks"
	"github.com/certify-dev/certify/nets"
)

// genTinyDefenseGAN returns a DefenseGAN over an untrained generator (latent 3) and
// MLP classifier on 1×4×4 images.
func genTinyDefenseGAN(t *testing.T, steps, restarts int, lr float64) *DefenseGAN {
	t.Helper()
	r := rand.New(rand.NewPCG(11, 12))
	gen, _, err := newGAN(r, []int{1, 4, 4}, 12, 3)
	if err != nil {
		t.Fatal(err)
	}
	f, err := nets.MLP(r, []int{1, 4, 4}, 10, 3)
	if err != nil {
		t.Fatal(err)
	}
	return &DefenseGAN{Net: f, Generator: gen, Steps: steps, Restarts: restarts, LR: lr, Seed: 99}
}

// genSqDist is ‖a − b‖².
func genSqDist(a, b []float64) float64 {
	var s float64
	for i, v := range a {
		s += (v - b[i]) * (v - b[i])
	}
	return s
}

// TestDefenseGANProjectionMonotone checks that the projection is never worse than
// any restart's starting point, and that the distance it reports is its image's.
func TestDefenseGANProjectionMonotone(t *testing.T) {
	d := genTinyDefenseGAN(t, 30, 5, 0.05)
	r := rand.New(rand.NewPCG(1, 5))
	for trial := range 5 {
		x := genRandImages(r, 1, 1, 4, 4).Data
		starts := genNormal(r, d.Restarts, 3)
		img, dist, err := d.project(x, starts)
		if err != nil {
			t.Fatal(err)
		}
		if got := genSqDist(img, x); math.Abs(got-dist) > 1e-12 {
			t.Errorf("trial %d: reported distance %v, image's %v", trial, dist, got)
		}
		g0, err := d.Generator.Logits(starts)
		if err != nil {
			t.Fatal(err)
		}
		improved := false
		for k := range d.Restarts {
			s := genSqDist(g0.Data[k*16:(k+1)*16], x)
			if dist > s {
				t.Errorf("trial %d: projection distance %v worse than restart %d's start %v", trial, dist, k, s)
			}
			improved = improved || dist < s-1e-9
		}
		if !improved {
			t.Errorf("trial %d: descent improved on no start (distance %v)", trial, dist)
		}
	}
}

// TestDefenseGANRecoversGeneratedImage checks that an image G(z₀) is found again,
// to high precision, from starts near z₀.
func TestDefenseGANRecoversGeneratedImage(t *testing.T) {
	d := genTinyDefenseGAN(t, 2000, 3, 0.2)
	r := rand.New(rand.NewPCG(2, 6))
	z0 := genNormal(r, 1, 3)
	x, err := d.Generator.Logits(z0)
	if err != nil {
		t.Fatal(err)
	}
	starts := nets.NewTensor(3, 3)
	for i := range starts.Data {
		starts.Data[i] = z0.Data[i%3] + 0.1*r.NormFloat64()
	}
	img, dist, err := d.project(x.Data, starts)
	if err != nil {
		t.Fatal(err)
	}
	if dist > 1e-12 {
		t.Errorf("‖G(z*) − G(z₀)‖² = %v from starts 0.1 away; want ≈ 0", dist)
	}
	for j, v := range img {
		if math.Abs(v-x.Data[j]) > 1e-6 {
			t.Fatalf("pixel %d: %v, want %v", j, v, x.Data[j])
		}
	}
}

// TestDefenseGANLogits checks Logits = f(G(z*)) with z* recomputed by hand from
// the documented starts, row by row, and the BPDA target's gradient = f's at the
// projection.
func TestDefenseGANLogits(t *testing.T) {
	d := genTinyDefenseGAN(t, 20, 4, 0.05)
	x := genRandImages(rand.New(rand.NewPCG(3, 7)), 6, 1, 4, 4)
	got, err := d.Logits(x)
	if err != nil {
		t.Fatal(err)
	}
	proj := nets.NewTensor(x.Shape...)
	for i := range 6 {
		row := x.Data[i*16 : (i+1)*16]
		r := InputRand(d.Seed, row)
		starts := genNormal(r, d.Restarts, 3)
		img, _, err := d.project(row, starts)
		if err != nil {
			t.Fatal(err)
		}
		copy(proj.Data[i*16:], img)
	}
	want, err := d.Net.Logits(proj)
	if err != nil {
		t.Fatal(err)
	}
	if diff := maxAbsDiff(got.Data, want.Data); diff != 0 {
		t.Errorf("Logits differ from f(G(z*)) by %v", diff)
	}
	// One row alone projects as it does in the batch.
	one, err := d.Logits(rowsOf(x, 2, 3))
	if err != nil {
		t.Fatal(err)
	}
	if diff := maxAbsDiff(one.Data, rowsOf(want, 2, 3).Data); diff != 0 {
		t.Errorf("row 2 alone differs from row 2 in the batch by %v", diff)
	}

	at, err := d.AdaptiveTarget()
	if err != nil {
		t.Fatal(err)
	}
	if at.Name != "bpda" {
		t.Errorf("adaptive target %q", at.Name)
	}
	if _, ok := at.Model.(attacks.BPDA); !ok {
		t.Errorf("adaptive model is a %T, want attacks.BPDA", at.Model)
	}
	labels := []int{0, 1, 2, 0, 1, 2}
	_, g, err := at.Model.LossGrad(x, labels, nets.CrossEntropy{})
	if err != nil {
		t.Fatal(err)
	}
	_, gf, err := d.Net.(nets.Differentiable).LossGrad(proj, labels, nets.CrossEntropy{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := maxAbsDiff(g.Data, gf.Data); diff != 0 {
		t.Errorf("BPDA gradient differs from f's gradient at G(z*) by %v", diff)
	}
	if _, ok := any(d).(nets.Differentiable); ok {
		t.Error("DefenseGAN claims gradients")
	}
}

// genSpecFiles writes a classifier and generators to dir: classifier.onnx (MLP on
// 1×28×28), gen.onnx (latent 4 → 1×28×28) and gen_small.onnx (latent 4 → 1×4×4).
func genSpecFiles(t *testing.T, dir string) {
	t.Helper()
	r := rand.New(rand.NewPCG(4, 8))
	f, err := nets.MLP(r, []int{1, 28, 28}, 8, 10)
	if err != nil {
		t.Fatal(err)
	}
	gen, _, err := newGAN(r, []int{1, 28, 28}, 8, 4)
	if err != nil {
		t.Fatal(err)
	}
	small, _, err := newGAN(r, []int{1, 4, 4}, 8, 4)
	if err != nil {
		t.Fatal(err)
	}
	for name, g := range map[string]*nets.Graph{"classifier.onnx": f, "gen.onnx": gen, "gen_small.onnx": small} {
		if err := nets.WriteONNX(g, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDefenseGANSpec(t *testing.T) {
	dir := t.TempDir()
	genSpecFiles(t, dir)
	for _, c := range []struct {
		name, params string
		want         string // "" means it loads
	}{
		{"ok", `{"generator": "gen.onnx", "steps": 3, "restarts": 2, "lr": 0.05, "seed": 4}`, ""},
		{"defaults", `{"generator": "gen.onnx"}`, ""},
		{"no-generator", `{"steps": 3}`, `no "generator"`},
		{"missing-file", `{"generator": "nope.onnx"}`, "nope.onnx: no such file"},
		{"steps-0", `{"generator": "gen.onnx", "steps": 0}`, "steps 0; want at least 1"},
		{"restarts-0", `{"generator": "gen.onnx", "restarts": 0}`, "restarts 0; want at least 1"},
		{"lr-negative", `{"generator": "gen.onnx", "lr": -1}`, "lr -1; want positive"},
		{"shape", `{"generator": "gen_small.onnx"}`, "makes images of shape [1 4 4] but the classifier takes [1 28 28]"},
		{"unknown", `{"generator": "gen.onnx", "step": 3}`, `unknown field "step"`},
	} {
		path := filepath.Join(dir, c.name+".json")
		spec := `{"kind": "defense-gan", "model": "classifier.onnx", "params": ` + c.params + `}`
		if err := os.WriteFile(path, []byte(spec), 0o644); err != nil {
			t.Fatal(err)
		}
		m, err := Load(path)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: error %v; want one containing %q", c.name, err, c.want)
		case c.want == "" && c.name == "ok":
			d := m.(*DefenseGAN)
			if d.Steps != 3 || d.Restarts != 2 || d.LR != 0.05 || d.Seed != 4 {
				t.Errorf("ok: loaded %+v", *d)
			}
		case c.want == "" && c.name == "defaults":
			d := m.(*DefenseGAN)
			if d.Steps != 200 || d.Restarts != 10 || d.LR != defaultGANLR || d.Seed != 0 {
				t.Errorf("defaults: loaded steps %d, restarts %d, lr %v, seed %d", d.Steps, d.Restarts, d.LR, d.Seed)
			}
		}
	}
}

// TestDefenseGANMeasure trains the recommended VAE and GAN on a subset of MNIST
// and measures training speed, reconstruction error, projection error by step size
// and Defense-GAN's throughput with testdata/mnist_cnn.onnx. It takes minutes, so
// it runs only with CERTIFY_MEASURE_GENERATIVE=n (n training images).
func TestDefenseGANMeasure(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("CERTIFY_MEASURE_GENERATIVE"))
	if n <= 0 {
		t.Skip("set CERTIFY_MEASURE_GENERATIVE=<training images> to measure")
	}
	train, test := genMNIST(t, n, 100)
	vcfg := VAEConfig{Hidden: 400, Latent: 20, Epochs: 1, Batch: 64, LR: 1e-3, Seed: 1}
	start := time.Now()
	p, err := TrainVAE(Data{X: train}, vcfg)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	rec, err := p.Logits(test)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("VAE %+v: %v per epoch of %d (%.0f images/s, 60k epoch ≈ %.0f s); held-out MSE %.4f",
		vcfg, took, n, float64(n)/took.Seconds(), 60000/(float64(n)/took.Seconds()), genMSE(rec, test))

	gcfg := GANConfig{Hidden: 256, Latent: 32, Epochs: 1, Batch: 32, LR: 2e-4, Seed: 1}
	start = time.Now()
	gen, err := TrainGAN(Data{X: train}, gcfg)
	if err != nil {
		t.Fatal(err)
	}
	took = time.Since(start)
	t.Logf("GAN %+v: %v per epoch of %d (%.0f images/s, 60k epoch ≈ %.0f s)",
		gcfg, took, n, float64(n)/took.Seconds(), 60000/(float64(n)/took.Seconds()))

	f := testCNN(t)
	_, labels := testMNIST(t, 0, 20)
	for _, lr := range []float64{0.01, 0.03, 0.1} {
		d := &DefenseGAN{Net: f, Generator: gen, Steps: 200, Restarts: 10, LR: lr}
		x := rowsOf(test, 0, 20)
		start = time.Now()
		z, err := d.Logits(x)
		if err != nil {
			t.Fatal(err)
		}
		took = time.Since(start)
		pr, err := d.Project(x)
		if err != nil {
			t.Fatal(err)
		}
		correct := 0
		for i := range 20 {
			if z.Row(i).Argmax()[0] == labels[i] {
				correct++
			}
		}
		t.Logf("Defense-GAN L=200 R=10 lr=%v: %.2f images/s, projection MSE %.4f, accuracy %d/20",
			lr, 20/took.Seconds(), genMSE(pr, x), correct)
	}
}
