package verify

import (
	"context"
	"encoding/csv"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/certify-dev/certify/nets"
)

// instance is one row of the benchmarks' answers.csv.
type instance struct {
	family, onnx, vnnlib, answer string
}

func readAnswers(t *testing.T, dir string) []instance {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "answers.csv"))
	if err != nil {
		t.Skip(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var out []instance
	for _, r := range rows[1:] {
		out = append(out, instance{family: r[0], onnx: r[1], vnnlib: r[2], answer: r[4]})
	}
	return out
}

// checkDecision asserts a decision does not contradict the published answer
// and that a sat counterexample lies in a box of the property and satisfies one
// of its conjuncts when the network is evaluated again here.
func checkDecision(t *testing.T, name string, g *nets.Graph, p *Property, truth string, dec Decision) {
	t.Helper()
	switch {
	case dec.Outcome == OutcomeUnsat && truth == "sat":
		t.Errorf("%s: unsat, the published answer is sat: UNSOUND", name)
	case dec.Outcome == OutcomeSat && truth == "unsat":
		t.Errorf("%s: sat, the published answer is unsat", name)
	}
	if dec.Outcome != OutcomeSat {
		return
	}
	shape, err := g.InputShape()
	if err != nil {
		t.Fatal(err)
	}
	y, err := g.Logits(nets.FromData(append([]float64(nil), dec.X...), append([]int{1}, shape...)...))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range p.Cases {
		if !inBox(dec.X, c.Lo, c.Hi) {
			continue
		}
		for _, k := range c.Out {
			if k.Holds(y.Data) {
				return
			}
		}
	}
	t.Errorf("%s: the counterexample %v (output %v) satisfies no case", name, dec.X, y.Data)
}

// TestDecideVNNCOMP decides the small families of the shared VNN-COMP instances
// with a short budget each, and checks every answer against the published one.
func TestDecideVNNCOMP(t *testing.T) {
	if testing.Short() {
		t.Skip("VNN-COMP instances")
	}
	dir := vnncompDir(t)
	budget := map[string]time.Duration{"test": time.Second, "reach_prob_density": time.Second, "acasxu": 300 * time.Millisecond,
		"rl_benchmarks": time.Second, "collins_rul_cnn": time.Second}
	// Every instance of the small families, every 4th of the larger ones.
	every := map[string]int{"acasxu": 4, "rl_benchmarks": 4, "collins_rul_cnn": 2}
	models := map[string]*nets.Graph{}
	counts := map[string]map[string]int{}
	start := time.Now()
	for i, in := range readAnswers(t, dir) {
		b, ok := budget[in.family]
		if !ok || (every[in.family] > 0 && i%every[in.family] != 0) {
			continue
		}
		g := models[in.onnx]
		if g == nil {
			var err error
			if g, err = nets.ReadONNX(filepath.Join(dir, in.onnx)); err != nil {
				t.Fatal(err)
			}
			models[in.onnx] = g
		}
		p, err := ReadVNNLIB(filepath.Join(dir, in.vnnlib))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), b)
		dec, err := Decide(ctx, g, p, DecideOptions{Seed: 1})
		cancel()
		if err != nil {
			t.Errorf("%s %s: %v", in.onnx, in.vnnlib, err)
			continue
		}
		checkDecision(t, in.onnx+" "+in.vnnlib, g, p, in.answer, dec)
		if counts[in.family] == nil {
			counts[in.family] = map[string]int{}
		}
		counts[in.family][in.answer+"→"+dec.Outcome.String()]++
	}
	t.Logf("%v in %v", counts, time.Since(start))
}

// TestDecideSmall: y = relu(x1 + x2 + 0.5) − relu(x1 − x2 + 0.25) takes exactly
// the values [0.25, 2.25] on [0,1]² (minimum at (0,0), maximum at (1,1)), so the
// unsafe sets y ≤ 0.2 and y ≥ 2.3 are empty and y ≥ 2.2, y ≤ 0.3 are not.
func TestDecideSmall(t *testing.T) {
	g := &nets.Graph{
		Inputs:  []nets.ValueInfo{{Name: "x", Shape: []int{-1, 2}}},
		Outputs: []nets.ValueInfo{{Name: "y", Shape: []int{-1, 1}}},
		Params: map[string]*nets.Tensor{
			"W1": nets.FromData([]float64{1, 1, 1, -1}, 2, 2), "b1": nets.FromData([]float64{0.5, 0.25}, 2),
			"W2": nets.FromData([]float64{1, -1}, 1, 2), "b2": nets.FromData([]float64{0}, 1),
		},
		Nodes: []*nets.Node{
			{Name: "fc1", Op: nets.Gemm{TransB: true, Alpha: 1, Beta: 1}, Inputs: []string{"x", "W1", "b1"}, Outputs: []string{"z"}},
			{Name: "relu", Op: nets.Relu{}, Inputs: []string{"z"}, Outputs: []string{"h"}},
			{Name: "fc2", Op: nets.Gemm{TransB: true, Alpha: 1, Beta: 1}, Inputs: []string{"h", "W2", "b2"}, Outputs: []string{"y"}},
		},
	}
	head := "(declare-const X_0 Real)(declare-const X_1 Real)(declare-const Y_0 Real)\n" +
		"(assert (>= X_0 0))(assert (<= X_0 1))(assert (>= X_1 0))(assert (<= X_1 1))\n"
	for _, tc := range []struct {
		out  string
		want Outcome
	}{
		{"(assert (<= Y_0 0.2))", OutcomeUnsat},
		{"(assert (>= Y_0 2.3))", OutcomeUnsat},
		{"(assert (or (<= Y_0 0.2) (>= Y_0 2.3)))", OutcomeUnsat},
		{"(assert (>= Y_0 2.2))", OutcomeSat},
		{"(assert (<= Y_0 0.3))", OutcomeSat},
		{"(assert (<= Y_0 0.25))", OutcomeSat}, // only at the corner (0,0)
		{"(assert (or (<= Y_0 0.2) (>= Y_0 2.2)))", OutcomeSat},
		{"(assert (and (<= Y_0 0.3) (>= Y_0 2.2)))", OutcomeUnsat},
	} {
		p := parseString(t, head+tc.out)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		dec, err := Decide(ctx, g, p, DecideOptions{Seed: 3})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if dec.Outcome != tc.want {
			t.Errorf("%s: %v, want %v", tc.out, dec.Outcome, tc.want)
		}
		if dec.Outcome == OutcomeSat {
			checkDecision(t, tc.out, g, p, tc.want.String(), dec)
		}
	}
}

// TestFreeBatch: a model declared with a fixed batch of 1 gets a free batch
// for branch and bound when its batched evaluation equals the per-row one, and
// the original graph is left as it was.
func TestFreeBatch(t *testing.T) {
	g, err := nets.MLP(rand.New(rand.NewPCG(1, 2)), []int{3}, 4, 2)
	if err != nil {
		t.Fatal(err)
	}
	g.Inputs[0].Shape = []int{1, 3}
	free, ok := freeBatch(g, []int{3})
	if !ok {
		t.Fatal("a per-row MLP was not given a free batch")
	}
	if free.Inputs[0].Shape[0] != -1 || g.Inputs[0].Shape[0] != 1 {
		t.Fatalf("shapes: free %v, original %v", free.Inputs[0].Shape, g.Inputs[0].Shape)
	}
	x := nets.FromData([]float64{0.1, -0.2, 0.3, 0.5, 0.4, -0.6}, 2, 3)
	y, err := free.Logits(x)
	if err != nil {
		t.Fatal(err)
	}
	for row := 0; row < 2; row++ {
		y1, err := g.Logits(nets.FromData(append([]float64(nil), x.Data[row*3:(row+1)*3]...), 1, 3))
		if err != nil {
			t.Fatal(err)
		}
		for j, v := range y1.Data {
			if y.Data[row*2+j] != v {
				t.Fatalf("row %d output %d: batched %v, alone %v", row, j, y.Data[row*2+j], v)
			}
		}
	}
}
