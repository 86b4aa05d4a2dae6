package defenses

import (
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/certify-dev/certify/attacks"
	"github.com/certify-dev/certify/nets"
)

// detHead is an untrained head on the CNN's 100 hidden units.
func detHead(t testing.TB, seed uint64) *nets.Graph {
	t.Helper()
	h, err := nets.MLP(rand.New(rand.NewPCG(seed, 2)), []int{100}, 16, 2)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestActivationDetectorLogits(t *testing.T) {
	g, head := testCNN(t), detHead(t, 1)
	x, _ := testMNIST(t, 0, 40)
	// Independently: the hidden layer by a forward pass, the head by its Logits.
	vals, err := g.Forward(map[string]*nets.Tensor{"input": x})
	if err != nil {
		t.Fatal(err)
	}
	h, err := head.Logits(vals["relu3"])
	if err != nil {
		t.Fatal(err)
	}
	z := vals["logits"]
	odds := make([]float64, 40)
	for i := range odds {
		odds[i] = h.Data[2*i+1] - h.Data[2*i]
	}
	th := detMedian(odds)
	d, err := NewActivationDetector(g, head, "relu3", th)
	if err != nil {
		t.Fatal(err)
	}
	if d.Reject() != 10 {
		t.Fatalf("Reject %d, want 10", d.Reject())
	}
	zr, err := d.Logits(x)
	if err != nil {
		t.Fatal(err)
	}
	pred, rejected := zr.Argmax(), 0
	for i := range odds {
		m := math.Inf(-1)
		for j := 0; j < 10; j++ {
			m = math.Max(m, z.Data[i*10+j])
			if math.Abs(zr.Data[i*11+j]-z.Data[i*10+j]) > 1e-12 {
				t.Fatalf("row %d: class column %d is %v, want %v", i, j, zr.Data[i*11+j], z.Data[i*10+j])
			}
		}
		if want := m + odds[i] - th; math.Abs(zr.Data[i*11+10]-want) > 1e-9 {
			t.Errorf("row %d: reject column %v, want %v", i, zr.Data[i*11+10], want)
		}
		if (pred[i] == 10) != (odds[i] > th) {
			t.Errorf("row %d: log-odds %v, threshold %v, argmax %d", i, odds[i], th, pred[i])
		}
		if pred[i] == 10 {
			rejected++
		}
	}
	if rejected == 0 || rejected == 40 {
		t.Errorf("%d of 40 rejected: the test wants both kinds", rejected)
	}
}

// detMedian is the median of an even number of values.
func detMedian(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func TestActivationDetectorGradient(t *testing.T) {
	g, head := testCNN(t), detHead(t, 3)
	x, y := testMNIST(t, 300, 306)
	// A threshold far below every log-odds: every row rejected, the reject column
	// (and so the head) carries the gradient; one far above: the classifier alone.
	for _, th := range []float64{-50, 0, 50} {
		d, err := NewActivationDetector(g, head, "relu3", th)
		if err != nil {
			t.Fatal(err)
		}
		for _, loss := range []nets.Loss{nets.CrossEntropy{}, EvasionLoss{Reject: 10}} {
			detDirectional(t, d, x, y, loss, 19, 1e-5)
		}
	}
	d, _ := NewActivationDetector(g, head, "relu3", 0)
	at, err := d.AdaptiveTarget()
	if err != nil || at.Name != "detector-aware" || at.Model != nets.Differentiable(d) || at.Loss != (EvasionLoss{Reject: 10}) {
		t.Errorf("AdaptiveTarget %+v, %v", at, err)
	}
}

// TestActivationDetectorTrain trains a head on the second convolution's
// activations of 400 rows and measures it on 200 held-out ones: its false-positive
// rate near the calibrated 5%, and the share of (successful) PGD examples at
// ε = 0.3 it rejects.
func TestActivationDetectorTrain(t *testing.T) {
	g := testCNN(t)
	x, y := testMNIST(t, 0, 400)
	cfg := DetectorConfig{Layer: "relu2", Hidden: 32, Epochs: 10, Batch: 32, LR: 1e-3, Eps: 0.3, PGDSteps: 10, FPR: 0.05, Seed: 1}
	start := time.Now()
	head, th, err := TrainActivationDetector(g, Data{X: x, Labels: y}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("trained in %v, threshold %.4f", time.Since(start), th)
	d, err := NewActivationDetector(g, head, "relu2", th)
	if err != nil {
		t.Fatal(err)
	}
	// Exactly ⌈0.05·80⌉ = 4 of the 80 calibration rows rejected.
	_, calRows := activationSplit(400, cfg.Seed)
	calX, _ := pickRows(Data{X: x, Labels: y}, calRows)
	zcal, err := d.Logits(calX)
	if err != nil {
		t.Fatal(err)
	}
	if got := detRate(zcal, nil) * 80; len(calRows) != 80 || math.Round(got) != 4 {
		t.Errorf("%v of %d calibration rows rejected, want 4", got, len(calRows))
	}
	hx, hy := testMNIST(t, 600, 800)
	zc, err := d.Logits(hx)
	if err != nil {
		t.Fatal(err)
	}
	fpr := detRate(zc, nil)
	pgd := attacks.NewPGD(attacks.Budget{Norm: attacks.LInf, Eps: 0.3, Lo: 0, Hi: 1}, 7)
	pgd.Steps, pgd.Step = 20, 0.025
	res, err := pgd.Attack(context.Background(), g, hx, hy)
	if err != nil {
		t.Fatal(err)
	}
	za, err := d.Logits(res.Adv)
	if err != nil {
		t.Fatal(err)
	}
	det := detRate(za, res.Success)
	t.Logf("held-out: false-positive rate %.3f, PGD ε=0.3 detection rate %.3f", fpr, det)
	if fpr > 0.15 {
		t.Errorf("held-out false-positive rate %v; calibrated at 0.05", fpr)
	}
	if det < 0.8 {
		t.Errorf("detects %v of the PGD examples; want most", det)
	}
	// Through a spec: the head written to ONNX and loaded back gives the same logits.
	dir := t.TempDir()
	if err := nets.WriteONNX(head, filepath.Join(dir, "head.onnx")); err != nil {
		t.Fatal(err)
	}
	m, err := Load(writeSpec(t, dir, "spec.json", `{"kind":"activation-detector","model":"`+cnnPath(t)+`","params":{"head":"head.onnx","layer":"relu2","threshold":`+detJSONFloat(t, th)+`}}`))
	if err != nil {
		t.Fatal(err)
	}
	zl, err := m.Logits(hx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range zl.Data {
		if math.Abs(zl.Data[i]-zc.Data[i]) > 1e-6 {
			t.Fatalf("loaded detector: logit %d is %v, %v in memory", i, zl.Data[i], zc.Data[i])
		}
	}
}

// detJSONFloat formats v as JSON (round trip exact).
func detJSONFloat(t testing.TB, v float64) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestActivationDetectorErrors(t *testing.T) {
	g, head := testCNN(t), detHead(t, 1)
	dir := t.TempDir()
	if err := nets.WriteONNX(head, filepath.Join(dir, "head.onnx")); err != nil {
		t.Fatal(err)
	}
	wide, err := nets.MLP(rand.New(rand.NewPCG(1, 1)), []int{100}, 8, 3)
	if err != nil {
		t.Fatal(err)
	}
	if err := nets.WriteONNX(wide, filepath.Join(dir, "wide.onnx")); err != nil {
		t.Fatal(err)
	}
	cnn := cnnPath(t)
	spec := func(params string) string {
		return `{"kind":"activation-detector","model":"` + cnn + `","params":{` + params + `}}`
	}
	head1 := `"head":"` + filepath.Join(dir, "head.onnx") + `"`
	specErrors(t, []struct{ name, body, want string }{
		{"missing head file", spec(`"head":"` + filepath.Join(dir, "nope.onnx") + `","layer":"relu3","threshold":0`), "head: "},
		{"no head", spec(`"layer":"relu3","threshold":0`), `no "head"`},
		{"unknown layer", spec(head1 + `,"layer":"fc9","threshold":0`), `unknown layer "fc9": the base computes conv1, conv2, fc1, flatten, logits, relu1, relu2, relu3`},
		{"no layer", spec(head1 + `,"threshold":0`), `no "layer"`},
		{"no threshold", spec(head1 + `,"layer":"relu3"`), `no "threshold"`},
		{"head of 3 logits", spec(`"head":"` + filepath.Join(dir, "wide.onnx") + `","layer":"relu3","threshold":0`), "want [rows, 2]"},
		{"head on the wrong layer", spec(head1 + `,"layer":"relu2","threshold":0`), "head on \"relu2\""},
	})
	if _, err := NewActivationDetector(g, head, "relu3", math.NaN()); err == nil {
		t.Error("NaN threshold: no error")
	}
	x, y := testMNIST(t, 0, 20)
	for _, cfg := range []DetectorConfig{
		{Layer: "relu3", Hidden: 0, Epochs: 1, Batch: 8, LR: 1e-3, Eps: 0.3, PGDSteps: 5, FPR: 0.05},
		{Layer: "relu3", Hidden: 8, Epochs: 1, Batch: 8, LR: 1e-3, Eps: 0, PGDSteps: 5, FPR: 0.05},
		{Layer: "relu3", Hidden: 8, Epochs: 1, Batch: 8, LR: 1e-3, Eps: 0.3, PGDSteps: 5, FPR: 1},
		{Layer: "nope", Hidden: 8, Epochs: 1, Batch: 8, LR: 1e-3, Eps: 0.3, PGDSteps: 5, FPR: 0.05},
	} {
		if _, _, err := TrainActivationDetector(g, Data{X: x, Labels: y}, cfg); err == nil {
			t.Errorf("TrainActivationDetector(%+v): no error", cfg)
		}
	}
}
