package smoothing

import (
	"math/rand/v2"
	"testing"

	"github.com/certify-dev/certify/nets"
)

// TestPredict compares PREDICT with its definition applied to independently drawn
// counts (Counts with the same seed), and checks the clear cases.
func TestPredict(t *testing.T) {
	x := nets.FromData([]float64{0.5, 0.5}, 1, 2)
	for _, c := range []struct {
		name    string
		s       Smoothed
		n       int
		alpha   float64
		class   int
		abstain bool
	}{
		{"constant", Smoothed{Base: constant{3, 5}, Sigma: 1}, 20, 0.001, 3, false},
		{"constant, n too small for α", Smoothed{Base: constant{3, 5}, Sigma: 1}, 9, 0.001, -1, true}, // p = 2^-8 > 0.001
		{"exact 50/50", Smoothed{Base: alternating{}, Sigma: 1, Batch: 10}, 1000, 0.001, -1, true},
		{"linear, z = 3", Smoothed{Base: linear{[]float64{1, 1}, -1 + 3*0.5*1.4142135623730951}, Sigma: 0.5}, 1000, 0.001, 1, false},
		{"linear, z = -3", Smoothed{Base: linear{[]float64{1, 1}, -1 - 3*0.5*1.4142135623730951}, Sigma: 0.5}, 1000, 0.001, 0, false},
		{"linear, on the boundary", Smoothed{Base: linear{[]float64{1, 1}, -1}, Sigma: 0.5}, 10000, 0.001, -1, true}, // w.p. ≥ 1−α; fixed seed
	} {
		class, abstain, err := c.s.Predict(x, c.n, c.alpha, rand.New(rand.NewPCG(9, 9)))
		if err != nil {
			t.Fatal(err)
		}
		if class != c.class || abstain != c.abstain {
			t.Errorf("%s: Predict = %d, %v, want %d, %v", c.name, class, abstain, c.class, c.abstain)
		}
		counts, err := c.s.Counts(x, c.n, rand.New(rand.NewPCG(9, 9)))
		if err != nil {
			t.Fatal(err)
		}
		// Independent top two: sort a copy of the counts.
		best, second := -1, 0
		for i, v := range counts {
			if best < 0 || v > counts[best] {
				best = i
			}
		}
		for i, v := range counts {
			if i != best && v > second {
				second = v
			}
		}
		wantAbstain := binomTestBySum(counts[best], counts[best]+second, 0.5) > c.alpha
		if abstain != wantAbstain || (!abstain && class != best) {
			t.Errorf("%s: counts %v: Predict = %d, %v; by definition abstain = %v, class %d", c.name, counts, class, abstain, wantAbstain, best)
		}
	}
}

func TestTopTwo(t *testing.T) {
	for _, c := range []struct {
		counts    []int
		a, nA, nB int
	}{{[]int{5}, 0, 5, 0}, {[]int{3, 7, 7}, 1, 7, 7}, {[]int{9, 0, 4}, 0, 9, 4}, {[]int{0, 0}, 0, 0, 0}} {
		if a, nA, nB := topTwo(c.counts); a != c.a || nA != c.nA || nB != c.nB {
			t.Errorf("topTwo(%v) = %d, %d, %d, want %d, %d, %d", c.counts, a, nA, nB, c.a, c.nA, c.nB)
		}
	}
}
