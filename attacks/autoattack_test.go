package attacks

import (
	"context"
	"math"
	"slices"
	"testing"

	"github.com/certify-dev/certify/nets"
)

// wbShift is a test double: it moves every row it is given by shift (clipped to the
// domain) and records the rows it saw; wbShiftDetailed is the same, Detailed.
type wbShift struct {
	name  string
	shift float64
	b     Budget
	seen  *[][]float64
}

func (s wbShift) Name() string { return s.name }

func (s wbShift) Run(_ context.Context, _ nets.Classifier, x *nets.Tensor, _ []int) (*nets.Tensor, error) {
	out := x.Clone()
	for i := range out.Data {
		*s.seen = append(*s.seen, []float64{x.Data[i]})
		out.Data[i] = min(max(x.Data[i]+s.shift, s.b.Lo), s.b.Hi)
	}
	return out, nil
}

type wbShiftDetailed struct{ wbShift }

func (s wbShiftDetailed) Attack(ctx context.Context, m nets.Classifier, x *nets.Tensor, labels []int) (*Result, error) {
	adv, _ := s.Run(ctx, m, x, labels)
	q := make([]int, len(labels))
	for i := range q {
		q[i] = 10
	}
	return Check(m, s.b, x, adv, labels, q)
}

// TestAutoAttackEnsemble on the 1-D model z = (x, 0.5) (class 0 iff x > 0.5), ε = 0.1:
// rows x = 0.9 (label 0, out of reach), 0.55 (label 0: broken by −ε), 0.45 (label 1:
// broken by +ε), 0.3 (label 0: misclassified to begin with). The first attack moves
// by −ε, the second by +ε. Each attack must see only the rows still robust; each
// row gets the first adversarial found.
func TestAutoAttackEnsemble(t *testing.T) {
	g := linearModel(t, [][]float64{{1}, {0}}, []float64{0, 0.5})
	b := Budget{Norm: LInf, Eps: 0.1, Lo: 0, Hi: 1}
	x := nets.FromData([]float64{0.9, 0.55, 0.45, 0.3}, 4, 1)
	labels := []int{0, 0, 1, 0}
	var seenA, seenB, seenC [][]float64
	aa := AutoAttack{Budget: b, Attacks: []Attack{
		wbShift{"down", -0.1, b, &seenA},
		wbShiftDetailed{wbShift{"up", 0.1, b, &seenB}},
		wbShift{"down-again", -0.1, b, &seenC},
	}}
	r, by, err := aa.AttackBy(context.Background(), g, x, labels)
	if err != nil {
		t.Fatal(err)
	}
	flat := func(v [][]float64) []float64 {
		var out []float64
		for _, e := range v {
			out = append(out, e...)
		}
		return out
	}
	if got := flat(seenA); !slices.Equal(got, []float64{0.9, 0.55, 0.45}) {
		t.Errorf("first attack saw %v, want the 3 correctly classified rows", got)
	}
	if got := flat(seenB); !slices.Equal(got, []float64{0.9, 0.45}) {
		t.Errorf("second attack saw %v, want the 2 rows still robust", got)
	}
	if got := flat(seenC); !slices.Equal(got, []float64{0.9}) {
		t.Errorf("third attack saw %v, want the one row still robust", got)
	}
	if !slices.Equal(r.Success, []bool{false, true, true, true}) {
		t.Errorf("success %v", r.Success)
	}
	if !slices.Equal(by, []string{"", "down", "up", "clean"}) {
		t.Errorf("broken by %v", by)
	}
	want := []float64{0.9, 0.55 - 0.1, 0.45 + 0.1, 0.3}
	for i := range want {
		if math.Abs(r.Adv.Data[i]-want[i]) > 1e-15 {
			t.Errorf("adv %v, want %v", r.Adv.Data, want)
		}
	}
	// Queries: 1 clean pass; "down" reports none (not Detailed), "up" 10 per row.
	if !slices.Equal(r.Queries, []int{11, 1, 11, 1}) {
		t.Errorf("queries %v", r.Queries)
	}
}

// TestAutoAttackRejectsEscapes: an attack in the list returning a point outside the
// ensemble's budget is an error, not a success.
func TestAutoAttackRejectsEscapes(t *testing.T) {
	g := linearModel(t, [][]float64{{1}, {0}}, []float64{0, 0.5})
	b := Budget{Norm: LInf, Eps: 0.1, Lo: 0, Hi: 1}
	var seen [][]float64
	aa := AutoAttack{Budget: b, Attacks: []Attack{wbShift{"far", -0.3, b, &seen}}}
	if _, err := aa.Attack(context.Background(), g, nets.FromData([]float64{0.7}, 1, 1), []int{0}); err == nil {
		t.Fatal("point at distance 0.3 accepted for ε = 0.1")
	}
}

func TestAutoAttackDefaults(t *testing.T) {
	names := func(a AutoAttack) []string {
		var out []string
		for _, at := range a.Attacks {
			out = append(out, at.Name())
		}
		return out
	}
	if got := names(NewAutoAttack(Budget{Norm: LInf, Eps: 0.1, Lo: 0, Hi: 1}, 1)); !slices.Equal(got, []string{"apgd-ce", "apgd-t", "square"}) {
		t.Errorf("L∞ list %v", got)
	}
	if got := names(NewAutoAttack(Budget{Norm: L2, Eps: 1, Lo: 0, Hi: 1}, 1)); !slices.Equal(got, []string{"apgd-ce", "apgd-t"}) {
		t.Errorf("L2 list %v", got)
	}
	if got := names(NewAutoAttackRand(Budget{Norm: LInf, Eps: 0.1, Lo: 0, Hi: 1}, 1)); !slices.Equal(got, []string{"apgd-ce", "apgd-dlr"}) {
		t.Errorf("rand list %v", got)
	}
}

// TestAutoAttackMLP: the ensemble is at least as strong as its first attack run
// alone (that run is the ensemble's first stage, on the same rows, all clean-correct
// here) and every row it reports broken is misclassified (wbRun re-checks).
func TestAutoAttackMLP(t *testing.T) {
	g, x, y := shippedMLP(t, 16)
	b := Budget{Norm: LInf, Eps: 0.05, Lo: 0, Hi: 1}
	ce := NewAPGD(b, 1)
	ce.Iters = 20
	at := NewAPGDT(b, 1)
	at.Iters, at.Targets = 20, 3
	sq := NewSquare(b, 1)
	sq.Queries = 300
	aa := AutoAttack{Budget: b, Attacks: []Attack{ce, at, sq}}
	accAA := wbRobustAcc(wbRun(t, aa, g, x, y))
	accCE := wbRobustAcc(wbRun(t, ce, g, x, y))
	t.Logf("robust accuracy: apgd-ce %g, ensemble %g", accCE, accAA)
	if accAA > accCE {
		t.Errorf("ensemble (%g) weaker than its first attack (%g)", accAA, accCE)
	}
}
