package smoothing

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"

	"github.com/certify-dev/certify/nets"
)

// linear is the binary classifier f(x) = argmax [0, w·x+b]: class 1 where w·x+b > 0
// (class 0 on the hyperplane, the lowest index). Its smoothed classifier has
// pA = Φ(|w·x+b| / (σ‖w‖)), so its exact certified radius is |w·x+b|/‖w‖.
type linear struct {
	w []float64
	b float64
}

func (l linear) Logits(x *nets.Tensor) (*nets.Tensor, error) {
	m, d := x.Shape[0], len(l.w)
	if x.Len() != m*d {
		return nil, fmt.Errorf("linear: input shape %v, want [batch, %d]", x.Shape, d)
	}
	out := nets.NewTensor(m, 2)
	for r := range m {
		s := l.b
		for j, wj := range l.w {
			s += wj * x.Data[r*d+j]
		}
		out.Data[2*r+1] = s
	}
	return out, nil
}

// recorder keeps a copy of every input row it classifies, and classifies all as 0.
type recorder struct{ rows *[][]float64 }

func (r recorder) Logits(x *nets.Tensor) (*nets.Tensor, error) {
	m := x.Shape[0]
	per := x.Len() / m
	for i := range m {
		*r.rows = append(*r.rows, slices.Clone(x.Data[i*per:(i+1)*per]))
	}
	return nets.NewTensor(m, 3), nil
}

// TestCountsNoiseContract checks, against an independent re-draw, that sample i of a
// Counts call is x + σ·z with z the first x.Len() NormFloat64s of SampleRand(seed, i),
// seed being the first Uint64 of the caller's generator, for several batch sizes and
// core counts, and that the batch is cut as asked.
func TestCountsNoiseContract(t *testing.T) {
	x := nets.FromData([]float64{0.5, -1, 2, 0, 3, 0.25}, 1, 2, 3)
	const num, sigma = 37, 0.7
	seed := rand.New(rand.NewPCG(3, 4)).Uint64()
	for _, batch := range []int{0, 1, 5, 37, 100} {
		for _, procs := range []int{1, 2} {
			var rows [][]float64
			prev := runtime.GOMAXPROCS(procs)
			counts, err := Smoothed{Base: recorder{&rows}, Sigma: sigma, Batch: batch}.Counts(x, num, rand.New(rand.NewPCG(3, 4)))
			runtime.GOMAXPROCS(prev)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(counts, []int{num, 0, 0}) {
				t.Errorf("batch %d: counts %v", batch, counts)
			}
			if len(rows) != num {
				t.Fatalf("batch %d: %d rows classified, want %d", batch, len(rows), num)
			}
			for i, row := range rows {
				r := SampleRand(seed, i)
				for j, v := range x.Data {
					if want := v + sigma*r.NormFloat64(); row[j] != want {
						t.Fatalf("batch %d procs %d: sample %d value %d = %v, want %v", batch, procs, i, j, row[j], want)
					}
				}
			}
		}
	}
}

// TestCountsNoiseMoments checks the noise is N(0, σ²) per element: sample mean and
// variance of 4000·2 draws within 5 standard errors.
func TestCountsNoiseMoments(t *testing.T) {
	x := nets.FromData([]float64{1, -2}, 1, 2)
	const sigma, num = 0.3, 4000
	var rows [][]float64
	if _, err := (Smoothed{Base: recorder{&rows}, Sigma: sigma}).Counts(x, num, rand.New(rand.NewPCG(5, 6))); err != nil {
		t.Fatal(err)
	}
	var s, s2 float64
	for _, row := range rows {
		for j, v := range row {
			d := v - x.Data[j]
			s += d
			s2 += d * d
		}
	}
	m := float64(2 * num)
	mean, variance := s/m, s2/m
	if math.Abs(mean) > 5*sigma/math.Sqrt(m) {
		t.Errorf("noise mean %v, want 0 ± %v", mean, 5*sigma/math.Sqrt(m))
	}
	if se := sigma * sigma * math.Sqrt(2/m); math.Abs(variance-sigma*sigma) > 5*se {
		t.Errorf("noise variance %v, want %v ± %v", variance, sigma*sigma, 5*se)
	}
}

// TestCountsLinear compares Counts on a linear classifier with an independent count
// from the same noise (SampleRand), and checks the batch size does not matter.
func TestCountsLinear(t *testing.T) {
	l := linear{w: []float64{1, -2, 0.5}, b: 0.1}
	x := nets.FromData([]float64{0.2, 0.1, -0.3}, 1, 3)
	const sigma, num = 0.5, 2500
	seed := rand.New(rand.NewPCG(7, 8)).Uint64()
	want := make([]int, 2)
	for i := range num {
		r := SampleRand(seed, i)
		s := l.b
		for j, v := range x.Data {
			s += l.w[j] * (v + sigma*r.NormFloat64())
		}
		if s > 0 {
			want[1]++
		} else {
			want[0]++
		}
	}
	for _, batch := range []int{0, 1, 64, 999, 5000} {
		got, err := Smoothed{Base: l, Sigma: sigma, Batch: batch}.Counts(x, num, rand.New(rand.NewPCG(7, 8)))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("batch %d: counts %v, independent count %v", batch, got, want)
		}
	}
}

func TestArgmaxTies(t *testing.T) {
	for _, c := range []struct {
		v    []float64
		want int
	}{{[]float64{1, 3, 3}, 1}, {[]float64{2, 2}, 0}, {[]float64{-1}, 0}, {[]float64{math.Inf(-1), -5}, 1}} {
		if got, err := argmax(c.v); err != nil || got != c.want {
			t.Errorf("argmax(%v) = %d, %v, want %d", c.v, got, err, c.want)
		}
	}
	if _, err := argmax([]float64{1, math.NaN()}); err == nil {
		t.Error("argmax with a NaN: no error")
	}
	if got := argmaxInt([]int{4, 9, 9, 1}); got != 1 {
		t.Errorf("argmaxInt ties: %d, want 1", got)
	}
}

// shippedModel loads a shipped model and the first test image as [1, ...input shape].
func shippedModel(tb testing.TB, name string) (*nets.Graph, *nets.Tensor, int) {
	tb.Helper()
	g, err := nets.ReadONNX("../testdata/" + name)
	if err != nil {
		tb.Fatal(err)
	}
	shape, err := g.InputShape()
	if err != nil {
		tb.Fatal(err)
	}
	xs, err := nets.ReadNPY("../testdata/mnist-test-1k.npy")
	if err != nil {
		tb.Fatal(err)
	}
	ys, err := nets.ReadNPY("../testdata/mnist-test-1k-labels.npy")
	if err != nil {
		tb.Fatal(err)
	}
	per := nets.NumElements(shape)
	x := nets.FromData(slices.Clone(xs.Data[:per]), append([]int{1}, shape...)...)
	return g, x, int(ys.Data[0])
}
