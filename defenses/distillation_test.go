package defenses

import (
	"math"
	"math/rand/v2"
	"runtime"
	"sort"
	"strings"
	"testing"

	"github.com/certify-dev/certify/nets"
)

// lossFD checks grad against central differences of the sum of the loss values
// over all rows (the losses here couple rows or look rows up by label).
func lossFD(t *testing.T, l nets.Loss, z *nets.Tensor, labels []int, grad *nets.Tensor) {
	t.Helper()
	const h = 1e-6
	sum := func(z *nets.Tensor) float64 {
		v, _, err := l.Eval(z, labels)
		if err != nil {
			t.Fatal(err)
		}
		s := 0.0
		for _, x := range v {
			s += x
		}
		return s
	}
	for i := range z.Data {
		zp, zm := z.Clone(), z.Clone()
		zp.Data[i] += h
		zm.Data[i] -= h
		fd := (sum(zp) - sum(zm)) / (2 * h)
		if math.Abs(fd-grad.Data[i]) > 1e-7*(1+math.Abs(fd)) {
			t.Errorf("d loss / d z[%d] = %.10g, finite differences %.10g", i, grad.Data[i], fd)
		}
	}
}

// The teacher's loss at temperature T on a hand-made row, against the formula
// log Σ exp(z/T) − z_y/T written out, finite differences, and at T = 1 against
// nets.CrossEntropy.
func TestDistillationHardLoss(t *testing.T) {
	z := nets.FromData([]float64{2, -1, 0.5, 3, 30, -20, 0, 1}, 2, 4)
	labels := []int{3, 0}
	for _, T := range []float64{1, 2.5, 100} {
		vals, grad, err := distillHardCE{T: T}.Eval(z, labels)
		if err != nil {
			t.Fatal(err)
		}
		for r, y := range labels {
			row := z.Data[r*4 : (r+1)*4]
			s := 0.0
			for _, v := range row {
				s += math.Exp(v / T)
			}
			if want := math.Log(s) - row[y]/T; math.Abs(vals[r]-want) > 1e-12 {
				t.Errorf("T=%v row %d: loss %.15g, want %.15g", T, r, vals[r], want)
			}
			for j, v := range row {
				want := math.Exp(v/T) / s / T
				if j == y {
					want -= 1 / T
				}
				if math.Abs(grad.Data[r*4+j]-want) > 1e-12 {
					t.Errorf("T=%v row %d: grad[%d] %.15g, want %.15g", T, r, j, grad.Data[r*4+j], want)
				}
			}
		}
		lossFD(t, distillHardCE{T: T}, z, labels, grad)
	}
	vals, grad, _ := distillHardCE{T: 1}.Eval(z, labels)
	cv, cg, _ := nets.CrossEntropy{}.Eval(z, labels)
	for i := range vals {
		if math.Abs(vals[i]-cv[i]) > 1e-13 {
			t.Errorf("T=1 loss %v, cross-entropy %v", vals[i], cv[i])
		}
	}
	for i := range grad.Data {
		if math.Abs(grad.Data[i]-cg.Data[i]) > 1e-15 {
			t.Errorf("T=1 grad[%d] %v, cross-entropy %v", i, grad.Data[i], cg.Data[i])
		}
	}
}

// The student's soft-label loss −Σ p log softmax(z/T) on hand-made rows, against
// the formula written out and finite differences; with one-hot targets at T = 1 it
// is nets.CrossEntropy; rows are looked up by index and hits counted on the hard
// labels.
func TestDistillationSoftLoss(t *testing.T) {
	p := []float64{ // three training rows, K = 3
		0.7, 0.2, 0.1,
		0, 1, 0,
		0.25, 0.25, 0.5,
	}
	l := &distillSoftCE{T: 3, K: 3, P: p, Labels: []int{0, 1, 1}}
	z := nets.FromData([]float64{1, 2, -3, 4, 0.5, 0, -1, -1, 2}, 3, 3)
	idx := []int{2, 0, 1} // logits row r is training row idx[r]
	vals, grad, err := l.Eval(z, idx)
	if err != nil {
		t.Fatal(err)
	}
	for r, i := range idx {
		row := z.Data[r*3 : (r+1)*3]
		s := 0.0
		for _, v := range row {
			s += math.Exp(v / 3)
		}
		want := 0.0
		for j, v := range row {
			q := math.Exp(v/3) / s
			want -= p[i*3+j] * math.Log(q)
			if g := (q - p[i*3+j]) / 3; math.Abs(grad.Data[r*3+j]-g) > 1e-14 {
				t.Errorf("row %d: grad[%d] %.15g, want %.15g", r, j, grad.Data[r*3+j], g)
			}
		}
		if math.Abs(vals[r]-want) > 1e-13 {
			t.Errorf("row %d: loss %.15g, want %.15g", r, vals[r], want)
		}
	}
	// Argmaxes 1, 0, 2 against hard labels 1, 0, 1: two hits.
	if c := l.correct.Load(); c != 2 {
		t.Errorf("counted %d correct rows, want 2", c)
	}
	lossFD(t, l, z, idx, grad)

	onehot := &distillSoftCE{T: 1, K: 3, P: make([]float64, 9)}
	labels := []int{2, 0, 1}
	for i, y := range labels {
		onehot.P[i*3+y] = 1
	}
	z2 := nets.FromData([]float64{50, -40, 3, 0.1, 0.2, 0.3, -7, 7, 0}, 3, 3)
	vals, grad, err = onehot.Eval(z2, []int{0, 1, 2})
	if err != nil {
		t.Fatal(err)
	}
	cv, cg, _ := nets.CrossEntropy{}.Eval(z2, labels)
	for i := range vals {
		if math.Abs(vals[i]-cv[i]) > 1e-13*(1+cv[i]) {
			t.Errorf("one-hot row %d: loss %.15g, cross-entropy %.15g", i, vals[i], cv[i])
		}
	}
	for i := range grad.Data {
		if math.Abs(grad.Data[i]-cg.Data[i]) > 1e-15 {
			t.Errorf("one-hot grad[%d] %v, cross-entropy %v", i, grad.Data[i], cg.Data[i])
		}
	}
	if _, _, err := onehot.Eval(z2, []int{0, 3, 1}); err == nil {
		t.Error("row index 3 of 3 rows accepted")
	}
}

func TestDistillationValidate(t *testing.T) {
	d := testData(t, 0, 20)
	g := testMLP(t, 1, 8)
	cfg := testConfig(1, 10, 1e-3, 1)
	frozen := testMLP(t, 2, 8)
	frozen.Trainable = nil
	fiveClass, err := nets.MLP(rand.New(rand.NewPCG(3, 1)), []int{1, 28, 28}, 8, 5)
	if err != nil {
		t.Fatal(err)
	}
	otherInput, err := nets.MLP(rand.New(rand.NewPCG(3, 1)), []int{1, 14, 14}, 8, 10)
	if err != nil {
		t.Fatal(err)
	}
	withPrepare := cfg
	withPrepare.Prepare = func(_, _ int, x *nets.Tensor, y []int) (*nets.Tensor, []int, error) { return x, y, nil }
	withLoss := cfg
	withLoss.Loss = nets.Margin{}
	for _, c := range []struct {
		name string
		r    Distillation
		g    *nets.Graph
		cfg  nets.TrainConfig
		want string
	}{
		{"T<1", Distillation{Temperature: 0.5, Teacher: testMLP(t, 2, 8)}, g, cfg, "temperature"},
		{"T NaN", Distillation{Temperature: math.NaN(), Teacher: testMLP(t, 2, 8)}, g, cfg, "temperature"},
		{"T Inf", Distillation{Temperature: math.Inf(1), Teacher: testMLP(t, 2, 8)}, g, cfg, "temperature"},
		{"no teacher", Distillation{Temperature: 10}, g, cfg, "no teacher"},
		{"teacher is student", Distillation{Temperature: 10, Teacher: g}, g, cfg, "is the student"},
		{"frozen teacher", Distillation{Temperature: 10, Teacher: frozen}, g, cfg, "no trainable"},
		{"classes", Distillation{Temperature: 10, Teacher: fiveClass}, g, cfg, "same classes"},
		{"input", Distillation{Temperature: 10, Teacher: otherInput}, g, cfg, "teacher on a training row"},
		{"teacher epochs", Distillation{Temperature: 10, Teacher: testMLP(t, 2, 8), TeacherEpochs: -1}, g, cfg, "teacher epochs"},
		{"prepare", Distillation{Temperature: 10, Teacher: testMLP(t, 2, 8)}, g, withPrepare, "Prepare"},
		{"loss", Distillation{Temperature: 10, Teacher: testMLP(t, 2, 8)}, g, withLoss, "cfg.Loss"},
	} {
		_, err := c.r.Train(c.g, d, c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "distillation: ") {
			t.Errorf("%s: error %v, want one mentioning %q", c.name, err, c.want)
		}
	}
}

// At learning rate 0 nothing moves, so the student's epoch statistics must be the
// soft-label loss and the hard-label accuracy of the untouched net on the whole
// training set, computed here directly.
func TestDistillationStats(t *testing.T) {
	d := testData(t, 0, 100)
	g, teacher := testMLP(t, 1, 16), testMLP(t, 2, 16)
	const T = 4
	stats, err := Distillation{Temperature: T, Teacher: teacher}.Train(g, d, testConfig(1, 32, 0, 1))
	if err != nil {
		t.Fatal(err)
	}
	zs, _ := g.Logits(d.X)
	zt, _ := teacher.Logits(d.X)
	loss, correct := 0.0, 0
	for i, y := range d.Labels {
		s, st := 0.0, 0.0
		for j := 0; j < 10; j++ {
			s += math.Exp(zs.Data[i*10+j] / T)
			st += math.Exp(zt.Data[i*10+j] / T)
		}
		for j := 0; j < 10; j++ {
			loss -= math.Exp(zt.Data[i*10+j]/T) / st * (zs.Data[i*10+j]/T - math.Log(s))
		}
		if zs.Row(i).Argmax()[0] == y {
			correct++
		}
	}
	if len(stats) != 1 {
		t.Fatalf("%d epoch stats, want 1", len(stats))
	}
	if want := loss / 100; math.Abs(stats[0].Loss-want) > 1e-12 {
		t.Errorf("epoch loss %.15g, want %.15g", stats[0].Loss, want)
	}
	if want := float64(correct) / 100; stats[0].Accuracy != want {
		t.Errorf("epoch accuracy %v, want %v", stats[0].Accuracy, want)
	}
}

// distillProbe measures a net at T = 1 on held-out rows: per row, whether it is
// classified correctly, its max-probability and the L2 norm of the gradient of its
// cross-entropy with respect to the input.
func distillProbe(t *testing.T, g *nets.Graph, d Data) (correct []bool, maxProb, gradNorm []float64) {
	t.Helper()
	z, err := g.Logits(d.X)
	if err != nil {
		t.Fatal(err)
	}
	_, grad, err := g.LossGrad(d.X, d.Labels, nets.CrossEntropy{})
	if err != nil {
		t.Fatal(err)
	}
	n := len(d.Labels)
	k, per := z.Len()/n, grad.Len()/n
	p := make([]float64, k)
	for i, y := range d.Labels {
		temperedSoftmax(p, z.Data[i*k:(i+1)*k], 1)
		best := 0
		for j := range p {
			if p[j] > p[best] {
				best = j
			}
		}
		s := 0.0
		for _, v := range grad.Data[i*per : (i+1)*per] {
			s += v * v
		}
		correct = append(correct, best == y)
		maxProb = append(maxProb, p[best])
		gradNorm = append(gradNorm, math.Sqrt(s))
	}
	return correct, maxProb, gradNorm
}

// distillMean is the mean of v over the rows where keep is true (all: keep nil).
func distillMean(v []float64, keep []bool) float64 {
	s, n := 0.0, 0
	for i, x := range v {
		if keep == nil || keep[i] {
			s += x
			n++
		}
	}
	return s / float64(n)
}

func distillMedian(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func distillAccuracy(c []bool) float64 {
	n := 0
	for _, ok := range c {
		if ok {
			n++
		}
	}
	return float64(n) / float64(len(c))
}

// A student distilled at T = 100 saturates at T = 1: on held-out rows its softmax
// is more confident and the input gradient of its cross-entropy vanishes, next to
// the same net (same initialisation) trained normally for as long. The gradient is
// compared by its median over all rows and its mean over the rows both nets
// classify correctly: on a misclassified row the student's logits, about T times
// larger, make the gradient larger instead (measured: the mean over all rows is
// higher for the student), which is why the defense masks gradients rather than
// adding robustness (Carlini & Wagner 2016).
func TestDistillationSaturates(t *testing.T) {
	train, test := testData(t, 0, 700), testData(t, 700, 1000)
	const epochs, lr = 8, 1e-2
	plain := testMLP(t, 1, 32)
	if _, err := nets.Train(plain, train.X, train.Labels, testConfig(epochs, 32, lr, 5)); err != nil {
		t.Fatal(err)
	}
	student := testMLP(t, 1, 32)
	r := Distillation{Temperature: 100, Teacher: testMLP(t, 2, 32)}
	stats, err := r.Train(student, train, testConfig(epochs, 32, lr, 5))
	if err != nil {
		t.Fatal(err)
	}
	pc, pp, pg := distillProbe(t, plain, test)
	sc, sp, sg := distillProbe(t, student, test)
	tc, _, _ := distillProbe(t, r.Teacher, test)
	both := make([]bool, len(pc))
	for i := range both {
		both[i] = pc[i] && sc[i]
	}
	pa, sa, ta := distillAccuracy(pc), distillAccuracy(sc), distillAccuracy(tc)
	t.Logf("teacher: acc %.3f", ta)
	for _, m := range []struct {
		name           string
		acc            float64
		prob, gradNorm []float64
	}{{"plain", pa, pp, pg}, {"student", sa, sp, sg}} {
		t.Logf("%-7s: acc %.3f, mean max-prob %.4f, ‖∇ₓCE‖ median %.3g, mean (both correct) %.3g, mean (all) %.3g",
			m.name, m.acc, distillMean(m.prob, nil), distillMedian(m.gradNorm), distillMean(m.gradNorm, both), distillMean(m.gradNorm, nil))
	}
	last := stats[len(stats)-1]
	t.Logf("student's last epoch: loss %.4g, accuracy %.3f", last.Loss, last.Accuracy)
	if sa < 0.75 || pa < 0.75 || ta < 0.75 || last.Accuracy < 0.75 {
		t.Errorf("held-out accuracy plain %.3f, teacher %.3f, student %.3f, student's last epoch %.3f: want ≥ 0.75", pa, ta, sa, last.Accuracy)
	}
	if s, p := distillMean(sp, nil), distillMean(pp, nil); s < p+0.03 || s < 0.98 {
		t.Errorf("mean max-probability: student %.4f, plain %.4f: want the student ≥ 0.98 and above plain by 0.03", s, p)
	}
	if s, p := distillMedian(sg), distillMedian(pg); s > 1e-9*p {
		t.Errorf("median input-gradient norm: student %.3g, plain %.3g: want the student below 1e-9 of it", s, p)
	}
	if s, p := distillMean(sg, both), distillMean(pg, both); s > p/5 {
		t.Errorf("mean input-gradient norm on rows both classify correctly: student %.3g, plain %.3g: want below a fifth of it", s, p)
	}
}

// The same seed gives bit-identical teacher and student, on one core as on all.
func TestDistillationDeterministic(t *testing.T) {
	d := testData(t, 0, 200)
	run := func(procs int) (*nets.Graph, *nets.Graph) {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		g := testMLP(t, 1, 16)
		r := Distillation{Temperature: 20, Teacher: testMLP(t, 2, 16), TeacherEpochs: 2}
		if _, err := r.Train(g, d, testConfig(1, 32, 1e-3, 9)); err != nil {
			t.Fatal(err)
		}
		return g, r.Teacher
	}
	g1, t1 := run(runtime.GOMAXPROCS(0))
	g2, t2 := run(1)
	recipeSameWeights(t, "student", g1, g2)
	recipeSameWeights(t, "teacher", t1, t2)
}

// recipeSameWeights fails unless a and b hold bit-identical trainable params.
func recipeSameWeights(t *testing.T, what string, a, b *nets.Graph) {
	t.Helper()
	for _, name := range a.Trainable {
		pa, pb := a.Params[name], b.Params[name]
		for i := range pa.Data {
			if math.Float64bits(pa.Data[i]) != math.Float64bits(pb.Data[i]) {
				t.Fatalf("%s: %s[%d] differs between runs: %v vs %v", what, name, i, pa.Data[i], pb.Data[i])
			}
		}
	}
}

// BenchmarkDistillationCNN times one teacher epoch and one student epoch at
// T = 100 of nets.MNISTCNN on the 1000 shipped test images, batch 128: ×60 for
// an epoch pair on the 60000 MNIST training images.
func BenchmarkDistillationCNN(b *testing.B) {
	d := testData(b, 0, 1000)
	for i := 0; i < b.N; i++ {
		r := rand.New(rand.NewPCG(1, 1))
		g, err := nets.MNISTCNN(r)
		if err != nil {
			b.Fatal(err)
		}
		teacher, err := nets.MNISTCNN(r)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := (Distillation{Temperature: 100, Teacher: teacher}).Train(g, d, testConfig(1, 128, 2e-3, 2)); err != nil {
			b.Fatal(err)
		}
	}
}
