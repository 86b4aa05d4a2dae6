package nets

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// prepareNet is a small MLP and data set for the Prepare and ParamGrad tests.
func prepareNet(t *testing.T) (*Graph, *Tensor, []int) {
	t.Helper()
	r := rand.New(rand.NewPCG(11, 12))
	g, err := MLP(r, []int{5}, 7, 3)
	if err != nil {
		t.Fatal(err)
	}
	x := randTensor(r, 24, 5)
	y := make([]int, 24)
	for i := range y {
		y[i] = r.IntN(3)
	}
	return g, x, y
}

// A Prepare hook that duplicates every minibatch leaves the mean loss, hence the
// gradient, unchanged: the weights after training equal those of plain training up
// to the rounding of the longer sums. It is called once per minibatch, in order.
func TestTrainPrepare(t *testing.T) {
	plain, x, y := prepareNet(t)
	doubled, _, _ := prepareNet(t)
	cfg := func() TrainConfig {
		return TrainConfig{Epochs: 2, BatchSize: 8, ChunkSize: 4, Optimizer: &SGD{}, Schedule: ConstantLR(0.3),
			Rand: rand.New(rand.NewPCG(1, 2))}
	}
	if _, err := Train(plain, x, y, cfg()); err != nil {
		t.Fatal(err)
	}
	var calls [][2]int
	c := cfg()
	c.Prepare = func(epoch, step int, xb *Tensor, yb []int) (*Tensor, []int, error) {
		calls = append(calls, [2]int{epoch, step})
		per := xb.Len() / xb.Shape[0]
		out := NewTensor(append([]int{2 * xb.Shape[0]}, xb.Shape[1:]...)...)
		copy(out.Data, xb.Data)
		copy(out.Data[len(yb)*per:], xb.Data)
		return out, append(append([]int(nil), yb...), yb...), nil
	}
	if _, err := Train(doubled, x, y, c); err != nil {
		t.Fatal(err)
	}
	want := [][2]int{{0, 0}, {0, 1}, {0, 2}, {1, 0}, {1, 1}, {1, 2}}
	if len(calls) != len(want) {
		t.Fatalf("Prepare called %d times (%v), want %v", len(calls), calls, want)
	}
	for i := range want {
		if calls[i] != want[i] {
			t.Fatalf("call %d: epoch, step %v, want %v", i, calls[i], want[i])
		}
	}
	for _, name := range plain.Trainable {
		a, b := plain.Params[name].Data, doubled.Params[name].Data
		for i := range a {
			if math.Abs(a[i]-b[i]) > 1e-12 {
				t.Fatalf("%s[%d]: %v trained plainly, %v on duplicated batches", name, i, a[i], b[i])
			}
		}
	}
}

func TestTrainPrepareErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		prepare func(int, int, *Tensor, []int) (*Tensor, []int, error)
		want    string
	}{
		{"error", func(int, int, *Tensor, []int) (*Tensor, []int, error) { return nil, nil, errors.New("boom") }, "boom"},
		{"labels", func(_, _ int, x *Tensor, y []int) (*Tensor, []int, error) { return x, y[1:], nil }, "Prepare returned"},
		{"nil", func(_, _ int, _ *Tensor, y []int) (*Tensor, []int, error) { return nil, y, nil }, "Prepare returned"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, x, y := prepareNet(t)
			_, err := Train(g, x, y, TrainConfig{Epochs: 1, BatchSize: 8, Optimizer: &SGD{}, Schedule: ConstantLR(0.1),
				Rand: rand.New(rand.NewPCG(1, 2)), Prepare: tc.prepare})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "epoch 1 batch 1") {
				t.Fatalf("error %v, want one naming the batch and %q", err, tc.want)
			}
		})
	}
}

// ParamGrad is the gradient of the mean loss: central differences of the mean
// cross-entropy agree, and one SGD step from it equals one full-batch step of Train.
func TestParamGrad(t *testing.T) {
	g, x, y := prepareNet(t)
	mean, correct, grads, err := ParamGrad(g, x, y, nil, 5)
	if err != nil {
		t.Fatal(err)
	}
	meanLoss := func() float64 {
		z, err := g.Logits(x)
		if err != nil {
			t.Fatal(err)
		}
		v, _, err := CrossEntropy{}.Eval(z, y)
		if err != nil {
			t.Fatal(err)
		}
		s := 0.0
		for _, e := range v {
			s += e
		}
		return s / float64(len(v))
	}
	if got := meanLoss(); math.Abs(got-mean) > 1e-12 {
		t.Fatalf("mean loss %v, direct %v", mean, got)
	}
	z, _ := g.Logits(x)
	want := 0
	for i, p := range z.Argmax() {
		if p == y[i] {
			want++
		}
	}
	if correct != want {
		t.Fatalf("correct %d, want %d", correct, want)
	}
	const h = 1e-6
	for i, name := range g.Trainable {
		p := g.Params[name]
		for k := range p.Data {
			v := p.Data[k]
			p.Data[k] = v + h
			up := meanLoss()
			p.Data[k] = v - h
			down := meanLoss()
			p.Data[k] = v
			fd := (up - down) / (2 * h)
			if math.Abs(fd-grads[i].Data[k]) > 1e-6*(1+math.Abs(fd)) {
				t.Fatalf("d/d %s[%d]: ParamGrad %v, finite difference %v", name, k, grads[i].Data[k], fd)
			}
		}
	}
	// One SGD step from ParamGrad equals Train's full-batch step (up to the
	// rounding of sums in Train's shuffled row order).
	stepped, _, _ := prepareNet(t)
	if _, err := Train(stepped, x, y, TrainConfig{Epochs: 1, BatchSize: len(y), ChunkSize: 5, Optimizer: &SGD{},
		Schedule: ConstantLR(0.1), Rand: rand.New(rand.NewPCG(1, 2))}); err != nil {
		t.Fatal(err)
	}
	params := make([]*Tensor, len(g.Trainable))
	for i, name := range g.Trainable {
		params[i] = g.Params[name]
	}
	if err := (&SGD{}).Step(params, grads, 0.1); err != nil {
		t.Fatal(err)
	}
	for _, name := range g.Trainable {
		for k, v := range g.Params[name].Data {
			if math.Abs(v-stepped.Params[name].Data[k]) > 1e-15 {
				t.Fatalf("%s[%d]: %v after ParamGrad+SGD, %v after Train", name, k, v, stepped.Params[name].Data[k])
			}
		}
	}
	if _, _, _, err := ParamGrad(g, x, y[1:], nil, 0); err == nil || !strings.Contains(err.Error(), "labels") {
		t.Fatalf("mismatched labels: error %v", err)
	}
}
