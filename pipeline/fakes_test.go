package pipeline

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"

	"github.com/certify-dev/certify/nets"
)

// linear is a test classifier z = W·x + b on flattened samples. Being linear, its
// exact worst case over a box is known in closed form, which the fakes below use as
// an independent, complete certifier and optimal attack.
type linear struct {
	W [][]float64 // [classes][features]
	B []float64
}

func newLinear(rng *rand.Rand, classes, features int) *linear {
	m := &linear{W: make([][]float64, classes), B: make([]float64, classes)}
	for j := range m.W {
		m.W[j] = make([]float64, features)
		for i := range m.W[j] {
			m.W[j][i] = rng.NormFloat64()
		}
		m.B[j] = 0.1 * rng.NormFloat64()
	}
	return m
}

func (m *linear) Logits(x *nets.Tensor) (*nets.Tensor, error) {
	n := x.Shape[0]
	d := x.Len() / n
	if d != len(m.W[0]) {
		return nil, fmt.Errorf("linear: %d features, want %d", d, len(m.W[0]))
	}
	k := len(m.W)
	out := nets.NewTensor(n, k)
	for s := 0; s < n; s++ {
		row := x.Data[s*d : (s+1)*d]
		for j := 0; j < k; j++ {
			z := m.B[j]
			for i, v := range row {
				z += m.W[j][i] * v
			}
			out.Data[s*k+j] = z
		}
	}
	return out, nil
}

// worst returns, over the box [lo,hi], the minimum of (z_y - z_j) for the worst
// class j ≠ y, that j, and the corner attaining it.
func (m *linear) worst(lo, hi []float64, y int) (float64, int, []float64) {
	best, bestJ := math.Inf(1), -1
	var corner []float64
	for j := range m.W {
		if j == y {
			continue
		}
		v := m.B[y] - m.B[j]
		c := make([]float64, len(lo))
		for i := range lo {
			w := m.W[y][i] - m.W[j][i]
			if w >= 0 {
				c[i] = lo[i]
			} else {
				c[i] = hi[i]
			}
			v += w * c[i]
		}
		if v < best {
			best, bestJ, corner = v, j, c
		}
	}
	return best, bestJ, corner
}

// exactMethod certifies a linear model exactly over the region's box.
type exactMethod struct{ name string }

func (e exactMethod) Name() string { return e.name }
func (e exactMethod) Certify(_ context.Context, model nets.Classifier, q Query) (Certificate, error) {
	m, ok := model.(*linear)
	if !ok {
		return Certificate{}, fmt.Errorf("exact: model is %T, want *linear", model)
	}
	lo, hi := q.Region.Box()
	margin, _, _ := m.worst(lo.Data, hi.Data, q.Label)
	return Certificate{Certified: margin > 0, Margin: margin}, nil
}

// cornerAttack returns the box corner minimising the worst margin: the optimal
// L-inf attack on a linear model.
type cornerAttack struct {
	name   string
	radius float64
	domain Domain
}

func (a cornerAttack) Name() string { return a.name }
func (a cornerAttack) Run(_ context.Context, model nets.Classifier, x *nets.Tensor, labels []int) (*nets.Tensor, error) {
	m := model.(*linear)
	adv := x.Clone()
	per := x.Len() / x.Shape[0]
	for s, y := range labels {
		r := Region{Center: x.Row(s), Norm: LInf, Radius: a.radius, Domain: a.domain}
		lo, hi := r.Box()
		margin, _, corner := m.worst(lo.Data, hi.Data, y)
		if margin < 0 {
			copy(adv.Data[s*per:(s+1)*per], corner)
		}
	}
	return adv, nil
}

// funcMethod answers with f; for unsound methods and errors.
type funcMethod struct {
	name string
	f    func(q Query) (Certificate, error)
}

func (f funcMethod) Name() string { return f.name }
func (f funcMethod) Certify(_ context.Context, _ nets.Classifier, q Query) (Certificate, error) {
	return f.f(q)
}

// funcAttack returns f(x).
type funcAttack struct {
	name string
	f    func(x *nets.Tensor) (*nets.Tensor, error)
}

func (f funcAttack) Name() string { return f.name }
func (f funcAttack) Run(_ context.Context, _ nets.Classifier, x *nets.Tensor, _ []int) (*nets.Tensor, error) {
	return f.f(x)
}

// testData returns n samples of the given per-sample shape, uniform in [0,1], and
// labels: the linear model's prediction, flipped to another class for every fifth
// sample so that clean accuracy is below 1.
func testData(rng *rand.Rand, m *linear, n int, shape ...int) (*nets.Tensor, []int) {
	x := nets.NewTensor(append([]int{n}, shape...)...)
	for i := range x.Data {
		x.Data[i] = rng.Float64()
	}
	logits, _ := m.Logits(x)
	labels := logits.Argmax()
	for i := range labels {
		if i%5 == 3 {
			labels[i] = (labels[i] + 1) % len(m.W)
		}
	}
	return x, labels
}

// lineProgress writes each stage's summary line to w.
type lineProgress struct{ w io.Writer }

func (p *lineProgress) Start(string, int) {}
func (p *lineProgress) Add(int)           {}
func (p *lineProgress) Done(line string)  { fmt.Fprintln(p.w, line) }
