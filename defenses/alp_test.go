package defenses

import (
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"

	"github.com/certify-dev/certify/nets"
)

// The pairing loss on two hand-made pairs, against the values and gradient worked
// out by hand and against finite differences of the summed values; λ = 0 is plain
// cross-entropy; odd batches and split pairs are refused.
func TestALPPairLoss(t *testing.T) {
	z := nets.FromData([]float64{
		1, 0, // pair 0, clean
		0, 2, // pair 0, adversarial
		0.5, 0.5, // pair 1, clean
		0.5, 0.5, // pair 1, adversarial (no gap)
	}, 4, 2)
	labels := []int{0, 0, 1, 1}
	const lambda = 0.3
	vals, grad, err := alpPairLoss{Lambda: lambda}.Eval(z, labels)
	if err != nil {
		t.Fatal(err)
	}
	// Pair 0: Δ = (1, −2), ‖Δ‖² = 5. CE(1,0; y=0) = log(1+e⁻¹), CE(0,2; y=0) = log(1+e²).
	// Pair 1: Δ = 0, CE = log 2 each.
	s1 := 1 / (1 + math.Exp(-1)) // softmax(1,0)_0
	s2 := 1 / (1 + math.Exp(2))  // softmax(0,2)_0
	wantVals := []float64{
		math.Log(1+math.Exp(-1)) + lambda*5,
		math.Log(1+math.Exp(2)) + lambda*5,
		math.Log(2), math.Log(2),
	}
	wantGrad := []float64{
		s1 - 1 + 4*lambda*1, 1 - s1 + 4*lambda*-2,
		s2 - 1 - 4*lambda*1, 1 - s2 - 4*lambda*-2,
		0.5, -0.5,
		0.5, -0.5,
	}
	for i, want := range wantVals {
		if math.Abs(vals[i]-want) > 1e-14 {
			t.Errorf("value %d = %.15g, want %.15g", i, vals[i], want)
		}
	}
	for i, want := range wantGrad {
		if math.Abs(grad.Data[i]-want) > 1e-14 {
			t.Errorf("grad[%d] = %.15g, want %.15g", i, grad.Data[i], want)
		}
	}
	lossFD(t, alpPairLoss{Lambda: lambda}, z, labels, grad)

	r := rand.New(rand.NewPCG(1, 2))
	zr := nets.NewTensor(6, 5)
	for i := range zr.Data {
		zr.Data[i] = 3 * r.NormFloat64()
	}
	yr := []int{4, 4, 0, 0, 2, 2}
	_, gr, err := alpPairLoss{Lambda: 1.7}.Eval(zr, yr)
	if err != nil {
		t.Fatal(err)
	}
	lossFD(t, alpPairLoss{Lambda: 1.7}, zr, yr, gr)

	v0, g0, _ := alpPairLoss{}.Eval(zr, yr)
	cv, cg, _ := nets.CrossEntropy{}.Eval(zr, yr)
	for i := range v0 {
		if v0[i] != cv[i] {
			t.Errorf("λ = 0: value %d = %v, cross-entropy %v", i, v0[i], cv[i])
		}
	}
	for i := range g0.Data {
		if g0.Data[i] != cg.Data[i] {
			t.Errorf("λ = 0: grad[%d] = %v, cross-entropy %v", i, g0.Data[i], cg.Data[i])
		}
	}

	if _, _, err := (alpPairLoss{Lambda: 1}).Eval(nets.NewTensor(3, 2), []int{0, 0, 0}); err == nil || !strings.Contains(err.Error(), "even") {
		t.Errorf("3 rows: error %v, want one about an even number of rows", err)
	}
	if _, _, err := (alpPairLoss{Lambda: 1}).Eval(nets.NewTensor(2, 2), []int{0, 1}); err == nil || !strings.Contains(err.Error(), "not a pair") {
		t.Errorf("labels 0, 1: error %v, want one about a split pair", err)
	}
}

// PGD's last iterates stay in the ε-ball ∩ [0,1], raise the loss well above the
// clean rows' and depend only on the random stream.
func TestALPPGD(t *testing.T) {
	d := testData(t, 0, 100)
	g := testMLP(t, 1, 32)
	if _, err := nets.Train(g, d.X, d.Labels, testConfig(3, 32, 1e-2, 1)); err != nil {
		t.Fatal(err)
	}
	const eps = 0.1
	adv, err := alpPGD(g, d.X, d.Labels, eps, 0.025, 10, rand.New(rand.NewPCG(4, 5)))
	if err != nil {
		t.Fatal(err)
	}
	moved := 0
	for i, v := range adv.Data {
		x := d.X.Data[i]
		if v < 0 || v > 1 || math.Abs(v-x) > eps+1e-15 {
			t.Fatalf("value %d: %v from %v, outside the %v-ball ∩ [0,1]", i, v, x, eps)
		}
		if v != x {
			moved++
		}
	}
	if moved < adv.Len()/2 {
		t.Errorf("only %d of %d values moved", moved, adv.Len())
	}
	clean, _, _ := g.LossGrad(d.X, d.Labels, nets.CrossEntropy{})
	hard, _, _ := g.LossGrad(adv, d.Labels, nets.CrossEntropy{})
	mc, ma := distillMean(clean, nil), distillMean(hard, nil)
	t.Logf("mean cross-entropy: clean %.3f, PGD ε = %v: %.3f", mc, eps, ma)
	if ma < mc+1 {
		t.Errorf("mean cross-entropy clean %.3f, PGD %.3f: want PGD above by 1 nat", mc, ma)
	}
	again, err := alpPGD(g, d.X, d.Labels, eps, 0.025, 10, rand.New(rand.NewPCG(4, 5)))
	if err != nil {
		t.Fatal(err)
	}
	for i := range adv.Data {
		if adv.Data[i] != again.Data[i] {
			t.Fatalf("value %d differs between runs with the same stream", i)
		}
	}
}

func TestALPValidate(t *testing.T) {
	d := testData(t, 0, 20)
	g := testMLP(t, 1, 8)
	cfg := testConfig(1, 10, 1e-3, 1)
	ok := ALP{Eps: 0.3, Step: 0.1, Steps: 3, Lambda: 0.1}
	with := func(f func(*nets.TrainConfig)) nets.TrainConfig {
		c := cfg
		f(&c)
		return c
	}
	outside := Data{X: d.X.Clone(), Labels: d.Labels}
	outside.X.Data[7] = 1.5
	for _, c := range []struct {
		name string
		a    ALP
		d    Data
		cfg  nets.TrainConfig
		want string
	}{
		{"eps 0", ALP{Eps: 0, Step: 0.1, Steps: 3}, d, cfg, "eps"},
		{"eps > 1", ALP{Eps: 1.5, Step: 0.1, Steps: 3}, d, cfg, "eps"},
		{"eps NaN", ALP{Eps: math.NaN(), Step: 0.1, Steps: 3}, d, cfg, "eps"},
		{"step 0", ALP{Eps: 0.3, Step: 0, Steps: 3}, d, cfg, "step"},
		{"step Inf", ALP{Eps: 0.3, Step: math.Inf(1), Steps: 3}, d, cfg, "step"},
		{"steps 0", ALP{Eps: 0.3, Step: 0.1, Steps: 0}, d, cfg, "steps"},
		{"lambda < 0", ALP{Eps: 0.3, Step: 0.1, Steps: 3, Lambda: -1}, d, cfg, "lambda"},
		{"lambda NaN", ALP{Eps: 0.3, Step: 0.1, Steps: 3, Lambda: math.NaN()}, d, cfg, "lambda"},
		{"odd chunk", ok, d, with(func(c *nets.TrainConfig) { c.ChunkSize = 15 }), "chunk size"},
		{"noise", ok, d, with(func(c *nets.TrainConfig) { c.NoiseSigma = 0.1 }), "NoiseSigma"},
		{"loss", ok, d, with(func(c *nets.TrainConfig) { c.Loss = nets.Margin{} }), "cfg.Loss"},
		{"prepare", ok, d, with(func(c *nets.TrainConfig) {
			c.Prepare = func(_, _ int, x *nets.Tensor, y []int) (*nets.Tensor, []int, error) { return x, y, nil }
		}), "Prepare"},
		{"domain", ok, outside, cfg, "[0,1]"},
	} {
		_, err := c.a.Train(g, c.d, c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "alp: ") {
			t.Errorf("%s: error %v, want one mentioning %q", c.name, err, c.want)
		}
	}
}

// At learning rate 0 the model stays put, so the epoch statistics can be recomputed
// here: the same shuffle (Train's first draw from cfg.Rand), the same PGD streams
// (Seed, global step), J's summand per pair and the mean clean/PGD accuracy.
func TestALPStats(t *testing.T) {
	d := testData(t, 0, 90)
	g := testMLP(t, 1, 16)
	a := ALP{Eps: 0.2, Step: 0.05, Steps: 4, Lambda: 0.7, Seed: 11}
	const batch = 32
	stats, err := a.Train(g, d, testConfig(1, batch, 0, 3))
	if err != nil {
		t.Fatal(err)
	}
	perm := rand.New(rand.NewPCG(3, 2)).Perm(90)
	per := d.X.Len() / 90
	var sum float64
	var hits int
	for step := 0; step*batch < 90; step++ {
		idx := perm[step*batch : min((step+1)*batch, 90)]
		xb := nets.NewTensor(len(idx), 1, 28, 28)
		yb := make([]int, len(idx))
		for i, j := range idx {
			copy(xb.Data[i*per:(i+1)*per], d.X.Data[j*per:(j+1)*per])
			yb[i] = d.Labels[j]
		}
		adv, err := alpPGD(g, xb, yb, a.Eps, a.Step, a.Steps, rand.New(rand.NewPCG(a.Seed, uint64(step))))
		if err != nil {
			t.Fatal(err)
		}
		zc, _ := g.Logits(xb)
		za, _ := g.Logits(adv)
		cc, _, _ := nets.CrossEntropy{}.Eval(zc, yb)
		ca, _, _ := nets.CrossEntropy{}.Eval(za, yb)
		for i, y := range yb {
			gap := 0.0
			for j := 0; j < 10; j++ {
				dj := zc.Data[i*10+j] - za.Data[i*10+j]
				gap += dj * dj
			}
			sum += 0.5*cc[i] + 0.5*ca[i] + a.Lambda*gap
			if zc.Row(i).Argmax()[0] == y {
				hits++
			}
			if za.Row(i).Argmax()[0] == y {
				hits++
			}
		}
	}
	if want := sum / 90; math.Abs(stats[0].Loss-want) > 1e-12*(1+want) {
		t.Errorf("epoch loss %.15g, want %.15g", stats[0].Loss, want)
	}
	if want := float64(hits) / 180; stats[0].Accuracy != want {
		t.Errorf("epoch accuracy %v, want %v", stats[0].Accuracy, want)
	}
}

// alpGap is the mean over rows of ‖z(x) − z(x̃)‖₂ for PGD examples x̃ crafted
// against g, and g's accuracy on x and on x̃.
func alpGap(t *testing.T, g *nets.Graph, d Data, eps float64) (gap, clean, robust float64) {
	t.Helper()
	adv, err := alpPGD(g, d.X, d.Labels, eps, eps/4, 20, rand.New(rand.NewPCG(99, 1)))
	if err != nil {
		t.Fatal(err)
	}
	zc, _ := g.Logits(d.X)
	za, _ := g.Logits(adv)
	n := len(d.Labels)
	k := zc.Len() / n
	for i, y := range d.Labels {
		s := 0.0
		for j := 0; j < k; j++ {
			dj := zc.Data[i*k+j] - za.Data[i*k+j]
			s += dj * dj
		}
		gap += math.Sqrt(s) / float64(n)
		if zc.Row(i).Argmax()[0] == y {
			clean += 1 / float64(n)
		}
		if za.Row(i).Argmax()[0] == y {
			robust += 1 / float64(n)
		}
	}
	return gap, clean, robust
}

// On held-out rows, ALP's logits move much less under a fresh PGD attack than those
// of the same net trained normally for as long.
func TestALPLogitGap(t *testing.T) {
	train, test := testData(t, 0, 700), testData(t, 700, 1000)
	const epochs, lr, eps = 4, 1e-2, 0.1
	plain := testMLP(t, 1, 32)
	if _, err := nets.Train(plain, train.X, train.Labels, testConfig(epochs, 32, lr, 5)); err != nil {
		t.Fatal(err)
	}
	g := testMLP(t, 1, 32)
	stats, err := ALP{Eps: eps, Step: eps / 2, Steps: 5, Lambda: 0.1, Seed: 7}.Train(g, train, testConfig(epochs, 32, lr, 5))
	if err != nil {
		t.Fatal(err)
	}
	pg, pc, pr := alpGap(t, plain, test, eps)
	ag, ac, ar := alpGap(t, g, test, eps)
	last := stats[len(stats)-1]
	t.Logf("plain: mean ‖z(x) − z(x̃)‖ %.3f, clean acc %.3f, PGD acc %.3f", pg, pc, pr)
	t.Logf("alp:   mean ‖z(x) − z(x̃)‖ %.3f, clean acc %.3f, PGD acc %.3f; last epoch loss %.3f, acc %.3f", ag, ac, ar, last.Loss, last.Accuracy)
	if ac < 0.6 {
		t.Errorf("ALP clean accuracy %.3f: want ≥ 0.6", ac)
	}
	if ag > pg/2 {
		t.Errorf("mean logit gap: alp %.3f, plain %.3f: want below half of it", ag, pg)
	}
	if ar < pr+0.1 {
		t.Errorf("PGD accuracy: alp %.3f, plain %.3f: want above by 0.1", ar, pr)
	}
}

// The same seed gives bit-identical weights, on one core as on all.
func TestALPDeterministic(t *testing.T) {
	d := testData(t, 0, 100)
	run := func(procs int) *nets.Graph {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		g := testMLP(t, 1, 16)
		if _, err := (ALP{Eps: 0.3, Step: 0.1, Steps: 3, Lambda: 0.5, Seed: 3}).Train(g, d, testConfig(1, 32, 1e-3, 9)); err != nil {
			t.Fatal(err)
		}
		return g
	}
	recipeSameWeights(t, "alp", run(runtime.GOMAXPROCS(0)), run(1))
}

// BenchmarkALPCNN times one ALP epoch (ε = 0.3, 10 PGD steps of 0.05) of
// nets.MNISTCNN on the 1000 shipped test images, batch 128: ×60 for an epoch on
// the 60000 MNIST training images.
func BenchmarkALPCNN(b *testing.B) {
	d := testData(b, 0, 1000)
	for i := 0; i < b.N; i++ {
		g, err := nets.MNISTCNN(rand.New(rand.NewPCG(1, 1)))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := (ALP{Eps: 0.3, Step: 0.05, Steps: 10, Lambda: 0.05, Seed: 1}).Train(g, d, testConfig(1, 128, 2e-3, 2)); err != nil {
			b.Fatal(err)
		}
	}
}
