package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/certify-dev/certify/internal/cli"
	"github.com/certify-dev/certify/nets"
	"github.com/certify-dev/certify/pipeline"
)

const (
	shippedMLP    = "../../testdata/mnist_mlp.onnx"
	shippedData   = "../../testdata/mnist-test-1k.npy"
	shippedLabels = "../../testdata/mnist-test-1k-labels.npy"
)

// certifyAll is a planted bug: a "method" that certifies every sample.
type certifyAll struct{}

func (certifyAll) Name() string { return "everything" }
func (certifyAll) Certify(context.Context, nets.Classifier, pipeline.Query) (pipeline.Certificate, error) {
	return pipeline.Certificate{Certified: true, Margin: 1}, nil
}

// runJSON runs the command with the given methods, writing the report to a file, and
// returns the exit code, the report, stdout and stderr.
func runJSON(t *testing.T, known methodSet, args ...string) (int, pipeline.Report, map[string]any, string, string) {
	t.Helper()
	code, rep, raw, stdout, stderr := runReport(t, known, args...)
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return code, rep, m, stdout, stderr
}

// The planted bug is caught: every sample FGSM breaks is a falsified certificate of
// "everything", listed per sample and in the table, and the exit status is 3.
func TestFalsifiedCertificatesExit3(t *testing.T) {
	known := methods()
	known["everything"] = func(stageOptions) pipeline.Method { return certifyAll{} }
	code, rep, _, stdout, stderr := runJSON(t, known, "-q", "-n", "30", "--radius", "0.1", "--methods", "everything,ibp",
		"--attacks", "fgsm", "--data", shippedData, "--labels", shippedLabels, shippedMLP)
	if code != exitFalsified {
		t.Fatalf("exit %d, want 3\n%s", code, stderr)
	}
	var broken []string
	for _, s := range rep.Samples {
		if s.Attacks["fgsm"] {
			broken = append(broken, fmt.Sprint(s.Index))
			if !slices.Equal(s.Falsified, []string{"everything"}) {
				t.Errorf("sample %d: falsified %v, want [everything] (ibp is sound)", s.Index, s.Falsified)
			}
		} else if len(s.Falsified) > 0 {
			t.Errorf("sample %d: not attacked, yet falsified %v", s.Index, s.Falsified)
		}
	}
	if len(broken) < 10 {
		t.Fatalf("FGSM broke only %d of 30 samples: test degenerate", len(broken))
	}
	if f := rep.Summary.FalsifiedCertificates; f == nil || *f != len(broken) {
		t.Errorf("falsified_certificates %v, want %d", f, len(broken))
	}
	// 30 samples: no per-sample table, but the falsified samples are listed.
	if !strings.Contains(stdout, fmt.Sprintf("falsified certificates, %d samples:", len(broken))) ||
		!strings.Contains(stdout, "FALSIFIED") || !strings.Contains(stdout, "UNSOUND METHOD") || strings.Contains(stdout, "\x1b[") {
		t.Errorf("tables:\n%s", stdout)
	}
	for _, ix := range broken {
		if c := cells(rowOf(stdout, ix)); len(c) == 0 || c[len(c)-1] != "everything" {
			t.Errorf("sample %s: table row %q", ix, rowOf(stdout, ix))
		}
	}
	if !strings.Contains(stderr, fmt.Sprintf("%d falsified certificates", len(broken))) {
		t.Errorf("stderr %q", stderr)
	}
	// The real command does not know the fake.
	if code, _, _ := runCmd("--methods", "everything", shippedMLP); code != cli.ExitUsage {
		t.Errorf("--methods everything without the test hook: exit %d", code)
	}
}

// rowOf returns the table line whose first cell is key; cells splits a line.
func rowOf(out, key string) string {
	for _, line := range strings.Split(out, "\n") {
		if c := cells(line); len(c) > 0 && c[0] == key {
			return line
		}
	}
	return ""
}

func cells(line string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(line, func(r rune) bool { return r == '│' }) {
		out = append(out, strings.TrimSpace(f))
	}
	return out
}

// PGD on the shipped MLP: empirical accuracy at most the clean one, every correct
// sample attacked; with the real verifiers at a small radius, certified ⊆
// empirically robust and nothing falsified.
func TestAttacksShippedMLP(t *testing.T) {
	code, rep, m, _, stderr := runJSON(t, methods(), "-q", "-n", "20", "--radius", "0.1", "--attacks", "pgd",
		"--data", shippedData, "--labels", shippedLabels, shippedMLP)
	if code != cli.ExitOK {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	e := rep.Summary.EmpiricalAccuracy
	if e == nil || *e > rep.Summary.CleanAccuracy {
		t.Fatalf("empirical accuracy %v, clean %v", e, rep.Summary.CleanAccuracy)
	}
	broken := 0
	for _, s := range rep.Samples {
		found, ran := s.Attacks["pgd"]
		if ran != s.Correct() {
			t.Errorf("sample %d: correct %v, pgd ran %v", s.Index, s.Correct(), ran)
		}
		if found {
			broken++
		}
	}
	if broken < 10 {
		t.Errorf("PGD at 0.1 broke %d of 20 MLP samples; an undefended MLP should fall", broken)
	}
	if _, ok := rep.Summary.Seconds["pgd"]; !ok || !slices.Equal(rep.Attacks, []string{"pgd"}) {
		t.Errorf("attacks %v, seconds %v", rep.Attacks, rep.Summary.Seconds)
	}
	if w, ok := m["summary"].(map[string]any)["warnings"]; ok {
		t.Errorf("warnings on the shipped MLP: %v", w)
	}

	code, rep, _, _, stderr = runJSON(t, methods(), "-q", "-n", "20", "--radius", "0.02", "--methods", "ibp,crown",
		"--attacks", "pgd", "--data", shippedData, "--labels", shippedLabels, shippedMLP)
	if code != cli.ExitOK {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if f := rep.Summary.FalsifiedCertificates; f == nil || *f != 0 {
		t.Errorf("falsified %v", f)
	}
	certified := 0
	for _, s := range rep.Samples {
		for _, meth := range []string{"ibp", "crown"} {
			if s.Certified[meth] {
				certified++
				if !s.Correct() || s.Attacks["pgd"] {
					t.Errorf("sample %d: certified by %s but not empirically robust", s.Index, meth)
				}
			}
		}
	}
	if certified == 0 {
		t.Error("nothing certified at radius 0.02: test degenerate")
	}
	if cert, emp := rep.Summary.CertifiedAccuracy["crown"], *rep.Summary.EmpiricalAccuracy; cert > emp {
		t.Errorf("crown certified %v > empirical %v", cert, emp)
	}
}

// --audit-effort 2 attacks exactly the certified samples with audit-pgd and
// audit-square; the default suite expands into its four attacks.
func TestAuditEffortAndDefaultSuite(t *testing.T) {
	code, rep, _, stdout, stderr := runJSON(t, methods(), "-q", "-n", "6", "--radius", "0.02", "--methods", "crown",
		"--attacks", "default", "--audit-effort", "2", "--pgd-steps", "5", "--queries", "100",
		"--data", shippedData, "--labels", shippedLabels, shippedMLP)
	if code != cli.ExitOK {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	want := []string{"apgd-ce", "apgd-t", "square", "pgd", "audit-pgd", "audit-square"}
	if !slices.Equal(rep.Attacks, want) {
		t.Fatalf("attacks %v, want %v", rep.Attacks, want)
	}
	certified := 0
	for _, s := range rep.Samples {
		for _, a := range want[:4] {
			if _, ran := s.Attacks[a]; ran != s.Correct() {
				t.Errorf("sample %d: %s ran %v", s.Index, a, ran)
			}
		}
		for _, a := range want[4:] {
			found, ran := s.Attacks[a]
			if ran != s.Certified["crown"] || found {
				t.Errorf("sample %d: certified %v, %s ran %v, found %v", s.Index, s.Certified["crown"], a, ran, found)
			}
		}
		if s.Certified["crown"] {
			certified++
		}
	}
	if certified == 0 {
		t.Error("nothing certified: test degenerate")
	}
	if !strings.Contains(stdout, "AUDIT-PGD") || !strings.Contains(stdout, "seconds: audit-square") {
		t.Errorf("tables:\n%s", stdout)
	}
}

// writeScaledLinear writes the fixture's linear classifier with weights and biases
// multiplied by scale: a saturated softmax, whose cross-entropy gradient is exactly
// zero on confidently classified samples.
func (f *fixture) writeScaledLinear(t *testing.T, scale float64) string {
	t.Helper()
	wt := nets.NewTensor(3, 6)
	b := nets.NewTensor(3)
	for j := range f.w {
		for i := range f.w[j] {
			wt.Data[j*6+i] = scale * f.w[j][i]
		}
		b.Data[j] = scale * f.b[j]
	}
	g := &nets.Graph{
		Name:    "saturated",
		Inputs:  []nets.ValueInfo{{Name: "x", Shape: []int{-1, 1, 2, 3}}},
		Outputs: []nets.ValueInfo{{Name: "y", Shape: []int{-1, 3}}},
		Params:  map[string]*nets.Tensor{"W": wt, "b": b},
		Nodes: []*nets.Node{
			{Name: "flat", Op: nets.Flatten{Axis: 1}, Inputs: []string{"x"}, Outputs: []string{"h"}},
			{Name: "fc", Op: nets.Gemm{TransB: true, Alpha: 1, Beta: 1}, Inputs: []string{"h", "W", "b"}, Outputs: []string{"y"}},
		},
	}
	path := filepath.Join(f.dir, "saturated.onnx")
	if err := nets.WriteONNX(g, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// On a saturated model the sanity checks speak: zero gradients, and a black-box
// attack (SimBA) breaking samples that the white-box one (FGSM) cannot move from.
func TestWarnings(t *testing.T) {
	f := newFixture(t, 40)
	model := f.writeScaledLinear(t, 1<<16)
	out := filepath.Join(t.TempDir(), "r.json")
	var o, e bytes.Buffer
	code := runWith(context.Background(), []string{"-q", "--radius", "0.25", "--attacks", "fgsm,simba", "--queries", "200",
		"--json", out, "--data", f.data, "--labels", f.labels, model}, &o, &e, methods())
	if code != cli.ExitOK {
		t.Fatalf("exit %d\n%s", code, e.String())
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var rep pipeline.Report
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	checks := map[string]bool{}
	for _, w := range rep.Summary.Warnings {
		checks[strings.SplitN(w, ":", 2)[0]] = true
		if !strings.Contains(o.String(), "warning: "+w+"\n") {
			t.Errorf("warning %q not printed:\n%s", w, o.String())
		}
	}
	if !checks["zero-gradients"] || !checks["gradient-masking"] {
		t.Errorf("warnings %q: want zero-gradients and gradient-masking", rep.Summary.Warnings)
	}
}

func TestAttackUsageErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--audit-effort", "0", "m.onnx"}, "--audit-effort 0"},
		{[]string{"--audit-effort", "3", "--attacks", "pgd", "m.onnx"}, "give --methods"},
		{[]string{"--attacks", "transfer", "m.onnx"}, "--surrogate"},
		{[]string{"--attacks", "pgd", "--surrogate", "s.onnx", "m.onnx"}, "--surrogate"},
		{[]string{"--attacks", "cw", "m.onnx"}, "cw does not support --norm linf"},
		{[]string{"--attacks", "genetic", "--norm", "l2", "m.onnx"}, "genetic does not support --norm l2"},
		{[]string{"--attacks", "pgd", "--pgd-steps", "-1", "m.onnx"}, "must be >= 0"},
		{[]string{"--attacks", "default,pgd,pgd", "m.onnx"}, `"pgd" listed twice`},
		{[]string{"--attacks", "default,none", "m.onnx"}, "cannot be combined"},
	} {
		code, _, stderr := runCmd(c.args...)
		if code != cli.ExitUsage || !strings.Contains(stderr, c.want) {
			t.Errorf("%q: exit %d, stderr %q; want 2 and %q", c.args, code, stderr, c.want)
		}
	}
	code, stdout, _ := runCmd("--help")
	for _, s := range []string{"--audit-effort", "--pgd-steps", "--surrogate", "hopskipjump", "apgd-ce, apgd-t, square, pgd", "3 falsified"} {
		if code != cli.ExitOK || !strings.Contains(stdout, s) {
			t.Errorf("--help lacks %q", s)
		}
	}
}
