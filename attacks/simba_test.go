package attacks

import (
	"context"
	"math"
	"testing"

	"github.com/certify-dev/certify/nets"
)

// TestSimBAQueries replays SimBA from its queries on a linear model it cannot
// fool: after x, every query is the current point with one coordinate moved to
// x_q ± α (clipped; +α first), the current point being updated exactly when the
// true class's log-probability — computed here independently — drops; a coordinate
// is never tried again once accepted or tried both ways; and L2 steps never take
// the point beyond the radius.
func TestSimBAQueries(t *testing.T) {
	const d = 12
	f := bbFlat{w: [][]float64{make([]float64, d), make([]float64, d), make([]float64, d)}, b: []float64{30, 0, 1}}
	x := make([]float64, d)
	for j := range x {
		f.w[0][j] = math.Cos(float64(3*j + 1))
		f.w[2][j] = 0.5 * math.Sin(float64(j))
		x[j] = float64(j%4) / 3 // 0, 1/3, 2/3, 1: some steps clip
	}
	logp := func(p []float64) float64 {
		z := make([]float64, 3)
		for k := range z {
			z[k] = f.b[k]
			for j, v := range p {
				z[k] += f.w[k][j] * v
			}
		}
		top := math.Max(z[0], math.Max(z[1], z[2]))
		return z[0] - top - math.Log(math.Exp(z[0]-top)+math.Exp(z[1]-top)+math.Exp(z[2]-top))
	}
	for _, b := range []Budget{{Norm: LInf, Eps: 0.2, Lo: 0, Hi: 1}, {Norm: L2, Eps: 0.5, Lo: 0, Hi: 1}} {
		rec := &bbRecorder{m: f}
		a := SimBA{Budget: b, Step: 0.3, Seed: 4}
		r, err := a.Attack(context.Background(), rec, nets.FromData(append([]float64(nil), x...), 1, d), []int{0})
		if err != nil {
			t.Fatal(err)
		}
		q := rec.rows[:len(rec.rows)-1]
		if r.Success[0] || r.Queries[0] != len(q) {
			t.Fatalf("%v: success %v, %d queries counted, %d made", b.Norm, r.Success[0], r.Queries[0], len(q))
		}
		if len(q) < d+1 {
			t.Fatalf("%v: only %d queries for %d coordinates", b.Norm, len(q), d)
		}
		cur, lp := append([]float64(nil), x...), logp(x)
		done := make([]int, d) // 0 untried, 1 tried +, 2 finished
		for k, p := range q {
			if k == 0 {
				continue
			}
			changed := -1
			for j := range p {
				if p[j] != cur[j] {
					if changed >= 0 {
						t.Fatalf("%v query %d changes coordinates %d and %d", b.Norm, k, changed, j)
					}
					changed = j
				}
			}
			if changed < 0 {
				t.Fatalf("%v query %d repeats the current point", b.Norm, k)
			}
			j := changed
			if done[j] == 2 {
				t.Fatalf("%v query %d retries coordinate %d", b.Norm, k, j)
			}
			step := p[j] - x[j]
			if b.Norm == LInf && math.Abs(math.Abs(step)-b.Eps) > 1e-12 && p[j] != b.Lo && p[j] != b.Hi {
				t.Fatalf("%v query %d: step %g, want ±ε or a clip", b.Norm, k, step)
			}
			if b.Norm == L2 && (math.Abs(step) > a.Step+1e-12 || Distance(L2, p, x) > b.Eps*(1+1e-9)) {
				t.Fatalf("%v query %d: step %g, distance %g", b.Norm, k, step, Distance(L2, p, x))
			}
			if step > 0 && done[j] == 1 {
				t.Fatalf("%v query %d: +α after −α on %d", b.Norm, k, j)
			}
			if l := logp(p); l < lp {
				cur, lp = p, l
				done[j] = 2
			} else if done[j] == 0 && step > 0 {
				done[j] = 1
			} else {
				done[j] = 2
			}
		}
	}
}

func TestLogSoftmaxAt(t *testing.T) {
	z := []float64{1, 2, 3}
	want := 2 - math.Log(math.E+math.Exp(2)+math.Exp(3))
	if got := logSoftmaxAt(z, 1); math.Abs(got-want) > 1e-15 {
		t.Errorf("log softmax %g, want %g", got, want)
	}
	if got := logSoftmaxAt([]float64{1000, 0}, 1); got != -1000 {
		t.Errorf("saturated: %g, want −1000", got)
	}
}
