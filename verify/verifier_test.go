package verify

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/certify-dev/certify/bounds"
	"github.com/certify-dev/certify/nets"
)

// netA is y = relu(x1 + x2 + 0.5) − relu(x1 − x2 + 0.25) on [0,1]², worked out in
// bounds/handnet_blackbox_test.go: y ∈ [0.25, 2.25] exactly; proven lower bounds
// of y: IBP −0.75, CROWN and α-CROWN −0.125; of −y: IBP −2.5, CROWN −2.25.
func netA(t *testing.T) *nets.Graph {
	t.Helper()
	return dense(t, [][][]float64{{{1, 1}, {1, -1}}, {{1, -1}}}, [][]float64{{0.5, 0.25}, {0}})
}

// dense builds x → Gemm → Relu → … → Gemm → y from weights ws[l] ([out][in]).
func dense(t *testing.T, ws [][][]float64, bs [][]float64) *nets.Graph {
	t.Helper()
	in := len(ws[0][0])
	g := &nets.Graph{Name: "dense", Inputs: []nets.ValueInfo{{Name: "x", Shape: []int{-1, in}}},
		Params: map[string]*nets.Tensor{}, Opset: 13}
	cur := "x"
	for l, w := range ws {
		wt := nets.NewTensor(len(w), in)
		for i, row := range w {
			copy(wt.Data[i*in:], row)
		}
		wn, bn, z := "W"+string(rune('1'+l)), "b"+string(rune('1'+l)), "z"+string(rune('1'+l))
		g.Params[wn], g.Params[bn] = wt, nets.FromData(append([]float64(nil), bs[l]...), len(w))
		if l == len(ws)-1 {
			z = "y"
		}
		g.Nodes = append(g.Nodes, &nets.Node{Name: z, Op: nets.Gemm{TransB: true, Alpha: 1, Beta: 1}, Inputs: []string{cur, wn, bn}, Outputs: []string{z}})
		cur, in = z, len(w)
		if l < len(ws)-1 {
			h := "h" + string(rune('1'+l))
			g.Nodes = append(g.Nodes, &nets.Node{Name: h, Op: nets.Relu{}, Inputs: []string{cur}, Outputs: []string{h}})
			cur = h
		}
	}
	g.Outputs = []nets.ValueInfo{{Name: "y", Shape: []int{-1, in}}}
	if err := g.Validate(); err != nil {
		t.Fatal(err)
	}
	return g
}

func unitRegion() Region {
	return Region{Lo: nets.FromData([]float64{0, 0}, 1, 2), Hi: nets.FromData([]float64{1, 1}, 1, 2)}
}

func verifiers() []BatchVerifier {
	return []BatchVerifier{IBP{}, CROWN{}, AlphaCROWN{}, IBP{SoundFP: true}, CROWN{SoundFP: true}, AlphaCROWN{SoundFP: true, Iterations: 5}}
}

// TestVerdicts: on net A, with the bounds worked out by hand,
//
//	y + 1 > 0:    IBP −0.75+1 = 0.25, CROWN 0.875: verified by all;
//	y + 0.5 > 0:  IBP −0.25 unknown, CROWN 0.375 verified;
//	y − 3/16 > 0: true (min y = 0.25) but IBP −0.9375, CROWN −0.3125: unknown;
//	−y + 1 > 0:   false: at the centre (0.5, 0.5) y = 1.25, so falsified there.
func TestVerdicts(t *testing.T) {
	g := netA(t)
	tests := []struct {
		spec bounds.Spec
		want map[string]Verdict
		m    map[string]float64
	}{
		{bounds.Spec{C: [][]float64{{1}}, D: []float64{1}},
			map[string]Verdict{"ibp": Verified, "crown": Verified, "alpha-crown": Verified},
			map[string]float64{"ibp": 0.25, "crown": 0.875, "alpha-crown": 0.875}},
		{bounds.Spec{C: [][]float64{{1}}, D: []float64{0.5}},
			map[string]Verdict{"ibp": Unknown, "crown": Verified, "alpha-crown": Verified},
			map[string]float64{"ibp": -0.25, "crown": 0.375, "alpha-crown": 0.375}},
		{bounds.Spec{C: [][]float64{{1}}, D: []float64{-0.1875}},
			map[string]Verdict{"ibp": Unknown, "crown": Unknown, "alpha-crown": Unknown},
			map[string]float64{"ibp": -0.9375, "crown": -0.3125, "alpha-crown": -0.3125}},
		{bounds.Spec{C: [][]float64{{1}, {-1}}, D: []float64{1, 1}},
			map[string]Verdict{"ibp": Falsified, "crown": Falsified, "alpha-crown": Falsified},
			map[string]float64{"ibp": -1.5, "crown": -1.25, "alpha-crown": -1.25}},
	}
	for _, tc := range tests {
		for _, v := range verifiers() {
			res, err := v.Verify(context.Background(), g, unitRegion(), tc.spec)
			if err != nil {
				t.Fatalf("%s: %v", v.Name(), err)
			}
			if res.Verdict != tc.want[v.Name()] {
				t.Errorf("%s on %+v: %v, want %v", v.Name(), tc.spec, res.Verdict, tc.want[v.Name()])
			}
			want := tc.m[v.Name()]
			if d := want - res.Margin; d < 0 || d > 1e-12 {
				t.Errorf("%T%+v on %+v: margin %v, want %v (a hair below with SoundFP)", v, v, tc.spec, res.Margin, want)
			}
			if (res.Verdict == Verified) != (res.Margin > 0) {
				t.Errorf("%s: verdict %v with margin %v", v.Name(), res.Verdict, res.Margin)
			}
			if res.Verdict == Falsified {
				ce := res.Counterexample
				if ce == nil || !reflect.DeepEqual(ce.Shape, []int{1, 2}) || ce.Data[0] != 0.5 || ce.Data[1] != 0.5 {
					t.Fatalf("%s: counterexample %v, want the centre [[0.5 0.5]]", v.Name(), ce)
				}
				y, err := g.Logits(ce)
				if err != nil {
					t.Fatal(err)
				}
				if v := -y.Data[0] + 1; v > 0 {
					t.Errorf("counterexample gives −y+1 = %v, not a violation", v)
				}
			} else if res.Counterexample != nil {
				t.Errorf("%s: counterexample with verdict %v", v.Name(), res.Verdict)
			}
		}
	}
}

// TestNoRows: a spec without rows holds trivially: verified, margin +Inf.
func TestNoRows(t *testing.T) {
	for _, v := range verifiers() {
		res, err := v.Verify(context.Background(), netA(t), unitRegion(), bounds.Spec{})
		if err != nil {
			t.Fatalf("%s: %v", v.Name(), err)
		}
		if res.Verdict != Verified || !math.IsInf(res.Margin, 1) {
			t.Errorf("%s: %+v, want verified with margin +Inf", v.Name(), res)
		}
	}
}

// randomMLP is a 2-16-16-3 ReLU net and a batch of n regions (radius 0.15 around
// random points of [0,1]², clipped) with "the prediction at the centre wins" specs.
func randomMLP(t *testing.T, seed uint64, n int) (*nets.Graph, Region, []bounds.Spec) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 2))
	g, err := nets.MLP(rng, []int{2}, 16, 16, 3)
	if err != nil {
		t.Fatal(err)
	}
	x := nets.NewTensor(n, 2)
	for i := range x.Data {
		x.Data[i] = rng.Float64()
	}
	y, err := g.Logits(x)
	if err != nil {
		t.Fatal(err)
	}
	specs := make([]bounds.Spec, n)
	for i, label := range y.Argmax() {
		if specs[i], err = bounds.RobustnessSpec(3, label); err != nil {
			t.Fatal(err)
		}
	}
	return g, LinfRegion(x, 0.15, 0, 1), specs
}

// TestBatchEqualsSingle: a sample's result does not depend on the other samples of
// its batch: VerifyBatch gives every row exactly what it gives it in the reversed
// batch, and what Verify gives it alone up to rounding (1e-12 relative: products of
// a batch of one and of twelve go through different BLAS kernels, whose sums may
// differ in the last bit). Batch without BatchVerifier loops over Verify.
func TestBatchEqualsSingle(t *testing.T) {
	g, r, specs := randomMLP(t, 1, 12)
	rev := Region{Lo: nets.NewTensor(r.Lo.Shape...), Hi: nets.NewTensor(r.Hi.Shape...)}
	n := len(specs)
	revSpecs := make([]bounds.Spec, n)
	for i := 0; i < n; i++ {
		copy(rev.Lo.Data[2*(n-1-i):], r.Lo.Data[2*i:2*i+2])
		copy(rev.Hi.Data[2*(n-1-i):], r.Hi.Data[2*i:2*i+2])
		revSpecs[n-1-i] = specs[i]
	}
	for _, v := range verifiers() {
		batch, err := v.VerifyBatch(context.Background(), g, r, specs)
		if err != nil {
			t.Fatal(err)
		}
		reversed, err := v.VerifyBatch(context.Background(), g, rev, revSpecs)
		if err != nil {
			t.Fatal(err)
		}
		looped, err := Batch(context.Background(), onlySingle{v}, g, r, specs)
		if err != nil {
			t.Fatal(err)
		}
		verdicts := map[Verdict]int{}
		for i := range specs {
			one, err := v.Verify(context.Background(), g, r.Row(i), specs[i])
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(batch[i], reversed[n-1-i]) || !reflect.DeepEqual(one, looped[i]) ||
				one.Verdict != batch[i].Verdict || math.Abs(one.Margin-batch[i].Margin) > 1e-12*(1+math.Abs(one.Margin)) {
				t.Errorf("%T%+v sample %d: alone %+v, in the batch %+v, in the reversed batch %+v, looped %+v", v, v, i, one, batch[i], reversed[n-1-i], looped[i])
			}
			verdicts[one.Verdict]++
		}
		t.Logf("%T%+v: %v", v, v, verdicts)
	}
}

// onlySingle hides VerifyBatch, so that Batch must loop over Verify.
type onlySingle struct{ v Verifier }

func (o onlySingle) Name() string { return o.v.Name() }
func (o onlySingle) Verify(ctx context.Context, g *nets.Graph, r Region, s bounds.Spec) (Result, error) {
	return o.v.Verify(ctx, g, r, s)
}

// TestErrors: bad input is an error naming the problem, never a panic.
func TestErrors(t *testing.T) {
	g := netA(t)
	s := bounds.Spec{C: [][]float64{{1}}, D: []float64{0}}
	two := Region{Lo: nets.NewTensor(2, 2), Hi: nets.NewTensor(2, 2)}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name  string
		ctx   context.Context
		g     *nets.Graph
		r     Region
		specs []bounds.Spec
		want  string
	}{
		{"nil graph", context.Background(), nil, unitRegion(), []bounds.Spec{s}, "no graph"},
		{"no region", context.Background(), g, Region{}, []bounds.Spec{s}, "without bounds"},
		{"shapes", context.Background(), g, Region{Lo: nets.NewTensor(1, 2), Hi: nets.NewTensor(1, 3)}, []bounds.Spec{s}, "Lo has shape"},
		{"no batch", context.Background(), g, Region{Lo: nets.NewTensor(2), Hi: nets.NewTensor(2)}, []bounds.Spec{s}, "no batch dimension"},
		{"count", context.Background(), g, two, []bounds.Spec{s}, "2 samples with 1 specs"},
		{"empty", context.Background(), g, Region{Lo: nets.FromData([]float64{0, 1}, 1, 2), Hi: nets.FromData([]float64{1, 0}, 1, 2)}, []bounds.Spec{s}, "empty at element 1"},
		{"nan", context.Background(), g, Region{Lo: nets.FromData([]float64{0, math.NaN()}, 1, 2), Hi: nets.FromData([]float64{1, 1}, 1, 2)}, []bounds.Spec{s}, "NaN"},
		{"spec D", context.Background(), g, unitRegion(), []bounds.Spec{{C: [][]float64{{1}}}}, "1 rows in C but 0 in D"},
		{"spec ragged", context.Background(), g, unitRegion(), []bounds.Spec{{C: [][]float64{{1}, {1, 2}}, D: []float64{0, 0}}}, "row 1 of C has 2 columns"},
		{"spec inf", context.Background(), g, unitRegion(), []bounds.Spec{{C: [][]float64{{math.Inf(1)}}, D: []float64{0}}}, "C[0][0] is +Inf"},
		{"spec width", context.Background(), g, unitRegion(), []bounds.Spec{{C: [][]float64{{1, 1}}, D: []float64{0}}}, ""},
		{"cancelled", cancelled, g, unitRegion(), []bounds.Spec{s}, "context canceled"},
	}
	for _, tc := range tests {
		for _, v := range verifiers() {
			_, err := v.VerifyBatch(tc.ctx, tc.g, tc.r, tc.specs)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s, %s: error %v, want one containing %q", tc.name, v.Name(), err, tc.want)
			}
			if tc.name == "cancelled" && !errors.Is(err, context.Canceled) {
				t.Errorf("%s: %v does not wrap context.Canceled", v.Name(), err)
			}
		}
	}
	for _, v := range verifiers() {
		if _, err := v.Verify(context.Background(), g, two, s); err == nil || !strings.Contains(err.Error(), "batch 1") {
			t.Errorf("%s: Verify on a batch of 2: %v", v.Name(), err)
		}
	}
	if _, err := (AlphaCROWN{Iterations: -1}).VerifyBatch(context.Background(), g, unitRegion(), []bounds.Spec{s}); err == nil {
		t.Errorf("alpha-crown with -1 iterations: no error")
	}
}

func TestVerdictString(t *testing.T) {
	for v, want := range map[Verdict]string{Unknown: "unknown", Verified: "verified", Falsified: "falsified", 7: "Verdict(7)"} {
		if got := v.String(); got != want {
			t.Errorf("%d: %q, want %q", int(v), got, want)
		}
	}
	var r Result
	if r.Verdict != Unknown {
		t.Errorf("zero Result claims %v", r.Verdict)
	}
}
