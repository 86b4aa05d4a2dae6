package defenses

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/certify-dev/certify/bounds"
	"github.com/certify-dev/certify/nets"
)

// crownIBPMargins returns the bound graph's margins at radius eps for β = 1
// (CROWN-IBP), β = 0 (IBP) and β = ½.
func crownIBPMargins(t *testing.T, bg *boundGraph, x *nets.Tensor, labels []int, eps float64) (crown, ibp, half *nets.Tensor) {
	t.Helper()
	var out [3]*nets.Tensor
	for i, beta := range []float64{1, 0, 0.5} {
		bg.setSchedule(eps, beta)
		_, m, err := bg.margins(x, labels)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = m
	}
	return out[0], out[1], out[2]
}

// TestCROWNIBPOneHiddenLayer compares with bounds.CROWN on a one-hidden-layer MLP,
// whose pre-activation bounds are IBP's (exact for one affine layer) in both:
// bounds.CROWN's bound is then max(CROWN-IBP, SpecIBP) row by row. Also checks the
// β mix.
func TestCROWNIBPOneHiddenLayer(t *testing.T) {
	x, labels := testMNIST(t, 0, 16)
	mlp, err := nets.MLP(rand.New(rand.NewPCG(4, 4)), []int{1, 28, 28}, 30, 10)
	if err != nil {
		t.Fatal(err)
	}
	bg, err := newBoundGraph(mlp, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, eps := range []float64{0.005, 0.02, 0.1} {
		crown, ibp, half := crownIBPMargins(t, bg, x, labels, eps)
		ref, err := bounds.CROWN(mlp, bounds.LinfBox(x, eps, 0, 1), robustSpecs(t, labels, 10), bounds.Options{})
		if err != nil {
			t.Fatal(err)
		}
		worst, tighter := 0.0, 0
		for i, y := range labels {
			r := 0
			for j := 0; j < 10; j++ {
				c, b := crown.Data[i*10+j], ibp.Data[i*10+j]
				if d := half.Data[i*10+j] - (c+b)/2; math.Abs(d) > 1e-9 {
					t.Fatalf("ε %v row %d class %d: β = ½ is off the mean by %g", eps, i, j, d)
				}
				if j == y {
					if c != 0 {
						t.Fatalf("ε %v row %d: own-class margin %v", eps, i, c)
					}
					continue
				}
				worst = max(worst, math.Abs(max(c, b)-ref.Lower[i][r]))
				if c > b {
					tighter++
				}
				r++
			}
		}
		t.Logf("ε %v: CROWN-IBP above IBP on %d of %d rows", eps, tighter, 9*len(labels))
		// Measured: on this freshly initialised net CROWN-IBP beats IBP on every row
		// (not a theorem; on IBP-trained nets it often does not, see
		// TestCROWNIBPCertifies).
		if tighter < 9*len(labels)*9/10 {
			t.Errorf("ε %v: CROWN-IBP above IBP on only %d of %d rows", eps, tighter, 9*len(labels))
		}
		if worst > 1e-9 {
			t.Errorf("ε %v: max(CROWN-IBP, IBP) differs from bounds.CROWN by up to %g", eps, worst)
		}
	}
}

// specRow is the loss z_y − z_j of one fixed class j (minimised by the search).
type specRow struct{ j int }

func (s specRow) Eval(z *nets.Tensor, labels []int) ([]float64, *nets.Tensor, error) {
	k := z.Shape[1]
	vals := make([]float64, len(labels))
	grad := nets.NewTensor(z.Shape...)
	for i, y := range labels {
		vals[i] = z.Data[i*k+y] - z.Data[i*k+s.j]
		grad.Data[i*k+y]++
		grad.Data[i*k+s.j]--
	}
	return vals, grad, nil
}

// TestCROWNIBPSound checks on a two-hidden-layer MLP that every CROWN-IBP margin is
// at most the smallest z_y − z_j found in the clipped box by 2000 random points
// (uniform, and box corners) and by projected sign-gradient descent from 4 starts.
func TestCROWNIBPSound(t *testing.T) {
	x, labels := testMNIST(t, 0, 4)
	rng := rand.New(rand.NewPCG(8, 1))
	mlp, err := nets.MLP(rng, []int{1, 28, 28}, 40, 30, 10)
	if err != nil {
		t.Fatal(err)
	}
	bg, err := newBoundGraph(mlp, true)
	if err != nil {
		t.Fatal(err)
	}
	const d = 784
	for _, eps := range []float64{0.01, 0.05} {
		crown, ibp, _ := crownIBPMargins(t, bg, x, labels, eps)
		box := bounds.LinfBox(x, eps, 0, 1)
		tighter, gapSum := 0, 0.0
		for i, y := range labels {
			lo, hi := box.Lo.Data[i*d:(i+1)*d], box.Hi.Data[i*d:(i+1)*d]
			// Random points: the minimum of z_y − z_j over them, per j.
			const samples = 2000
			pts := nets.NewTensor(samples, 1, 28, 28)
			for s := 0; s < samples; s++ {
				corner := s%2 == 1
				for p := 0; p < d; p++ {
					u := rng.Float64()
					if corner {
						u = math.Round(u)
					}
					pts.Data[s*d+p] = lo[p] + u*(hi[p]-lo[p])
				}
			}
			z, err := mlp.Logits(pts)
			if err != nil {
				t.Fatal(err)
			}
			for j := 0; j < 10; j++ {
				if j == y {
					continue
				}
				found := math.Inf(1)
				for s := 0; s < samples; s++ {
					found = min(found, z.Data[s*10+y]-z.Data[s*10+j])
				}
				// Sign-gradient descent on z_y − z_j from 4 starts.
				starts := nets.NewTensor(4, 1, 28, 28)
				for s := 0; s < 4; s++ {
					copy(starts.Data[s*d:], pts.Data[s*d:(s+1)*d])
				}
				lab := []int{y, y, y, y}
				for it := 0; it < 40; it++ {
					vals, g, err := mlp.LossGrad(starts, lab, specRow{j})
					if err != nil {
						t.Fatal(err)
					}
					for _, v := range vals {
						found = min(found, v)
					}
					for q := range starts.Data {
						p := q % d
						step := 0.25 * (hi[p] - lo[p])
						v := starts.Data[q] - step*math.Copysign(1, g.Data[q])
						starts.Data[q] = min(max(v, lo[p]), hi[p])
					}
				}
				c, b := crown.Data[i*10+j], ibp.Data[i*10+j]
				if c > found+1e-9 || b > found+1e-9 {
					t.Errorf("ε %v row %d class %d: CROWN-IBP %v, IBP %v, but z_y − z_j = %v is reached", eps, i, j, c, b, found)
				}
				if c > b {
					tighter++
				}
				gapSum += found - c
			}
		}
		t.Logf("ε %v: CROWN-IBP above IBP on %d of %d rows; mean gap to the best point found %.3g", eps, tighter, 9*len(labels), gapSum/float64(9*len(labels)))
	}
}

// TestCROWNIBPGradient checks the CROWN-IBP loss's parameter gradient (through the
// relaxation slopes and intercepts, β = ½) against finite differences, on a tiny
// MLP whose box leaves neurons unstable.
func TestCROWNIBPGradient(t *testing.T) {
	mlp, x, labels := tinyCertNet(t)
	bg, err := newBoundGraph(mlp, true)
	if err != nil {
		t.Fatal(err)
	}
	bg.setSchedule(0.15, 0.5)
	in, err := bg.rows(x, labels)
	if err != nil {
		t.Fatal(err)
	}
	vals, err := bg.g.Forward(map[string]*nets.Tensor{"input": in})
	if err != nil {
		t.Fatal(err)
	}
	unstable := 0
	for _, name := range []string{"relax0-s", "relax1-s"} {
		for _, s := range vals[name].Data {
			if s > 0 && s < 1 {
				unstable++
			}
		}
	}
	if unstable < 5 {
		t.Fatalf("only %d unstable neurons: the check would not reach the relaxation", unstable)
	}
	gradCheck(t, bg, mlp, x, labels, 0.3, 1000, 1e-6)
}

// TestCROWNIBPCertifies trains a 784-32-32-10 MLP with CROWN-IBP at ε = 0.1 on 800
// MNIST test images and checks its IBP- and CROWN-certified accuracy on 200
// held-out images (a plainly trained net certifies none, TestIBPTrainingCertifies).
func TestCROWNIBPCertifies(t *testing.T) {
	x, labels := testMNIST(t, 0, 1000)
	xTrain, yTrain := certRows(x, labels, 0, 800)
	xTest, yTest := certRows(x, labels, 800, 1000)
	rng := rand.New(rand.NewPCG(3, 4))
	mlp, err := nets.MLP(rng, []int{1, 28, 28}, 32, 32, 10)
	if err != nil {
		t.Fatal(err)
	}
	cfg := nets.TrainConfig{Epochs: 12, BatchSize: 50, ChunkSize: 25, Optimizer: nets.NewAdam(), Schedule: nets.ConstantLR(0.003), Rand: rng}
	r := CROWNIBPTraining{Eps: 0.1, RampStart: 0, RampEpochs: 3, KappaEnd: 0.5}
	if _, err := r.Train(mlp, Data{X: xTrain, Labels: yTrain}, cfg); err != nil {
		t.Fatal(err)
	}
	ci := certifiedIBP(t, mlp, xTest, yTest, 0.1)
	res, err := bounds.CROWN(mlp, bounds.LinfBox(xTest, 0.1, 0, 1), robustSpecs(t, yTest, 10), bounds.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cc := 0.0
	for _, row := range res.Lower {
		if slicesMin(row) > 0 {
			cc++
		}
	}
	cc /= float64(len(yTest))
	acc, err := nets.Accuracy(mlp, xTest, yTest, 100)
	if err != nil {
		t.Fatal(err)
	}
	bg, err := newBoundGraph(mlp, true)
	if err != nil {
		t.Fatal(err)
	}
	crown, ibp, _ := crownIBPMargins(t, bg, xTest, yTest, 0.1)
	below := 0
	for i, c := range crown.Data {
		if c < ibp.Data[i] {
			below++
		}
	}
	t.Logf("held-out: clean %.3f IBP-certified %.3f CROWN-certified %.3f; CROWN-IBP below IBP on %d of %d rows",
		acc, ci, cc, below, 9*len(yTest))
	// Measured: CROWN-IBP is below IBP on 200 rows here (after 9 epochs at β = 0
	// the network is tuned to IBP's bounds): it is not always the tighter one.
	if below == 0 {
		t.Errorf("CROWN-IBP is never below IBP on the trained net")
	}
	// Measured: IBP 0.265, CROWN 0.395.
	if ci < 0.2 || cc < max(ci, 0.3) {
		t.Errorf("certified accuracy at ε 0.1: IBP %.3f (want ≥ 0.2), CROWN %.3f (want ≥ 0.3 and ≥ IBP's)", ci, cc)
	}
}

// TestCROWNIBPPhases checks the split of training into IBP and CROWN-IBP runs, and
// that outside the ramp (β = 0, or κ = 1 at ε = 0) the IBP graph's loss gradient is
// bit-identical to the CROWN-IBP graph's, which justifies the split.
func TestCROWNIBPPhases(t *testing.T) {
	mlp, x, labels := tinyCertNet(t)
	for _, c := range []struct {
		start, ramp float64
		epochs      int
		want        []int // epochs per phase; CROWN-IBP phases negative
	}{
		{0, 3, 10, []int{-3, 7}},
		{1.5, 2, 10, []int{1, -3, 6}},
		{2, 0, 5, []int{2, 3}},
		{0, 20, 10, []int{-10}},
	} {
		phases, err := certPhases(&boundGraph{}, mlp, certSchedule{Eps: 0.1, RampStart: c.start, RampEpochs: c.ramp}, true, c.epochs)
		if err != nil {
			t.Fatal(err)
		}
		var got []int
		for _, p := range phases {
			if p.bg.g == nil {
				got = append(got, -p.epochs) // the CROWN graph passed in
			} else {
				got = append(got, p.epochs)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("ramp %v+%v over %d epochs: phases %v, want %v", c.start, c.ramp, c.epochs, got, c.want)
		}
	}
	crown, err := newBoundGraph(mlp, true)
	if err != nil {
		t.Fatal(err)
	}
	ibp, err := newBoundGraph(mlp, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ eps, kappa, beta float64 }{{0.1, 0.5, 0}, {0, 1, 1}} {
		var grads [2][]*nets.Tensor
		var losses [2]float64
		for i, bg := range []*boundGraph{crown, ibp} {
			bg.setSchedule(c.eps, c.beta)
			in, err := bg.rows(x, labels)
			if err != nil {
				t.Fatal(err)
			}
			losses[i], _, grads[i], err = nets.ParamGrad(bg.g, in, labels, &boundLoss{classes: 3, kappa: c.kappa}, 2)
			if err != nil {
				t.Fatal(err)
			}
		}
		if losses[0] != losses[1] {
			t.Errorf("%+v: loss %v with CROWN, %v without", c, losses[0], losses[1])
		}
		for p := range grads[0] {
			for i, v := range grads[0][p].Data {
				if v != grads[1][p].Data[i] {
					t.Fatalf("%+v: %s[%d]: gradient %v with CROWN, %v without", c, crown.g.Trainable[p], i, v, grads[1][p].Data[i])
				}
			}
		}
	}
}
