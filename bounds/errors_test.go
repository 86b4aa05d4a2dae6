package bounds

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/certify-dev/certify/nets"
)

// TestErrors: bad inputs and unsupported ops give errors (not panics) that say
// what and where.
func TestErrors(t *testing.T) {
	var soft, bil testNet
	for _, tn := range testNets(1) {
		switch tn.name {
		case "softmax-out":
			soft = tn
		case "bilinear":
			bil = tn
		}
	}
	box := func(n, d int) Box {
		return Box{Lo: nets.NewTensor(n, d), Hi: nets.NewTensor(n, d)}
	}
	spec3 := []Spec{{C: [][]float64{{1, 0, 0}}, D: []float64{0}}}
	nan := box(1, 4)
	nan.Hi.Data[2] = math.NaN()
	flipped := box(1, 4)
	flipped.Lo.Data[0] = 1
	tests := []struct {
		name        string
		run         func() error
		want        []string // substrings of the message
		unsupported bool
	}{
		{"softmax under CROWN", func() error { _, err := CROWN(soft.g, box(1, 4), spec3, Options{}); return err },
			[]string{"Softmax", "IBP"}, true},
		{"reciprocal under CROWN", func() error { _, err := CROWN(bil.g, box(1, 4), spec3, Options{}); return err },
			[]string{"Div", "constant divided by a bounded"}, true},
		{"reciprocal of an interval with 0", func() error {
			b := box(1, 4)
			for i := range b.Lo.Data {
				b.Lo.Data[i], b.Hi.Data[i] = -5, 5
			}
			g := newBuilder(nil, 4).g
			g.Params["two"] = nets.Scalar(2)
			g.Nodes = []*nets.Node{{Name: "q", Op: nets.Div{}, Inputs: []string{"two", "x"}, Outputs: []string{"q"}}}
			g.Outputs = []nets.ValueInfo{{Name: "q"}}
			_, err := IBP(g, b, Options{})
			return err
		}, []string{"contains 0", "q"}, true},
		{"bilinear under CROWN", func() error {
			g := newBuilder(nil, 4).g
			g.Nodes = []*nets.Node{{Name: "sq", Op: nets.Mul{}, Inputs: []string{"x", "x"}, Outputs: []string{"sq"}}}
			g.Outputs = []nets.ValueInfo{{Name: "sq"}}
			_, err := CROWN(g, box(1, 4), []Spec{{C: [][]float64{{1, 0, 0, 0}}, D: []float64{0}}}, Options{})
			return err
		}, []string{"sq", "Mul", "two bounded"}, true},
		{"wrong spec width", func() error {
			_, err := CROWN(bil.g, box(1, 4), []Spec{{C: [][]float64{{1}}, D: []float64{0}}}, Options{})
			return err
		}, []string{"coefficients"}, false},
		{"spec count", func() error { _, err := SpecIBP(soft.g, box(2, 4), spec3, Options{}); return err },
			[]string{"1 specs for a batch of 2"}, false},
		{"box shape", func() error { _, err := IBP(soft.g, box(1, 5), Options{}); return err },
			[]string{"shape"}, false},
		{"NaN in box", func() error { _, err := IBP(soft.g, nan, Options{}); return err },
			[]string{"element 2"}, false},
		{"lo > hi", func() error { _, err := IBP(soft.g, flipped, Options{}); return err },
			[]string{"element 0"}, false},
		{"negative iterations", func() error {
			_, err := AlphaCROWN(bil.g, box(1, 4), spec3, AlphaOptions{Iterations: -1})
			return err
		}, []string{"iterations"}, false},
	}
	for _, tc := range tests {
		err := tc.run()
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not mention %q", tc.name, err, w)
			}
		}
		if tc.unsupported != errors.Is(err, ErrUnsupported) {
			t.Errorf("%s: errors.Is(%q, ErrUnsupported) = %v", tc.name, err, !tc.unsupported)
		}
	}
}

// TestBatchMixing: an op that moves data across samples is refused, not silently
// mis-bounded.
func TestBatchMixing(t *testing.T) {
	g := newBuilder(nil, 3).g
	g.Params["perm"] = nets.FromData([]float64{3, 2}, 2)
	g.Nodes = []*nets.Node{
		{Name: "t", Op: nets.Transpose{Perm: []int{1, 0}}, Inputs: []string{"x"}, Outputs: []string{"t"}},
		{Name: "y", Op: nets.Relu{}, Inputs: []string{"t"}, Outputs: []string{"y"}},
	}
	g.Outputs = []nets.ValueInfo{{Name: "y"}}
	b := Box{Lo: nets.NewTensor(2, 3), Hi: nets.NewTensor(2, 3)}
	if _, err := IBP(g, b, Options{}); !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "batch") {
		t.Errorf("Transpose of the batch axis: error %v", err)
	}
	// With a batch of one the whole tensor is the sample: allowed.
	b1 := Box{Lo: nets.NewTensor(1, 3), Hi: nets.FromData([]float64{1, 2, 3}, 1, 3)}
	boxes, err := IBP(g, b1, Options{})
	if err != nil {
		t.Fatalf("batch of one: %v", err)
	}
	if got := boxes["y"].Hi.Data; got[2] != 3 {
		t.Errorf("batch of one: y ≤ %v", got)
	}
}
