package main

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certify-dev/certify/internal/cli"
	"github.com/certify-dev/certify/nets"
	"github.com/certify-dev/certify/pipeline"
)

var boundMethods = []string{"ibp", "crown", "alpha-crown"}

// exactMargin is the fixture's own worst case over the L∞ box of radius r around
// sample s clipped to [0,1]: for a linear model min over the box of z_y − z_j is
// attained at a corner, coordinate by coordinate.
func (f *fixture) exactMargin(s int, r float64) float64 {
	y := f.y[s]
	best := math.Inf(1)
	for j := range f.w {
		if j == y {
			continue
		}
		v := f.b[y] - f.b[j]
		for i := 0; i < 6; i++ {
			x := f.x.Data[s*6+i]
			w := f.w[y][i] - f.w[j][i]
			if w >= 0 {
				v += w * math.Max(x-r, 0)
			} else {
				v += w * math.Min(x+r, 1)
			}
		}
		best = math.Min(best, v)
	}
	return best
}

// TestBoundMethodsLinear: on the linear fixture every bound method is exact over
// the box, so each margin is the fixture's own worst case; for --norm l2 the
// methods certify the enclosing box, so the margins are the same as for linf
// (sound, looser than the ball). --sound-fp may only lower them, by a hair.
// Misclassified samples are neither certified nor given a margin.
func TestBoundMethodsLinear(t *testing.T) {
	f := newFixture(t, 24)
	const r = 0.1
	for _, args := range [][]string{{"--norm", "linf"}, {"--norm", "l2"}, {"--sound-fp"}} {
		all := append([]string{"-q", "--radius", "0.1", "--methods", strings.Join(boundMethods, ",")}, args...)
		rep, _, _ := f.report(t, all...)
		if strings.Join(rep.Methods, ",") != strings.Join(boundMethods, ",") {
			t.Fatalf("%v: methods %v", args, rep.Methods)
		}
		for _, s := range rep.Samples {
			want := f.exactMargin(s.Index, r)
			for _, m := range boundMethods {
				if !s.Correct() {
					if s.Certified[m] || len(s.Margins) != 0 {
						t.Errorf("%v sample %d (misclassified): certified %v, margins %v", args, s.Index, s.Certified, s.Margins)
					}
					continue
				}
				got, ok := s.Margins[m]
				if d := want - got; !ok || d < -1e-12 || (args[0] != "--sound-fp" && d > 1e-12) || d > 1e-9 {
					t.Errorf("%v sample %d %s: margin %v (present %v), want %v", args, s.Index, m, got, ok, want)
				}
				if s.Certified[m] != (got > 0) {
					t.Errorf("%v sample %d %s: certified %v with margin %v", args, s.Index, m, s.Certified[m], got)
				}
			}
		}
	}
}

// TestBoundMethodsMNIST is the command of the issue on the shipped MLP:
// certify --methods ibp,crown,alpha-crown --radius 0.02 -n 20. The report has
// certified, margins, certified accuracy and seconds per method, certified ⊆
// correct, and ibp ≤ crown ≤ alpha-crown in count.
func TestBoundMethodsMNIST(t *testing.T) {
	if testing.Short() {
		t.Skip("MNIST model")
	}
	out := filepath.Join(t.TempDir(), "r.json")
	code, stdout, stderr := runCmd("--methods", "ibp,crown,alpha-crown", "--radius", "0.02", "-n", "20",
		"--json", out, "../../testdata/mnist_mlp.onnx")
	if code != cli.ExitOK {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	for _, s := range []string{"certified accuracy: ibp", "certified accuracy: crown", "certified accuracy: alpha-crown", "seconds: alpha-crown"} {
		if !strings.Contains(stdout, s) {
			t.Errorf("table lacks %q:\n%s", s, stdout)
		}
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var rep pipeline.Report
	var m map[string]any
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	sum := m["summary"].(map[string]any)
	count := map[string]int{}
	for _, name := range boundMethods {
		if _, ok := sum["certified_accuracy"].(map[string]any)[name]; !ok {
			t.Errorf("no summary.certified_accuracy.%s", name)
		}
		if _, ok := sum["seconds"].(map[string]any)[name]; !ok {
			t.Errorf("no summary.seconds.%s", name)
		}
		for _, s := range rep.Samples {
			c, ok := s.Certified[name]
			if !ok {
				t.Errorf("sample %d: no certified.%s", s.Index, name)
			}
			if c && !s.Correct() {
				t.Errorf("sample %d: certified by %s but misclassified", s.Index, name)
			}
			if _, has := s.Margins[name]; s.Correct() != has {
				t.Errorf("sample %d (correct %v): margins.%s present %v", s.Index, s.Correct(), name, has)
			}
			if c {
				count[name]++
			}
		}
		if got := rep.Summary.CertifiedAccuracy[name]; got != float64(count[name])/20 {
			t.Errorf("certified accuracy %s %v, want %d/20", name, got, count[name])
		}
	}
	if !(count["ibp"] <= count["crown"] && count["crown"] <= count["alpha-crown"]) {
		t.Errorf("certified counts %v: want ibp ≤ crown ≤ alpha-crown", count)
	}
	for _, s := range rep.Samples {
		if s.Correct() && (s.Margins["crown"] < s.Margins["ibp"]-1e-9 || s.Margins["alpha-crown"] < s.Margins["crown"]-1e-9) {
			t.Errorf("sample %d: margins %v: want ibp ≤ crown ≤ alpha-crown", s.Index, s.Margins)
		}
	}
	t.Logf("certified of 20: %v, seconds %v", count, rep.Summary.Seconds)
}

// classifierOnly hides a graph behind the Classifier interface.
type classifierOnly struct{ g *nets.Graph }

func (c classifierOnly) Logits(x *nets.Tensor) (*nets.Tensor, error) { return c.g.Logits(x) }

// TestVerifierMethodNeedsGraph: a model that is not a graph is a clear error.
func TestVerifierMethodNeedsGraph(t *testing.T) {
	f := newFixture(t, 2)
	g, err := nets.ReadONNX(f.model)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range boundMethods {
		m := methods()[name](stageOptions{})
		q := pipeline.Query{X: f.x.Row(0), Label: f.y[0], Region: pipeline.Region{Center: f.x.Row(0), Norm: pipeline.LInf, Radius: 0.1, Domain: pipeline.Domain{Lo: 0, Hi: 1}}}
		if _, err := m.Certify(context.Background(), classifierOnly{g}, q); err == nil || !strings.Contains(err.Error(), "needs its graph") {
			t.Errorf("%s: error %v", name, err)
		}
		if _, ok := m.(pipeline.BatchMethod); !ok {
			t.Errorf("%s is not a pipeline.BatchMethod", name)
		}
		c, err := m.Certify(context.Background(), g, q)
		if err != nil || c.Margin != f.exactMargin(0, 0.1) && math.Abs(c.Margin-f.exactMargin(0, 0.1)) > 1e-12 {
			t.Errorf("%s: Certify %+v, %v; want margin %v", name, c, err, f.exactMargin(0, 0.1))
		}
	}
}

// TestHelpBoundMethods: --help documents the bound methods, --sound-fp and what
// --norm l2 means for them.
func TestHelpBoundMethods(t *testing.T) {
	_, stdout, _ := runCmd("--help")
	for _, s := range []string{"--sound-fp", "ibp", "alpha-crown", "smallest box containing the L2 ball"} {
		if !strings.Contains(stdout, s) {
			t.Errorf("usage lacks %q", s)
		}
	}
}

// TestVerifierMethodBatches runs the bound methods through the pipeline on 12
// MNIST samples (radius 0.02) with batches of 1, 5 and 32 on 1 and 2 workers:
// the same batches give the same report bit for bit, whatever the workers, and
// other batch sizes the same verdicts with margins equal up to rounding.
func TestVerifierMethodBatches(t *testing.T) {
	if testing.Short() {
		t.Skip("MNIST model")
	}
	g, err := nets.ReadONNX("../../testdata/mnist_mlp.onnx")
	if err != nil {
		t.Fatal(err)
	}
	xs, err := nets.ReadNPY("../../testdata/mnist-test-1k.npy")
	if err != nil {
		t.Fatal(err)
	}
	ys, err := nets.ReadNPY("../../testdata/mnist-test-1k-labels.npy")
	if err != nil {
		t.Fatal(err)
	}
	const n = 12
	x := nets.FromData(append([]float64(nil), xs.Data[:n*784]...), n, 1, 28, 28)
	labels := make([]int, n)
	for i := range labels {
		labels[i] = int(ys.Data[i])
	}
	var ms []pipeline.Method
	for _, name := range boundMethods {
		ms = append(ms, methods()[name](stageOptions{}))
	}
	run := func(batch, workers int) *pipeline.Report {
		rep, err := pipeline.Run(context.Background(), pipeline.Config{Model: g, X: x, Labels: labels,
			Radius: 0.02, Norm: pipeline.LInf, Domain: pipeline.Domain{Lo: 0, Hi: 1},
			Methods: ms, MethodBatch: batch, Workers: workers})
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	ref := run(5, 1)
	for _, c := range [][2]int{{5, 2}, {1, 2}, {32, 1}} {
		rep := run(c[0], c[1])
		for i, s := range rep.Samples {
			r := ref.Samples[i]
			for _, m := range boundMethods {
				same := s.Certified[m] == r.Certified[m] && s.Margins[m] == r.Margins[m]
				close := s.Certified[m] == r.Certified[m] && math.Abs(s.Margins[m]-r.Margins[m]) <= 1e-12*(1+math.Abs(r.Margins[m]))
				if (c[0] == 5 && !same) || !close {
					t.Errorf("batch %d, workers %d, sample %d, %s: certified %v margin %v; batch 5 on 1 worker: %v %v",
						c[0], c[1], s.Index, m, s.Certified[m], s.Margins[m], r.Certified[m], r.Margins[m])
				}
			}
		}
	}
}
