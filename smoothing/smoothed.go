package smoothing

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/certify-dev/certify/nets"
)

// Defaults as in the experiments of Cohen, Rosenfeld & Kolter (2019), Section 4:
// n0 = 100 selection samples, n = 100,000 estimation samples, α = 0.001; and the
// number of noisy copies per Logits call.
const (
	DefaultN0    = 100
	DefaultN     = 100000
	DefaultAlpha = 0.001
	DefaultBatch = 1000
)

// Smoothed is the smoothed classifier g(x) = argmax_c P(f(x+δ) = c), δ ~ N(0, σ²I)
// of Cohen, Rosenfeld & Kolter (ICML 2019). Noise is added in the model's input
// space and not clipped.
type Smoothed struct {
	Base  nets.Classifier // f: any classifier (ONNX graph, defense wrapper)
	Sigma float64         // noise level σ > 0
	Batch int             // noisy copies per Logits call (0: DefaultBatch)
}

// goldenGamma spreads sample indices over PCG streams (the 64-bit golden ratio,
// as in SplitMix64).
const goldenGamma = 0x9e3779b97f4a7c15

// SampleRand is the noise generator of sample index under seed: results do not depend on core count.
// It is a PCG generator seeded with (seed, index·0x9e3779b97f4a7c15+1); sample index
// of a Counts call takes its x.Len() normal deviates from it in order.
func SampleRand(seed uint64, index int) *rand.Rand {
	return rand.New(rand.NewPCG(seed, uint64(index)*goldenGamma+1))
}

// check validates s and the single input x of shape [1, ...input shape].
func (s Smoothed) check(x *nets.Tensor) error {
	if s.Base == nil {
		return errors.New("no base classifier")
	}
	if !(s.Sigma > 0) || math.IsInf(s.Sigma, 1) {
		return fmt.Errorf("noise level σ = %v, want a finite σ > 0", s.Sigma)
	}
	if s.Batch < 0 {
		return fmt.Errorf("batch %d, want ≥ 0 (0: %d)", s.Batch, DefaultBatch)
	}
	if x == nil {
		return errors.New("nil input")
	}
	if x.Rank() < 2 || x.Shape[0] != 1 {
		return fmt.Errorf("input shape %v, want a single sample [1, ...input shape]", x.Shape)
	}
	if x.Len() != nets.NumElements(x.Shape) || x.Len() == 0 {
		return fmt.Errorf("input shape %v holds %d values, want %d > 0", x.Shape, x.Len(), nets.NumElements(x.Shape))
	}
	for i, v := range x.Data {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("input value %d is %v", i, v)
		}
	}
	return nil
}

// Counts classifies num noisy copies x+δ_i, δ_i ~ N(0, σ²I), of x and returns the
// count per class (index = class, length = number of logits). Sample i draws its
// noise from SampleRand(seed, i), seed = rng.Uint64(); each row's class is the
// argmax of its logits, ties to the lowest index. Logits with a NaN are an error.
func (s Smoothed) Counts(x *nets.Tensor, num int, rng *rand.Rand) ([]int, error) {
	if err := s.check(x); err != nil {
		return nil, fmt.Errorf("smoothing: counts: %w", err)
	}
	if num < 1 {
		return nil, fmt.Errorf("smoothing: counts: %d samples, want ≥ 1", num)
	}
	if rng == nil {
		return nil, errors.New("smoothing: counts: nil *rand.Rand")
	}
	counts, err := s.counts(x, num, rng.Uint64())
	if err != nil {
		return nil, fmt.Errorf("smoothing: counts: %w", err)
	}
	return counts, nil
}

// noiseMinRows is the least number of rows one goroutine fills with noise.
const noiseMinRows = 64

// counts is Counts after validation. One buffer of Batch rows is reused for every
// batch; the noise of each row depends only on (seed, sample index).
func (s Smoothed) counts(x *nets.Tensor, num int, seed uint64) ([]int, error) {
	batch := s.Batch
	if batch == 0 {
		batch = DefaultBatch
	}
	batch = min(batch, num)
	per := x.Len()
	buf := make([]float64, batch*per)
	shape := append([]int{0}, x.Shape[1:]...)
	var counts []int
	for start := 0; start < num; start += batch {
		m := min(batch, num-start)
		data := buf[:m*per]
		s.addNoise(data, x.Data, start, seed)
		shape[0] = m
		out, err := s.Base.Logits(&nets.Tensor{Shape: shape, Data: data})
		if err != nil {
			return nil, fmt.Errorf("samples %d to %d: %w", start, start+m-1, err)
		}
		if out == nil || out.Rank() != 2 || out.Shape[0] != m || out.Shape[1] < 1 || out.Len() != m*out.Shape[1] {
			var got []int
			if out != nil {
				got = out.Shape
			}
			return nil, fmt.Errorf("samples %d to %d: logits shape %v, want [%d, classes ≥ 1]", start, start+m-1, got, m)
		}
		k := out.Shape[1]
		if counts == nil {
			counts = make([]int, k)
		} else if k != len(counts) {
			return nil, fmt.Errorf("samples %d to %d: %d classes, earlier batches had %d", start, start+m-1, k, len(counts))
		}
		for r := 0; r < m; r++ {
			c, err := argmax(out.Data[r*k : (r+1)*k])
			if err != nil {
				return nil, fmt.Errorf("sample %d: %w", start+r, err)
			}
			counts[c]++
		}
	}
	return counts, nil
}

// addNoise fills dst (rows of len(x)) with x + σ·z, z ~ N(0, I), row r drawing z in
// order from SampleRand(seed, first+r). Rows are filled in parallel; each part
// reseeds one PCG per row, so nothing is allocated per row.
func (s Smoothed) addNoise(dst, x []float64, first int, seed uint64) {
	per := len(x)
	rows := len(dst) / per
	sigma := s.Sigma
	_ = nets.ParallelRows(rows, noiseMinRows, func(_, lo, hi int) error {
		src := rand.NewPCG(0, 0)
		r := rand.New(src)
		for row := lo; row < hi; row++ {
			src.Seed(seed, uint64(first+row)*goldenGamma+1)
			d := dst[row*per : (row+1)*per]
			for j, v := range x {
				d[j] = v + sigma*r.NormFloat64()
			}
		}
		return nil
	})
}

// argmax returns the index of the largest value, the lowest on ties.
func argmax(v []float64) (int, error) {
	best := 0
	for i, x := range v {
		if math.IsNaN(x) {
			return 0, fmt.Errorf("logit %d is NaN", i)
		}
		if x > v[best] {
			best = i
		}
	}
	return best, nil
}

// argmaxInt returns the index of the largest count, the lowest on ties.
func argmaxInt(v []int) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}
