package nets

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestModelBuilders(t *testing.T) {
	for _, tc := range []struct {
		name      string
		build     func(*rand.Rand) (*Graph, error)
		params    int // weights and biases, counted by hand
		trainable []string
	}{
		{"mlp", func(r *rand.Rand) (*Graph, error) { return MLP(r, []int{1, 28, 28}, 100, 100, 10) },
			784*100 + 100 + 100*100 + 100 + 100*10 + 10,
			[]string{"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "fc3.weight", "fc3.bias"}},
		{"cnn", MNISTCNN,
			16*1*4*4 + 16 + 32*16*4*4 + 32 + 1568*100 + 100 + 100*10 + 10,
			[]string{"conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"}},
	} {
		g, err := tc.build(rand.New(rand.NewPCG(1, 2)))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		count := 0
		for _, p := range g.Params {
			count += p.Len()
		}
		if count != tc.params {
			t.Errorf("%s: %d parameters, want %d", tc.name, count, tc.params)
		}
		if len(g.Trainable) != len(tc.trainable) {
			t.Fatalf("%s: trainable %v, want %v", tc.name, g.Trainable, tc.trainable)
		}
		for i, n := range tc.trainable {
			if g.Trainable[i] != n {
				t.Errorf("%s: trainable %v, want %v", tc.name, g.Trainable, tc.trainable)
			}
		}
		shape, err := g.InputShape()
		if err != nil || !SameShape(shape, []int{1, 28, 28}) {
			t.Errorf("%s: input shape %v, %v", tc.name, shape, err)
		}
		z, err := g.Logits(NewTensor(3, 1, 28, 28))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !SameShape(z.Shape, []int{3, 10}) {
			t.Errorf("%s: logits of shape %v", tc.name, z.Shape)
		}
		// He initialisation: weight variance 2/fan_in (checked to 3 standard errors
		// of the sample variance, √(2/n)·σ²), biases 0.
		for _, name := range g.Trainable {
			p := g.Params[name]
			if p.Rank() == 1 {
				for _, v := range p.Data {
					if v != 0 {
						t.Errorf("%s: bias %s not zero", tc.name, name)
						break
					}
				}
				continue
			}
			fanIn := p.Len() / p.Shape[0]
			want := 2 / float64(fanIn)
			ss := 0.0
			for _, v := range p.Data {
				ss += v * v
			}
			got := ss / float64(p.Len())
			if tol := 3 * math.Sqrt(2/float64(p.Len())) * want; math.Abs(got-want) > tol {
				t.Errorf("%s: %s variance %v, want %v ± %v", tc.name, name, got, want, tol)
			}
		}
	}
}

// The seeded generator fixes the initial weights.
func TestModelBuildersSeeded(t *testing.T) {
	a, _ := MNISTCNN(rand.New(rand.NewPCG(7, 7)))
	b, _ := MNISTCNN(rand.New(rand.NewPCG(7, 7)))
	c, _ := MNISTCNN(rand.New(rand.NewPCG(7, 8)))
	if !sameBits(a.Params["conv2.weight"].Data, b.Params["conv2.weight"].Data) {
		t.Error("same seed, different weights")
	}
	if sameBits(a.Params["conv2.weight"].Data, c.Params["conv2.weight"].Data) {
		t.Error("different seeds, same weights")
	}
}

func TestMLPErrors(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	if _, err := MLP(r, []int{2}); err == nil {
		t.Error("no error without sizes")
	}
	if _, err := MLP(r, []int{0}, 3); err == nil {
		t.Error("no error for a zero input dimension")
	}
	if _, err := MLP(r, []int{2}, 3, -1); err == nil {
		t.Error("no error for a negative width")
	}
}

func TestAccuracyErrors(t *testing.T) {
	g, _ := MLP(rand.New(rand.NewPCG(1, 2)), []int{2}, 2)
	if _, err := Accuracy(g, NewTensor(3, 2), []int{0, 1}, 10); err == nil {
		t.Error("no error for mismatched labels")
	}
	if _, err := Accuracy(g, NewTensor(2, 2), []int{0, 1}, 0); err == nil {
		t.Error("no error for batch 0")
	}
}
