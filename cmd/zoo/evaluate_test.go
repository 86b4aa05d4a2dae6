package main

import (
	"context"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/certify-dev/certify/attacks"
	"github.com/certify-dev/certify/bounds"
	"github.com/certify-dev/certify/defenses"
	"github.com/certify-dev/certify/nets"
	"github.com/certify-dev/certify/smoothing"
	"github.com/certify-dev/certify/verify"
)

const testdata = "../../testdata/"

// testImages returns the first n test images and labels.
func testImages(t *testing.T, n int) (*nets.Tensor, []int) {
	t.Helper()
	x, err := nets.ReadNPY(testdata + "mnist-test-1k.npy")
	if err != nil {
		t.Fatal(err)
	}
	y, err := nets.ReadNPY(testdata + "mnist-test-1k-labels.npy")
	if err != nil {
		t.Fatal(err)
	}
	per := x.Len() / x.Shape[0]
	labels := make([]int, n)
	for i := range labels {
		labels[i] = int(y.Data[i])
	}
	return nets.FromData(x.Data[:n*per], append([]int{n}, x.Shape[1:]...)...), labels
}

func loadGraph(t *testing.T, name string) *nets.Graph {
	t.Helper()
	g, err := nets.ReadONNX(testdata + name)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// testSettings are small settings for tests: few steps, no LP or smoothing unless
// a test turns them on.
func testSettings(t *testing.T) settings {
	return settings{Seed: 7, PGDSteps: 8, AdaptiveSteps: 10, AdaptiveRestarts: 2, SquareQueries: 50,
		Sigma: 0.25, SmoothN0: 50, SmoothN: 500, SmoothAlpha: 0.001, Logf: t.Logf}
}

// count returns the fraction of images i with f(i).
func count(n int, f func(i int) bool) float64 {
	k := 0
	for i := 0; i < n; i++ {
		if f(i) {
			k++
		}
	}
	return float64(k) / float64(n)
}

func argmaxOf(t *testing.T, m nets.Classifier, x *nets.Tensor) []int {
	t.Helper()
	z, err := m.Logits(x)
	if err != nil {
		t.Fatal(err)
	}
	return z.Argmax()
}

// TestRowMatchesIndependentComputation evaluates the shipped MLP on 20 images and
// recomputes every number of its rows by calling the packages directly.
func TestRowMatchesIndependentComputation(t *testing.T) {
	const n = 20
	x, labels := testImages(t, n)
	g := loadGraph(t, "mnist_mlp.onnx")
	s := testSettings(t)
	s.LPCount = 3
	m := Member{Defense: "mlp", File: "mnist_mlp.onnx", Norm: "linf", Epsilons: []float64{0.01, 0.03},
		Certified: []string{methodIBP, methodCROWN, methodLP}, Square: true}
	rows, err := evaluateMember(context.Background(), m, testdata, x, labels, s)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 {
		t.Fatalf("%d rows, want 2", len(rows))
	}
	ctx := context.Background()
	clean, err := nets.Accuracy(g, x, labels, n)
	if err != nil {
		t.Fatal(err)
	}
	pred := argmaxOf(t, g, x)
	correct := func(i int) bool { return pred[i] == labels[i] }
	certifiedSome := false
	for _, r := range rows {
		eps := r.Epsilon
		if r.N != n || r.Clean == nil || *r.Clean != clean {
			t.Errorf("ε=%g: n %d clean %v, want %d and nets.Accuracy %g", eps, r.N, r.Clean, n, clean)
		}
		b := attacks.Budget{Norm: attacks.LInf, Eps: eps, Lo: 0, Hi: 1}
		pgd := attacks.NewPGD(b, s.Seed)
		pgd.Steps, pgd.Step = s.PGDSteps, 2.5*eps/float64(s.PGDSteps)
		cw := pgd
		cw.Loss = nets.Margin{}
		sq := attacks.NewSquare(b, s.Seed)
		sq.Queries = s.SquareQueries
		all := make([]bool, n)
		for i := range all {
			all[i] = correct(i)
		}
		for key, a := range map[string]detailed{attackFGSM: attacks.NewFGSM(b, s.Seed), attackPGD: pgd, attackPGDCW: cw, attackSquare: sq} {
			res, err := a.Attack(ctx, g, x, labels)
			if err != nil {
				t.Fatal(err)
			}
			want := count(n, func(i int) bool { return correct(i) && !res.Success[i] })
			for i := range all {
				all[i] = all[i] && !res.Success[i]
			}
			if got, ok := r.Attacks[key]; !ok || got != want {
				t.Errorf("ε=%g %s: accuracy %v (present %v), want %g", eps, key, got, ok, want)
			}
		}
		if want := count(n, func(i int) bool { return all[i] }); r.Attacks[attackAll] != want {
			t.Errorf("ε=%g all: %g, want the per-image union %g", eps, r.Attacks[attackAll], want)
		}
		if _, ok := r.Attacks[attackAdaptive]; ok {
			t.Errorf("ε=%g: an adaptive entry for a plain graph", eps)
		}

		specs := make([]bounds.Spec, n)
		for i := range specs {
			specs[i], _ = bounds.RobustnessSpec(10, labels[i])
		}
		ibp, err := bounds.SpecIBP(g, bounds.LinfBox(x, eps, 0, 1), specs, bounds.Options{})
		if err != nil {
			t.Fatal(err)
		}
		wantIBP := count(n, func(i int) bool { return correct(i) && minOf(ibp.Lower[i]) > 0 })
		if r.Certified[methodIBP] != wantIBP {
			t.Errorf("ε=%g ibp: %g, want %g", eps, r.Certified[methodIBP], wantIBP)
		}
		// CROWN through verify (another path to the same bounds).
		vc, err := verify.CROWN{}.VerifyBatch(ctx, g, verify.LinfRegion(x, eps, 0, 1), specs)
		if err != nil {
			t.Fatal(err)
		}
		wantCROWN := count(n, func(i int) bool { return correct(i) && vc[i].Verdict == verify.Verified })
		if r.Certified[methodCROWN] != wantCROWN {
			t.Errorf("ε=%g crown: %g, want %g", eps, r.Certified[methodCROWN], wantCROWN)
		}
		// LP on every one of the first LPCount images, no shortcuts (at the
		// larger radius only: seconds per LP).
		if eps == 0.03 {
			lp, err := verify.LP{}.VerifyBatch(ctx, g, verify.LinfRegion(nets.FromData(x.Data[:s.LPCount*784], s.LPCount, 1, 28, 28), eps, 0, 1), specs[:s.LPCount])
			if err != nil {
				t.Fatal(err)
			}
			wantLP := count(s.LPCount, func(i int) bool { return correct(i) && lp[i].Verdict == verify.Verified })
			if r.Certified[methodLP] != wantLP || r.CertifiedN[methodLP] != s.LPCount {
				t.Errorf("ε=%g lp: %g of %d, want %g of %d", eps, r.Certified[methodLP], r.CertifiedN[methodLP], wantLP, s.LPCount)
			}
		}
		certifiedSome = certifiedSome || wantCROWN > 0
		if wantCROWN < wantIBP || r.Attacks[attackAll] < wantCROWN {
			t.Errorf("ε=%g: want IBP %g ≤ CROWN %g ≤ empirical %g", eps, wantIBP, wantCROWN, r.Attacks[attackAll])
		}
		if strings.Contains(r.Notes, "FALSIFIED") {
			t.Errorf("ε=%g: %s", eps, r.Notes)
		}
	}
	if !certifiedSome || rows[1].Attacks[attackPGD] == 1 {
		t.Errorf("the radii do not exercise anything: %+v", rows)
	}
}

// TestSmoothingMatchesCertify checks the smoothing column against CERTIFY called
// directly, image by image.
func TestSmoothingMatchesCertify(t *testing.T) {
	const n, k = 6, 4
	x, labels := testImages(t, n)
	g := loadGraph(t, "mnist_cnn_noise025.onnx")
	s := testSettings(t)
	s.SmoothCount = k
	m := Member{Defense: "noise", File: "mnist_cnn_noise025.onnx", Norm: "l2", Epsilons: []float64{0.25, 0.5}, Certified: []string{methodSmoothing}}
	rows, err := evaluateMember(context.Background(), m, testdata, x, labels, s)
	if err != nil {
		t.Fatal(err)
	}
	sm := smoothing.Smoothed{Base: g, Sigma: s.Sigma}
	var certs []smoothing.Certificate
	for i := 0; i < k; i++ {
		c, err := sm.Certify(x.Row(i), s.SmoothN0, s.SmoothN, s.SmoothAlpha, smoothing.SampleRand(s.Seed, i))
		if err != nil {
			t.Fatal(err)
		}
		certs = append(certs, c)
	}
	for _, r := range rows {
		want := count(k, func(i int) bool { return certs[i].Class == labels[i] && certs[i].Radius >= r.Epsilon })
		if r.Certified[methodSmoothing] != want || r.CertifiedN[methodSmoothing] != k {
			t.Errorf("ε=%g: smoothing %g of %d, want %g of %d", r.Epsilon, r.Certified[methodSmoothing], r.CertifiedN[methodSmoothing], want, k)
		}
		if _, ok := r.Certified[methodIBP]; ok {
			t.Errorf("ε=%g: IBP on an L2 smoothing row", r.Epsilon)
		}
		if _, ok := r.Attacks[attackPGD]; !ok {
			t.Errorf("ε=%g: no L2 PGD on the base model", r.Epsilon)
		}
	}
	if rows[0].Certified[methodSmoothing] == 0 {
		t.Errorf("nothing certified at L2 0.25: %+v", rows[0])
	}
}

// massDetector is a fake detector: the MLP's 10 logits and an 11th, the reject
// column, which wins when the image's total mass Σx exceeds limit. Its gradient is
// the MLP's (the naive gradient: the detector's step function has none).
type massDetector struct {
	g     *nets.Graph
	limit float64
}

func (d massDetector) InputShape() ([]int, error) { return d.g.InputShape() }
func (d massDetector) Reject() int                { return 10 }

func (d massDetector) Logits(x *nets.Tensor) (*nets.Tensor, error) {
	z, err := d.g.Logits(x)
	if err != nil {
		return nil, err
	}
	n := x.Shape[0]
	per := x.Len() / n
	out := nets.NewTensor(n, 11)
	for i := 0; i < n; i++ {
		copy(out.Data[i*11:i*11+10], z.Data[i*10:(i+1)*10])
		mass := 0.0
		for _, v := range x.Data[i*per : (i+1)*per] {
			mass += v
		}
		if mass > d.limit {
			out.Data[i*11+10] = 1e6
		} else {
			out.Data[i*11+10] = -1e6
		}
	}
	return out, nil
}

func (d massDetector) LossGrad(x *nets.Tensor, labels []int, loss nets.Loss) ([]float64, *nets.Tensor, error) {
	return d.g.LossGrad(x, labels, loss)
}

var _ defenses.Rejecting = massDetector{}

// TestRejectionsCountedApart evaluates the fake detector: rejected clean images
// are not correct, rejected attack points are not successes, and both rejection
// rates are reported.
func TestRejectionsCountedApart(t *testing.T) {
	const n = 20
	x, labels := testImages(t, n)
	g := loadGraph(t, "mnist_mlp.onnx")
	masses := make([]float64, n)
	for i := range masses {
		for _, v := range x.Row(i).Data {
			masses[i] += v
		}
	}
	// The median mass: about half the clean images are rejected, and the random
	// start of PGD (which adds mass to the black background) pushes more over.
	sorted := append([]float64(nil), masses...)
	for i := range sorted {
		for j := i + 1; j < len(sorted); j++ {
			if sorted[j] < sorted[i] {
				sorted[i], sorted[j] = sorted[j], sorted[i]
			}
		}
	}
	d := massDetector{g: g, limit: sorted[n/2]}
	s := testSettings(t)
	m := Member{Defense: "mass", Norm: "linf", Epsilons: []float64{0.02}}
	e, err := newMemberEval(m, d, x, labels, s)
	if err != nil {
		t.Fatal(err)
	}
	r, err := e.row(context.Background(), 0.02)
	if err != nil {
		t.Fatal(err)
	}
	gp := argmaxOf(t, g, x)
	wantClean := count(n, func(i int) bool { return masses[i] <= d.limit && gp[i] == labels[i] })
	wantRej := count(n, func(i int) bool { return masses[i] > d.limit })
	if *r.Clean != wantClean || r.Rejected["clean"] != wantRej || wantRej == 0 {
		t.Fatalf("clean %g rejected %g, want %g and %g (> 0)", *r.Clean, r.Rejected["clean"], wantClean, wantRej)
	}
	b := attacks.Budget{Norm: attacks.LInf, Eps: 0.02, Lo: 0, Hi: 1}
	pgd := attacks.NewPGD(b, s.Seed)
	pgd.Steps, pgd.Step = s.PGDSteps, 2.5*0.02/float64(s.PGDSteps)
	res, err := pgd.Attack(context.Background(), d, x, labels)
	if err != nil {
		t.Fatal(err)
	}
	dp := argmaxOf(t, d, x)
	ap := argmaxOf(t, d, res.Adv)
	want := count(n, func(i int) bool { return dp[i] == labels[i] && (ap[i] == labels[i] || ap[i] == 10) })
	naive := count(n, func(i int) bool { return dp[i] == labels[i] && !res.Success[i] })
	wantAdvRej := count(n, func(i int) bool { return ap[i] == 10 })
	if r.Attacks[attackPGD] != want || r.Rejected[attackPGD] != wantAdvRej {
		t.Errorf("pgd: accuracy %g rejected %g, want %g and %g", r.Attacks[attackPGD], r.Rejected[attackPGD], want, wantAdvRej)
	}
	if !(want > naive) {
		t.Errorf("the test does not exercise a rejected attack point: accuracy %g, counting rejections as successes %g", want, naive)
	}
	var md strings.Builder
	if err := writeMarkdown(&md, "", []Row{r}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(md.String(), "rej.") || !strings.Contains(md.String(), "rejects") {
		t.Errorf("the table does not show the rejections:\n%s", md.String())
	}
}

// quantised is a fake gradient-masking defense: the MLP on inputs rounded to
// levels steps (a bit-depth reduction), whose naive gradient is zero (the
// derivative of rounding), and whose adaptive target is BPDA: the MLP itself.
type quantised struct {
	g      *nets.Graph
	levels float64
}

func (q quantised) InputShape() ([]int, error) { return q.g.InputShape() }

func (q quantised) round(x *nets.Tensor) *nets.Tensor {
	out := x.Clone()
	for i, v := range out.Data {
		out.Data[i] = math.Round(v*q.levels) / q.levels
	}
	return out
}

func (q quantised) Logits(x *nets.Tensor) (*nets.Tensor, error) { return q.g.Logits(q.round(x)) }

func (q quantised) LossGrad(x *nets.Tensor, labels []int, loss nets.Loss) ([]float64, *nets.Tensor, error) {
	v, _, err := q.g.LossGrad(q.round(x), labels, loss)
	return v, nets.NewTensor(x.Shape...), err
}

func (q quantised) AdaptiveTarget() (defenses.AdaptiveTarget, error) {
	return defenses.AdaptiveTarget{Name: "bpda", Model: q.g, Loss: nets.Margin{}}, nil
}

var _ defenses.Adaptive = quantised{}

// TestAdaptiveColumn evaluates the fake masked defense: FGSM sees a zero gradient
// and moves nothing, the adaptive PGD runs on the target with its loss, and its
// points are judged on the quantised model.
func TestAdaptiveColumn(t *testing.T) {
	const n, eps = 20, 0.1
	x, labels := testImages(t, n)
	g := loadGraph(t, "mnist_mlp.onnx")
	q := quantised{g: g, levels: 16}
	s := testSettings(t)
	e, err := newMemberEval(Member{Defense: "quant", Norm: "linf"}, q, x, labels, s)
	if err != nil {
		t.Fatal(err)
	}
	r, err := e.row(context.Background(), eps)
	if err != nil {
		t.Fatal(err)
	}
	qp := argmaxOf(t, q, x)
	clean := count(n, func(i int) bool { return qp[i] == labels[i] })
	if *r.Clean != clean || r.Attacks[attackFGSM] != clean {
		t.Errorf("clean %g FGSM %g, want both %g (a zero gradient moves nothing)", *r.Clean, r.Attacks[attackFGSM], clean)
	}
	b := attacks.Budget{Norm: attacks.LInf, Eps: eps, Lo: 0, Hi: 1}
	ad := attacks.NewPGD(b, s.Seed)
	ad.Steps, ad.Step, ad.Restarts, ad.Loss = s.AdaptiveSteps, 2.5*eps/float64(s.AdaptiveSteps), s.AdaptiveRestarts, nets.Margin{}
	ad.EarlyStop = false
	res, err := ad.Attack(context.Background(), g, x, labels)
	if err != nil {
		t.Fatal(err)
	}
	if err := inBudget(b, x, res.Adv); err != nil {
		t.Fatal(err)
	}
	ap := argmaxOf(t, q, res.Adv)
	want := count(n, func(i int) bool { return qp[i] == labels[i] && ap[i] == labels[i] })
	onTarget := count(n, func(i int) bool { return qp[i] == labels[i] && !res.Success[i] })
	if r.Adaptive != "bpda" || r.Attacks[attackAdaptive] != want {
		t.Errorf("adaptive %q %g, want bpda %g (judged on the target instead: %g)", r.Adaptive, r.Attacks[attackAdaptive], want, onTarget)
	}
	if !(r.Attacks[attackAll] <= r.Attacks[attackAdaptive] && r.Attacks[attackAdaptive] < clean) {
		t.Errorf("all %g adaptive %g clean %g: want all ≤ adaptive < clean", r.Attacks[attackAll], r.Attacks[attackAdaptive], clean)
	}
}

// TestInBudget checks the re-check of attack points: in the ball and the domain.
func TestInBudget(t *testing.T) {
	x := nets.FromData([]float64{0.5, 0, 1, 0.2}, 2, 2)
	b := attacks.Budget{Norm: attacks.LInf, Eps: 0.1, Lo: 0, Hi: 1}
	for _, c := range []struct {
		name string
		adv  []float64
		ok   bool
	}{
		{"inside", []float64{0.6, 0.1, 0.9, 0.3}, true},
		{"outside the ball", []float64{0.65, 0, 1, 0.2}, false},
		{"outside the domain", []float64{0.5, -0.05, 1, 0.2}, false},
		{"NaN", []float64{0.5, math.NaN(), 1, 0.2}, false},
	} {
		err := inBudget(b, x, nets.FromData(c.adv, 2, 2))
		if (err == nil) != c.ok {
			t.Errorf("%s: error %v, want ok=%v", c.name, err, c.ok)
		}
	}
}

// maskedOnly is a classifier without gradients.
type maskedOnly struct{ g *nets.Graph }

func (m maskedOnly) InputShape() ([]int, error)                  { return m.g.InputShape() }
func (m maskedOnly) Logits(x *nets.Tensor) (*nets.Tensor, error) { return m.g.Logits(x) }

// TestNoGradientsIsNotApplicable: gradient attacks on a model without gradients
// are absent from the row, with a note, and not an error.
func TestNoGradientsIsNotApplicable(t *testing.T) {
	x, labels := testImages(t, 8)
	s := testSettings(t)
	e, err := newMemberEval(Member{Defense: "bb", Norm: "linf", Square: true, Certified: []string{methodIBP}}, maskedOnly{loadGraph(t, "mnist_mlp.onnx")}, x, labels, s)
	if err != nil {
		t.Fatal(err)
	}
	r, err := e.row(context.Background(), 0.05)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{attackFGSM, attackPGD, attackPGDCW} {
		if _, ok := r.Attacks[k]; ok {
			t.Errorf("%s ran on a model without gradients", k)
		}
	}
	if _, ok := r.Attacks[attackSquare]; !ok || r.Attacks[attackAll] != r.Attacks[attackSquare] {
		t.Errorf("attacks %v: want square and all = square", r.Attacks)
	}
	if len(r.Certified) != 0 || !strings.Contains(r.Notes, "n/a") {
		t.Errorf("certified %v notes %q: want none, and notes saying n/a", r.Certified, r.Notes)
	}
}

// coinModel is a fake randomised defense: a draw (seed, row) fools it, moving the
// prediction off the label, with probability the row's first pixel.
type coinModel struct {
	k    int
	seed uint64
}

func (c coinModel) InputShape() ([]int, error) { return []int{2}, nil }

func (c coinModel) Logits(x *nets.Tensor) (*nets.Tensor, error) {
	n := x.Shape[0]
	z := nets.NewTensor(n, c.k)
	for i := 0; i < n; i++ {
		row := x.Data[i*2 : i*2+2]
		p := 0 // the label of every test row is 0
		if defenses.InputRand(c.seed, row).Float64() < row[0] {
			p = 1
		}
		z.Data[i*c.k+p] = 1
	}
	return z, nil
}

func (c coinModel) Reseeded(seed uint64) defenses.Model { return coinModel{k: c.k, seed: seed} }

// A randomised model's adversarial points are judged by a majority of fresh draws,
// not by the draw the attack saw: a point that fools the model's own draw but
// fools fresh draws with probability 0.1 is not broken; one that fools every draw is.
func TestJudgeRandomised(t *testing.T) {
	m := coinModel{k: 3, seed: 99}
	// Find a row fooled with probability 0.1 whose own draw is fooled.
	lucky := -1.0
	for v := 0.0; v < 1; v += 1e-4 {
		if defenses.InputRand(m.seed, []float64{0.1, v}).Float64() < 0.1 {
			lucky = v
			break
		}
	}
	if lucky < 0 {
		t.Fatal("no lucky row")
	}
	adv := nets.FromData([]float64{0, 0.5, 1, 0.5, 0.1, lucky}, 3, 2)
	if own := argmaxOf(t, m, adv); own[2] != 1 {
		t.Fatalf("the model's own draw is not fooled on the lucky row: %v", own)
	}
	e := &memberEval{model: m, labels: []int{0, 0, 0}, reject: -1}
	j, err := e.judge(adv)
	if err != nil {
		t.Fatal(err)
	}
	if want := []bool{false, true, false}; !slices.Equal(j.broken, want) {
		t.Fatalf("broken %v, want %v (never, always, lucky once)", j.broken, want)
	}
}

// refined is the fake masked defense whose adaptive target has a second stage.
type refined struct {
	quantised
	refine func(ctx context.Context, b attacks.Budget, x, adv *nets.Tensor, labels []int) (*nets.Tensor, error)
}

func (r refined) AdaptiveTarget() (defenses.AdaptiveTarget, error) {
	t, err := r.quantised.AdaptiveTarget()
	t.Refine = r.refine
	return t, err
}

// A target's second stage runs on the first stage's points, its points are judged
// on the model, and they are re-checked: a stage that undoes the attack gives clean
// accuracy, one that leaves the ball is an error.
func TestAdaptiveRefine(t *testing.T) {
	const n, eps = 12, 0.1
	x, labels := testImages(t, n)
	q := quantised{g: loadGraph(t, "mnist_mlp.onnx"), levels: 16}
	s := testSettings(t)
	calls := 0
	undo := refined{q, func(_ context.Context, b attacks.Budget, x0, adv *nets.Tensor, _ []int) (*nets.Tensor, error) {
		calls++
		if b.Eps != eps || !nets.SameShape(adv.Shape, x0.Shape) {
			t.Errorf("second stage given budget %v, points %v", b, adv.Shape)
		}
		return x0.Clone(), nil
	}}
	e, err := newMemberEval(Member{Defense: "undo", Norm: "linf"}, undo, x, labels, s)
	if err != nil {
		t.Fatal(err)
	}
	r, err := e.row(context.Background(), eps)
	if err != nil {
		t.Fatal(err)
	}
	if calls != 1 || r.Attacks[attackAdaptive] != *r.Clean {
		t.Errorf("%d calls, adaptive %g, want 1 call and clean %g", calls, r.Attacks[attackAdaptive], *r.Clean)
	}
	out := refined{q, func(_ context.Context, _ attacks.Budget, x0, _ *nets.Tensor, _ []int) (*nets.Tensor, error) {
		p := x0.Clone()
		p.Data[0] += 0.5
		return p, nil
	}}
	e, err = newMemberEval(Member{Defense: "out", Norm: "linf"}, out, x, labels, s)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.row(context.Background(), eps); err == nil || !strings.Contains(err.Error(), "outside") {
		t.Fatalf("a second stage leaving the ball: error %v", err)
	}
}
