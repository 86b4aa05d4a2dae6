package defenses

import (
	"context"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certify-dev/certify/attacks"
	"github.com/certify-dev/certify/nets"
)

func ensTestSoftmax(z []float64) []float64 {
	m := math.Inf(-1)
	for _, v := range z {
		m = math.Max(m, v)
	}
	s, out := 0.0, make([]float64, len(z))
	for j, v := range z {
		out[j] = math.Exp(v - m)
		s += out[j]
	}
	for j := range out {
		out[j] /= s
	}
	return out
}

// ensTestExhibit runs PGD (attacks.NewPGD) at L∞ radius eps on the wrapper itself
// (the naive attack) and on its adaptive target, and returns the wrapper's clean
// accuracy and its accuracy on each attack's points: the adaptive attack's points
// are judged by the wrapper, not by the target.
func ensTestExhibit(t *testing.T, m Model, x *nets.Tensor, y []int, eps float64) (clean, naive, adaptive float64) {
	t.Helper()
	ctx := context.Background()
	b := attacks.Budget{Norm: attacks.LInf, Eps: eps, Lo: 0, Hi: 1}
	clean = testAccuracy(t, m, x, y)
	r, err := attacks.NewPGD(b, 7).Attack(ctx, m, x, y)
	if err != nil {
		t.Fatal(err)
	}
	naive = testAccuracy(t, m, r.Adv, y)
	tgt, err := m.(Adaptive).AdaptiveTarget()
	if err != nil {
		t.Fatal(err)
	}
	pgd := attacks.NewPGD(b, 7)
	if tgt.Loss != nil {
		pgd.Loss = tgt.Loss
	}
	ra, err := pgd.Attack(ctx, tgt.Model, x, y)
	if err != nil {
		t.Fatal(err)
	}
	per := x.Len() / x.Shape[0]
	for i := range y {
		if d := attacks.Distance(attacks.LInf, ra.Adv.Data[i*per:(i+1)*per], x.Data[i*per:(i+1)*per]); d > eps+1e-12 {
			t.Fatalf("adaptive point %d at distance %g > %g", i, d, eps)
		}
	}
	adaptive = testAccuracy(t, m, ra.Adv, y)
	return clean, naive, adaptive
}

// The ensemble's logits are the log of the weighted mean of the members'
// probabilities (or the weighted mean of their logits), computed by hand.
func TestEnsembleLogits(t *testing.T) {
	cnn, mlp := testGraph(t, "mnist_cnn.onnx"), testGraph(t, "mnist_mlp.onnx")
	x, _ := testMNIST(t, 0, 40)
	zc, zm := testLogits(t, cnn, x), testLogits(t, mlp, x)
	for _, tc := range []struct {
		name    string
		weights []float64
		logits  bool
		wc, wm  float64
	}{
		{"equal probabilities", nil, false, 0.5, 0.5},
		{"weighted probabilities", []float64{1, 3}, false, 0.25, 0.75},
		{"zero weight", []float64{0, 2}, false, 0, 1},
		{"weighted logits", []float64{3, 1}, true, 0.75, 0.25},
	} {
		e := Ensemble{Members: []nets.Differentiable{cnn, mlp}, Weights: tc.weights, MeanLogits: tc.logits, Shape: []int{1, 28, 28}}
		z := testLogits(t, e, x)
		worst := 0.0
		for i := 0; i < x.Shape[0]; i++ {
			a, b := zc.Data[i*10:(i+1)*10], zm.Data[i*10:(i+1)*10]
			pa, pb := ensTestSoftmax(a), ensTestSoftmax(b)
			for j := 0; j < 10; j++ {
				var want float64
				if tc.logits {
					want = tc.wc*a[j] + tc.wm*b[j]
				} else {
					want = math.Log(tc.wc*pa[j] + tc.wm*pb[j])
				}
				worst = math.Max(worst, math.Abs(z.Data[i*10+j]-want)/math.Max(1, math.Abs(want)))
			}
		}
		if worst > 1e-10 {
			t.Errorf("%s: logits differ from the hand average by up to %g", tc.name, worst)
		}
	}
}

// The ensemble's gradient is exact: it matches central finite differences of its
// loss along random directions, for both ways of averaging and both losses.
func TestEnsembleGradient(t *testing.T) {
	cnn, mlp := testGraph(t, "mnist_cnn.onnx"), testGraph(t, "mnist_mlp.onnx")
	x, y := testMNIST(t, 0, 4)
	r := rand.New(rand.NewPCG(3, 4))
	for _, tc := range []struct {
		name   string
		logits bool
		loss   nets.Loss
	}{
		{"probabilities, cross-entropy", false, nets.CrossEntropy{}},
		{"probabilities, margin", false, nets.Margin{}},
		{"logits, cross-entropy", true, nets.CrossEntropy{}},
	} {
		e := Ensemble{Members: []nets.Differentiable{cnn, mlp}, Weights: []float64{2, 1}, MeanLogits: tc.logits, Shape: []int{1, 28, 28}}
		_, g, err := e.LossGrad(x, y, tc.loss)
		if err != nil {
			t.Fatal(err)
		}
		const h = 1e-6
		u, xp, xm := testDirection(r, x, h)
		vp, _, err := e.LossGrad(xp, y, tc.loss)
		if err != nil {
			t.Fatal(err)
		}
		vm, _, _ := e.LossGrad(xm, y, tc.loss)
		dots := rowDots(g, u)
		for i := range y {
			fd := (vp[i] - vm[i]) / (2 * h)
			an := dots[i]
			if math.Abs(fd-an) > 1e-5*math.Max(1, math.Abs(an)) {
				t.Errorf("%s, row %d: directional derivative %g, finite differences %g", tc.name, i, an, fd)
			}
		}
	}
}

// Ensemble specs load with their params, and bad ones fail with a message that
// names the problem (and the member at fault).
func TestEnsembleSpec(t *testing.T) {
	dir := t.TempDir()
	cnn, mlp := testAbs(t, "mnist_cnn.onnx"), testAbs(t, "mnist_mlp.onnx")
	r := rand.New(rand.NewPCG(5, 6))
	tiny, err := nets.MLP(r, []int{2}, 3, 10)
	if err != nil {
		t.Fatal(err)
	}
	tinyPath := filepath.Join(dir, "tiny.onnx")
	if err := nets.WriteONNX(tiny, tinyPath); err != nil {
		t.Fatal(err)
	}
	three, err := nets.MLP(r, []int{1, 28, 28}, 3)
	if err != nil {
		t.Fatal(err)
	}
	threePath := filepath.Join(dir, "three.onnx")
	if err := nets.WriteONNX(three, threePath); err != nil {
		t.Fatal(err)
	}
	q := func(s string) string { return `"` + s + `"` }
	for _, tc := range []struct{ name, body, want string }{
		{"shape", `{"kind": "ensemble", "models": [` + q(cnn) + `, ` + q(tinyPath) + `]}`, "member 1 (" + tinyPath + ") has input shape [2]; member 0"},
		{"classes", `{"kind": "ensemble", "models": [` + q(cnn) + `, ` + q(threePath) + `]}`, "member 1 (" + threePath + ") has 3 classes"},
		{"one model", `{"kind": "ensemble", "models": [` + q(cnn) + `]}`, `1 model(s) in "models": want at least 2`},
		{"model not models", `{"kind": "ensemble", "model": ` + q(cnn) + `}`, `in "models", not "model"`},
		{"unknown param", `{"kind": "ensemble", "models": [` + q(cnn) + `, ` + q(mlp) + `], "params": {"weight": [1, 2]}}`, `unknown field "weight"`},
		{"weights length", `{"kind": "ensemble", "models": [` + q(cnn) + `, ` + q(mlp) + `], "params": {"weights": [1]}}`, "1 weights for 2 models"},
		{"negative weight", `{"kind": "ensemble", "models": [` + q(cnn) + `, ` + q(mlp) + `], "params": {"weights": [1, -1]}}`, "weight 1 is -1"},
		{"zero weights", `{"kind": "ensemble", "models": [` + q(cnn) + `, ` + q(mlp) + `], "params": {"weights": [0, 0]}}`, "sum to 0"},
		{"combine", `{"kind": "ensemble", "models": [` + q(cnn) + `, ` + q(mlp) + `], "params": {"combine": "votes"}}`, `combine "votes"`},
		{"rotation one model", `{"kind": "rotation", "models": [` + q(cnn) + `]}`, "want at least 2"},
		{"rotation unknown param", `{"kind": "rotation", "models": [` + q(cnn) + `, ` + q(mlp) + `], "params": {"sead": 1}}`, `unknown field "sead"`},
	} {
		p := writeSpec(t, dir, strings.ReplaceAll(tc.name, " ", "_")+".json", tc.body)
		_, err := Load(p)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: error %v, want one naming the spec and containing %q", tc.name, err, tc.want)
		}
	}
	p := writeSpec(t, dir, "good.json", `{"kind": "ensemble", "models": [`+q(cnn)+`, `+q(mlp)+`], "params": {"weights": [1, 3], "combine": "logits"}}`)
	m, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	e, ok := m.(Ensemble)
	if !ok || !e.MeanLogits || len(e.Members) != 2 || e.Weights[1] != 3 {
		t.Fatalf("loaded %#v", m)
	}
	if _, ok := m.(Adaptive); ok {
		t.Error("an ensemble is not gradient masking, yet implements Adaptive")
	}
	x, _ := testMNIST(t, 0, 3)
	z := testLogits(t, m, x)
	zc, zm := testLogits(t, testGraph(t, "mnist_cnn.onnx"), x), testLogits(t, testGraph(t, "mnist_mlp.onnx"), x)
	for i := range z.Data {
		if want := 0.25*zc.Data[i] + 0.75*zm.Data[i]; math.Abs(z.Data[i]-want) > 1e-10 {
			t.Fatalf("loaded ensemble logit %d = %g, want %g", i, z.Data[i], want)
		}
	}
}

// The wrappers are Models with gradients; all but the ensemble name an adaptive target.
var (
	_ nets.Differentiable = Ensemble{}
	_ Model               = Ensemble{}
	_ Adaptive            = Rotation{}
	_ Adaptive            = Shattered{}
	_ Adaptive            = Stochastic{}
	_ Adaptive            = Saturated{}
	_ nets.Differentiable = Rotation{}
	_ nets.Differentiable = Shattered{}
	_ nets.Differentiable = Stochastic{}
	_ nets.Differentiable = Saturated{}
)

// Reseeding a random wrapper changes its draws and nothing else: the same seed gives
// the same answers, another seed other draws.
func TestRandomisedReseeded(t *testing.T) {
	row := make([]float64, 784)
	for i := range row {
		row[i] = float64(i%17) / 17
	}
	r := Rotation{Members: make([]nets.Differentiable, 5), Seed: 1}
	s := Stochastic{Sigma: 0.3, Seed: 1}
	var _ Randomised = r
	var _ Randomised = s
	differ := 0
	for seed := uint64(2); seed < 12; seed++ {
		if r.Reseeded(seed).(Rotation).Choice(row) != r.Choice(row) {
			differ++
		}
		if got := r.Reseeded(seed).(Rotation); got.Seed != seed || len(got.Members) != 5 {
			t.Fatalf("reseeded rotation %+v", got)
		}
		a, b := make([]float64, 784), make([]float64, 784)
		s.Transform(a, row, InputRand(s.Seed, row))
		rs := s.Reseeded(seed).(Stochastic)
		rs.Transform(b, row, InputRand(rs.Seed, row))
		if rs.Sigma != s.Sigma || a[0] == b[0] {
			t.Fatalf("reseeded stochastic: σ %v, first pixel %v under both seeds", rs.Sigma, a[0])
		}
	}
	if differ < 5 { // 1 − 1/5 of 10 reseeds should pick another member
		t.Fatalf("only %d of 10 reseeded rotations chose another member", differ)
	}
	if r.Reseeded(1).(Rotation).Choice(row) != r.Choice(row) {
		t.Fatal("same seed, other choice")
	}
}
