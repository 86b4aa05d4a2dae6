package defenses

import (
	"context"
	"github.com/certify-dev/certify/attacks"
	"math"
	"testing"

	"github.com/certify-dev/certify/nets"
)

func TestSqueezeDetectorSqueeze(t *testing.T) {
	x := nets.FromData([]float64{0, 0.2, 0.49, 0.5, 0.51, 0.9, 1, -0.3, 1.2}, 1, 9)
	for _, c := range []struct {
		bits int
		want []float64
	}{
		{1, []float64{0, 0, 0, 1, 1, 1, 1, 0, 1}},
		{2, []float64{0, 1. / 3, 1. / 3, 2. / 3, 2. / 3, 1, 1, 0, 1}},
		{3, []float64{0, 1. / 7, 3. / 7, 4. / 7, 4. / 7, 6. / 7, 1, 0, 1}},
	} {
		q := squeezeBits(x, c.bits)
		for i, w := range c.want {
			if math.Abs(q.Data[i]-w) > 1e-15 {
				t.Errorf("%d bits: q(%v) = %v, want %v", c.bits, x.Data[i], q.Data[i], w)
			}
		}
	}
}

// detSqueezeScore is ‖softmax(f(x)) − softmax(f(q(x)))‖₁ per row, from g's logits.
func detSqueezeScore(t *testing.T, g *nets.Graph, x *nets.Tensor, bits int) []float64 {
	t.Helper()
	z1, err := g.Logits(x)
	if err != nil {
		t.Fatal(err)
	}
	z2, err := g.Logits(squeezeBits(x, bits))
	if err != nil {
		t.Fatal(err)
	}
	k := z1.Shape[1]
	out := make([]float64, z1.Shape[0])
	for i := range out {
		p1, p2 := detSoftmax(z1.Data[i*k:(i+1)*k]), detSoftmax(z2.Data[i*k:(i+1)*k])
		for j := range p1 {
			out[i] += math.Abs(p1[j] - p2[j])
		}
	}
	return out
}

// detSoftmax is softmax(z), computed directly.
func detSoftmax(z []float64) []float64 {
	p := make([]float64, len(z))
	sum := 0.0
	for j, v := range z {
		p[j] = math.Exp(v)
		sum += p[j]
	}
	for j := range p {
		p[j] /= sum
	}
	return p
}

func TestSqueezeDetectorLogits(t *testing.T) {
	g := testCNN(t)
	x, _ := testMNIST(t, 0, 40)
	d, err := NewSqueezeDetector(g, 1, 1e-3)
	if err != nil {
		t.Fatal(err)
	}
	z, _ := g.Logits(x)
	zr, err := d.Logits(x)
	if err != nil {
		t.Fatal(err)
	}
	score := detSqueezeScore(t, g, x, 1)
	pred, rejected := zr.Argmax(), 0
	for i, sc := range score {
		m := math.Inf(-1)
		for j := 0; j < 10; j++ {
			m = math.Max(m, z.Data[i*10+j])
		}
		if want := m + sc - 1e-3; math.Abs(zr.Data[i*11+10]-want) > 1e-12 {
			t.Errorf("row %d: reject column %v, want %v", i, zr.Data[i*11+10], want)
		}
		if (pred[i] == 10) != (sc > 1e-3) {
			t.Errorf("row %d: distance %v, argmax %d", i, sc, pred[i])
		}
		if pred[i] == 10 {
			rejected++
		}
	}
	if rejected == 0 || rejected == 40 {
		t.Errorf("%d of 40 rejected: the test wants both kinds", rejected)
	}
}

// detStraightThrough is the squeeze detector with q(x) replaced by x + c, c fixed
// at q(x₀) − x₀: the smooth function whose gradient at x₀ the BPDA target claims.
type detStraightThrough struct {
	d *SqueezeDetector
	c *nets.Tensor
}

func (s detStraightThrough) Logits(x *nets.Tensor) (*nets.Tensor, error) {
	z1, err := s.d.Base.Logits(x)
	if err != nil {
		return nil, err
	}
	q := x.Clone()
	for i := range q.Data {
		q.Data[i] += s.c.Data[i]
	}
	z2, err := s.d.Base.Logits(q)
	if err != nil {
		return nil, err
	}
	sc := squeezeDistance(z1, z2)
	for i := range sc {
		sc[i] -= s.d.Threshold
	}
	return withReject(z1, sc)
}

func TestSqueezeDetectorGradient(t *testing.T) {
	g := testCNN(t)
	x, y := testMNIST(t, 200, 206)
	d, err := NewSqueezeDetector(g, 1, 0.0005)
	if err != nil {
		t.Fatal(err)
	}
	// Naive: the true derivative (MNIST pixels are multiples of 1/255, none within
	// 1e-6 of the 1-bit squeezer's step at 0.5).
	for _, loss := range []nets.Loss{nets.CrossEntropy{}, EvasionLoss{Reject: 10}} {
		detDirectional(t, d, x, y, loss, 13, 1e-5)
	}
	// BPDA: the derivative of the straight-through surrogate.
	st := d.StraightThrough()
	c := squeezeBits(x, 1)
	for i := range c.Data {
		c.Data[i] -= x.Data[i]
	}
	for _, loss := range []nets.Loss{nets.CrossEntropy{}, EvasionLoss{Reject: 10}} {
		_, gb, err := st.LossGrad(x, y, loss)
		if err != nil {
			t.Fatal(err)
		}
		detDirectional(t, detStraightThroughGrad{detStraightThrough{d, c}, gb}, x, y, loss, 17, 1e-5)
		// And the BPDA gradient differs from the naive one: the squeezed branch counts.
		_, gn, _ := d.LossGrad(x, y, loss)
		diff := 0.0
		for i := range gn.Data {
			diff = math.Max(diff, math.Abs(gn.Data[i]-gb.Data[i]))
		}
		if diff == 0 {
			t.Error("BPDA gradient equals the naive one")
		}
	}
}

// detStraightThroughGrad gives the surrogate the BPDA gradient, so that
// detDirectional compares it with the surrogate's finite differences.
type detStraightThroughGrad struct {
	detStraightThrough
	grad *nets.Tensor
}

func (s detStraightThroughGrad) LossGrad(x *nets.Tensor, labels []int, loss nets.Loss) ([]float64, *nets.Tensor, error) {
	z, err := s.Logits(x)
	if err != nil {
		return nil, nil, err
	}
	v, _, err := loss.Eval(z, labels)
	return v, s.grad, err
}

func TestSqueezeDetectorCalibration(t *testing.T) {
	g := testCNN(t)
	cal, _ := testMNIST(t, 0, 500)
	held, _ := testMNIST(t, 500, 1000)
	for _, bits := range []int{1, 4} {
		tau, err := CalibrateSqueeze(g, bits, cal, 0.05)
		if err != nil {
			t.Fatal(err)
		}
		d, err := NewSqueezeDetector(g, bits, tau)
		if err != nil {
			t.Fatal(err)
		}
		zc, _ := d.Logits(cal)
		zh, _ := d.Logits(held)
		if got := detRate(zc, nil) * 500; got != 25 {
			t.Errorf("%d bits: %v calibration rows rejected, want 25 (τ = %v)", bits, got, tau)
		}
		if got := detRate(zh, nil); math.Abs(got-0.05) > 0.05 {
			t.Errorf("%d bits: held-out false-positive rate %v", bits, got)
		}
		t.Logf("%d bits: τ = %.6g, held-out false-positive rate %.3f", bits, tau, detRate(zh, nil))
	}
	if _, err := CalibrateSqueeze(g, 0, cal, 0.05); err == nil {
		t.Error("CalibrateSqueeze with 0 bits: no error")
	}
}

func TestSqueezeDetectorSpec(t *testing.T) {
	cnn := cnnPath(t)
	m, err := Load(writeSpec(t, t.TempDir(), "spec.json", `{"kind":"squeeze-detector","model":"`+cnn+`","params":{"bits":1,"threshold":0.1}}`))
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := m.(*SqueezeDetector); !ok || d.Bits != 1 || d.Threshold != 0.1 || d.Reject() != 10 {
		t.Fatalf("Load gave %#v", m)
	}
	specErrors(t, []struct{ name, body, want string }{
		{"bits 0", `{"kind":"squeeze-detector","model":"` + cnn + `","params":{"bits":0,"threshold":0.1}}`, "bits 0: want 1 to 16"},
		{"bits 17", `{"kind":"squeeze-detector","model":"` + cnn + `","params":{"bits":17,"threshold":0.1}}`, "bits 17"},
		{"no bits", `{"kind":"squeeze-detector","model":"` + cnn + `","params":{"threshold":0.1}}`, `no "bits"`},
		{"negative threshold", `{"kind":"squeeze-detector","model":"` + cnn + `","params":{"bits":1,"threshold":-1}}`, "threshold -1: want a number in [0, 2]"},
		{"threshold above 2", `{"kind":"squeeze-detector","model":"` + cnn + `","params":{"bits":1,"threshold":2.5}}`, "threshold 2.5"},
		{"no threshold", `{"kind":"squeeze-detector","model":"` + cnn + `","params":{"bits":1}}`, `no "threshold"`},
	})
}

// The two-stage detector-aware attack: stage 1 is BPDA on the squeezed branch (its
// gradient is f's at q(x)); stage 2 keeps every pixel in the ε-ball, in [0, 1] and
// in its squeezing level (so q of the point does not change), never raises a row's
// detector score, and carries stage-1 points through the detector.
func TestSqueezeDetectorTwoStage(t *testing.T) {
	g := testCNN(t)
	x, y := testMNIST(t, 0, 40)
	calib, _ := testMNIST(t, 500, 900)
	tau, err := CalibrateSqueeze(g, 1, calib, 0.05)
	if err != nil {
		t.Fatal(err)
	}
	d, err := NewSqueezeDetector(g, 1, tau)
	if err != nil {
		t.Fatal(err)
	}
	at, err := d.AdaptiveTarget()
	if err != nil || at.Name != "detector-aware" || at.Refine == nil || at.Loss != nil {
		t.Fatalf("AdaptiveTarget %+v, %v", at, err)
	}
	_, gb, err := at.Model.LossGrad(x, y, nets.CrossEntropy{})
	if err != nil {
		t.Fatal(err)
	}
	_, gq, err := g.LossGrad(squeezeBits(x, 1), y, nets.CrossEntropy{})
	if err != nil {
		t.Fatal(err)
	}
	if maxAbsDiff(gb.Data, gq.Data) != 0 {
		t.Fatal("stage 1's gradient is not f's at q(x)")
	}
	b := attacks.Budget{Norm: attacks.LInf, Eps: 0.3, Lo: 0, Hi: 1}
	pgd := attacks.NewPGD(b, 3)
	pgd.EarlyStop = false
	res, err := pgd.Attack(context.Background(), at.Model, x, y)
	if err != nil {
		t.Fatal(err)
	}
	out, err := at.Refine(context.Background(), b, x, res.Adv, y)
	if err != nil {
		t.Fatal(err)
	}
	per := 784
	for i := 0; i < x.Shape[0]; i++ {
		if !b.Contains(out.Data[i*per:(i+1)*per], x.Data[i*per:(i+1)*per]) {
			t.Fatalf("row %d outside the budget", i)
		}
	}
	if maxAbsDiff(squeezeBits(out, 1).Data, squeezeBits(res.Adv, 1).Data) != 0 {
		t.Fatal("stage 2 changed the squeezed image")
	}
	score := func(p *nets.Tensor) []float64 {
		z1, _ := g.Logits(p)
		z2, _ := g.Logits(squeezeBits(p, 1))
		return squeezeDistance(z1, z2)
	}
	before, after := score(res.Adv), score(out)
	for i := range before {
		if after[i] > before[i] {
			t.Fatalf("row %d: score %v after stage 2, %v before", i, after[i], before[i])
		}
	}
	judge := func(p *nets.Tensor) (evaded int) {
		z, _ := d.Logits(p)
		for i, c := range z.Argmax() {
			if c != y[i] && c != d.Reject() {
				evaded++
			}
		}
		return evaded
	}
	e1, e2 := judge(res.Adv), judge(out)
	t.Logf("evading the detector: %d of %d after stage 1, %d after stage 2", e1, len(y), e2)
	if e2 <= e1 || e2 < 5 {
		t.Fatalf("stage 2 evades on %d rows, stage 1 alone on %d: want more, and at least 5", e2, e1)
	}
}
