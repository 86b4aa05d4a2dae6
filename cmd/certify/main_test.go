package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/certify-dev/certify/internal/cli"
	"github.com/certify-dev/certify/nets"
	"github.com/certify-dev/certify/pipeline"
)

// fixture is a tiny model and data set written to a temporary folder.
type fixture struct {
	dir, model, data, labels string
	x                        *nets.Tensor // [n,1,2,3]
	y                        []int
	w                        [][]float64 // [3][6]
	b                        []float64
}

// newFixture writes a linear classifier Flatten → Gemm with 3 classes on [1,2,3]
// inputs, n samples in [0,1] and labels (the model's prediction, wrong for every
// fourth sample). Weights and data are multiples of 1/16 so that the float32 files
// hold them exactly and the test's own forward pass is exact.
func newFixture(t *testing.T, n int) *fixture {
	t.Helper()
	rng := rand.New(rand.NewPCG(42, 1))
	f := &fixture{dir: t.TempDir(), w: make([][]float64, 3), b: make([]float64, 3)}
	wt := nets.NewTensor(3, 6)
	for j := range f.w {
		f.w[j] = make([]float64, 6)
		for i := range f.w[j] {
			f.w[j][i] = float64(rng.IntN(33)-16) / 16
			wt.Data[j*6+i] = f.w[j][i]
		}
		f.b[j] = float64(rng.IntN(9)-4) / 16
	}
	g := &nets.Graph{
		Name:    "tiny",
		Inputs:  []nets.ValueInfo{{Name: "x", Shape: []int{-1, 1, 2, 3}}},
		Outputs: []nets.ValueInfo{{Name: "y", Shape: []int{-1, 3}}},
		Params:  map[string]*nets.Tensor{"W": wt, "b": nets.FromData(append([]float64(nil), f.b...), 3)},
		Nodes: []*nets.Node{
			{Name: "flat", Op: nets.Flatten{Axis: 1}, Inputs: []string{"x"}, Outputs: []string{"h"}},
			{Name: "fc", Op: nets.Gemm{TransB: true, Alpha: 1, Beta: 1}, Inputs: []string{"h", "W", "b"}, Outputs: []string{"y"}},
		},
	}
	f.model = filepath.Join(f.dir, "tiny.onnx")
	if err := nets.WriteONNX(g, f.model); err != nil {
		t.Fatal(err)
	}
	f.x = nets.NewTensor(n, 1, 2, 3)
	for i := range f.x.Data {
		f.x.Data[i] = float64(rng.IntN(17)) / 16
	}
	f.y = f.predict(f.x)
	for i := range f.y {
		if i%4 == 1 {
			f.y[i] = (f.y[i] + 1) % 3
		}
	}
	f.data = f.writeNPY(t, "x.npy", f.x, nets.NPYFloat32)
	f.labels = f.writeNPY(t, "y.npy", intTensor(f.y), nets.NPYInt64)
	return f
}

func intTensor(v []int) *nets.Tensor {
	t := nets.NewTensor(len(v))
	for i, y := range v {
		t.Data[i] = float64(y)
	}
	return t
}

func (f *fixture) writeNPY(t *testing.T, name string, x *nets.Tensor, dtype string) string {
	t.Helper()
	p := filepath.Join(f.dir, name)
	if err := nets.WriteNPY(p, x, dtype); err != nil {
		t.Fatal(err)
	}
	return p
}

// predict is the test's own forward pass: argmax of W·x + b, lowest index on ties.
func (f *fixture) predict(x *nets.Tensor) []int {
	n := x.Shape[0]
	out := make([]int, n)
	for s := 0; s < n; s++ {
		best, bestZ := 0, 0.0
		for j := range f.w {
			z := f.b[j]
			for i := 0; i < 6; i++ {
				z += f.w[j][i] * x.Data[s*6+i]
			}
			if j == 0 || z > bestZ {
				best, bestZ = j, z
			}
		}
		out[s] = best
	}
	return out
}

// runCmd runs the command in-process.
func runCmd(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{nil, "missing MODEL.onnx"},
		{[]string{"a.onnx", "b.onnx"}, "one model expected, got 2"},
		{[]string{"--bogus", "m.onnx"}, "unknown flag: --bogus"},
		{[]string{"-x", "m.onnx"}, "unknown shorthand flag: 'x'"},
		{[]string{"--radius", "-0.1", "m.onnx"}, "--radius -0.1: want a finite value >= 0"},
		{[]string{"--radius", "NaN", "m.onnx"}, "--radius NaN"},
		{[]string{"--radius", "big", "m.onnx"}, `--radius "big": not a number`},
		{[]string{"--radius", "0.1,0.2,0.1", "m.onnx"}, "--radius radius 0.1 given twice"},
		{[]string{"--radius", "0.3:0.1:0.1", "m.onnx"}, `range "0.3:0.1:0.1": want lo <= hi and step > 0`},
		{[]string{"--radius", "0:1:0", "m.onnx"}, "step > 0"},
		{[]string{"--radius", "0:1", "m.onnx"}, "want lo:hi:step"},
		{[]string{"--radius", "0:100:0.001", "m.onnx"}, "more than 200 radii"},
		{[]string{"--shard", "3/3", "m.onnx"}, "--shard \"3/3\": K = 3: want 0 <= K < N = 3"},
		{[]string{"--shard", "1", "m.onnx"}, "want K/N"},
		{[]string{"--shard", "0/0", "m.onnx"}, "want at least 1 shard"},
		{[]string{"--shard", "1/4", "--shards", "3", "m.onnx"}, "--shards 3, but --shard says 4 shards"},
		{[]string{"--shards", "3", "m.onnx"}, "--shards 3 without a shard index"},
		{[]string{"--total-timeout", "-1s", "m.onnx"}, "--total-timeout -1s: want >= 0"},
		{[]string{"--max-lp-size", "0", "m.onnx"}, "--max-lp-size 0: want >= 1"},
		{[]string{"--max-domains", "-3", "m.onnx"}, "--max-domains -3: want >= 0"},
		{[]string{"--norm", "l1", "m.onnx"}, `unknown norm "l1"`},
		{[]string{"-n", "0", "m.onnx"}, "--count 0: want at least 1"},
		{[]string{"--count", "-5", "m.onnx"}, "--count -5"},
		{[]string{"--domain", "1,0", "m.onnx"}, "lo must be below hi"},
		{[]string{"--domain", "0", "m.onnx"}, "want two numbers lo,hi"},
		{[]string{"--domain", "0,x", "m.onnx"}, `"x" is not a number`},
		{[]string{"--domain", "0,inf", "m.onnx"}, "must be finite"},
		{[]string{"--methods", "exact", "m.onnx"}, `--methods: unknown method "exact" (valid: none, alpha-crown, bab, crown, ibp, lp, lp-all, smoothing)`},
		{[]string{"--methods", "", "m.onnx"}, "empty method name"},
		{[]string{"--timeout", "-1s", "m.onnx"}, "--timeout -1s: want >= 0"},
		{[]string{"--attacks", "pgdd", "m.onnx"}, `--attacks: unknown attack "pgdd" (valid: none, apgd-ce`},
		{[]string{"--data", "x.npy", "m.onnx"}, "--data and --labels go together"},
		{[]string{"--labels", "y.npy", "m.onnx"}, "--data and --labels go together"},
	}
	for _, tc := range tests {
		code, stdout, stderr := runCmd(tc.args...)
		if code != cli.ExitUsage || !strings.Contains(stderr, tc.want) || stdout != "" {
			t.Errorf("%q: exit %d, stderr %q, stdout %q; want exit 2 and %q", tc.args, code, stderr, stdout, tc.want)
		}
		if !strings.Contains(stderr, "certify --help") {
			t.Errorf("%q: stderr lacks the pointer to --help: %q", tc.args, stderr)
		}
	}
}

func TestHelp(t *testing.T) {
	for _, arg := range []string{"-h", "--help"} {
		code, stdout, stderr := runCmd(arg)
		if code != cli.ExitOK || stderr != "" {
			t.Errorf("%s: exit %d, stderr %q", arg, code, stderr)
		}
		for _, s := range []string{"usage: certify", "--radius", "--methods", "--per-sample", "-q, --quiet"} {
			if !strings.Contains(stdout, s) {
				t.Errorf("%s: usage lacks %q", arg, s)
			}
		}
	}
}

func TestLoadErrors(t *testing.T) {
	f := newFixture(t, 12)
	garbage := filepath.Join(f.dir, "garbage.npy")
	if err := os.WriteFile(garbage, []byte("not an npy file at all"), 0o644); err != nil {
		t.Fatal(err)
	}
	flat := f.writeNPY(t, "flat.npy", f.x.Reshaped(12, 6), nets.NPYFloat32)
	wrongCount := f.writeNPY(t, "short.npy", nets.NewTensor(12, 5), nets.NPYFloat32)
	transposed := f.writeNPY(t, "t.npy", f.x.Reshaped(12, 3, 2), nets.NPYFloat32)
	scaled := f.x.Clone()
	scaled.Data[20] = 255
	pixels := f.writeNPY(t, "pixels.npy", scaled, nets.NPYFloat32)
	fewLabels := f.writeNPY(t, "few.npy", intTensor(f.y[:5]), nets.NPYInt64)
	half := intTensor(f.y)
	half.Data[3] = 1.5
	fractional := f.writeNPY(t, "half.npy", half, nets.NPYFloat64)
	big := intTensor(f.y)
	big.Data[7] = 3
	outOfRange := f.writeNPY(t, "big.npy", big, nets.NPYInt64)
	labels2D := f.writeNPY(t, "y2.npy", intTensor(f.y).Reshaped(12, 1), nets.NPYInt64)

	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"model missing", []string{"--data", f.data, "--labels", f.labels, filepath.Join(f.dir, "nope.onnx")}, []string{"load model", "nope.onnx"}},
		{"model garbage", []string{"--data", f.data, "--labels", f.labels, garbage}, []string{"load " + garbage}},
		{"data garbage", []string{"--data", garbage, "--labels", f.labels, f.model}, []string{garbage}},
		{"data missing", []string{"--data", filepath.Join(f.dir, "none.npy"), "--labels", f.labels, f.model}, []string{"none.npy"}},
		{"shape", []string{"--data", wrongCount, "--labels", f.labels, f.model}, []string{
			"data " + wrongCount + " has shape [12,5], model " + f.model + " takes input [?,1,2,3]", "a sample holds 5 values, the model takes 6"}},
		{"ambiguous reshape", []string{"--data", transposed, "--labels", f.labels, f.model}, []string{"[12,3,2]", "ambiguous"}},
		{"domain", []string{"--data", pixels, "--labels", f.labels, f.model}, []string{"values span [0,255], outside the domain [0,1]", "--domain 0,255"}},
		{"label count", []string{"--data", f.data, "--labels", fewLabels, f.model}, []string{"labels " + fewLabels + ": 5 labels for 12 data rows"}},
		{"label fraction", []string{"--data", f.data, "--labels", fractional, f.model}, []string{"row 3 holds 1.5"}},
		{"label range", []string{"--data", f.data, "--labels", outOfRange, f.model}, []string{"row 7 holds class 3 but the model has 3 classes (0..2)"}},
		{"label rank", []string{"--data", f.data, "--labels", labels2D, f.model}, []string{"shape [12,1]; want a 1-D array"}},
		{"json dir", []string{"-q", "--data", f.data, "--labels", f.labels, "--json", filepath.Join(f.dir, "no", "such", "r.json"), f.model}, []string{"write report"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runCmd(tc.args...)
			if code != cli.ExitError {
				t.Errorf("exit %d, want 1; stderr %q", code, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr %q lacks %q", stderr, w)
				}
			}
		})
	}
	// A flat data file for an image model is reshaped ([6] → [1,2,3]).
	if code, _, stderr := runCmd("-q", "--data", flat, "--labels", f.labels, f.model); code != cli.ExitOK {
		t.Errorf("flat data: exit %d, %s", code, stderr)
	}
}

// runReport runs the command (with the methods known) with --json into a
// temporary file and args, and returns the exit code, the decoded report, its
// raw JSON, stdout and stderr; a run that writes no report fails the test.
func runReport(t *testing.T, known methodSet, args ...string) (int, pipeline.Report, []byte, string, string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "r.json")
	var o, e bytes.Buffer
	code := runWith(context.Background(), append([]string{"--json", out}, args...), &o, &e, known)
	var rep pipeline.Report
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("%q: exit %d, no report: %v\n%s", args, code, err, e.String())
	}
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	return code, rep, raw, o.String(), e.String()
}

// okReport is runReport with the command's methods, failing the test unless the
// run succeeds.
func okReport(t *testing.T, args ...string) (pipeline.Report, []byte, string, string) {
	t.Helper()
	code, rep, raw, stdout, stderr := runReport(t, methods(), args...)
	if code != cli.ExitOK {
		t.Fatalf("%q: exit %d\n%s", args, code, stderr)
	}
	return rep, raw, stdout, stderr
}

// shippedFiles are the absolute paths of the shipped MLP and test data, for
// runs in other working directories.
func shippedFiles(t *testing.T) (model, data, labels string) {
	t.Helper()
	var abs [3]string
	for i, p := range []string{shippedMLP, mnistX, mnistY} {
		a, err := filepath.Abs(p)
		if err != nil {
			t.Fatal(err)
		}
		abs[i] = a
	}
	return abs[0], abs[1], abs[2]
}

// report runs the command with args plus the fixture's files and --json, and
// returns the decoded report, also as a map, and the output.
func (f *fixture) report(t *testing.T, args ...string) (pipeline.Report, map[string]any, string) {
	t.Helper()
	rep, raw, stdout, stderr := okReport(t, append(append([]string{"--data", f.data, "--labels", f.labels}, args...), f.model)...)
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return rep, m, stdout + stderr
}

func TestReport(t *testing.T) {
	f := newFixture(t, 30)
	rep, m, out := f.report(t, "-n", "25", "--radius", "0.25", "--norm", "l2", "--seed", "7", "--domain", "0,1")

	raw, _ := os.ReadFile(f.model)
	sum := sha256.Sum256(raw)
	if rep.Model != f.model || rep.ModelSHA256 != hex.EncodeToString(sum[:]) || rep.Radius != 0.25 ||
		rep.Norm != pipeline.L2 || rep.Seed != 7 || rep.Domain != [2]float64{0, 1} || rep.Data != f.data || rep.Labels != f.labels {
		t.Errorf("report header %+v", rep)
	}
	pred := f.predict(f.x)
	correct := 0
	if len(rep.Samples) != 25 {
		t.Fatalf("%d samples, want 25", len(rep.Samples))
	}
	for i, s := range rep.Samples {
		if s.Index != i || s.Label != f.y[i] || s.Predicted != pred[i] {
			t.Errorf("sample %d: %+v, want label %d predicted %d", i, s, f.y[i], pred[i])
		}
		if pred[i] == f.y[i] {
			correct++
		}
	}
	if correct == 0 || correct == 25 {
		t.Fatalf("fixture degenerate: %d/25 correct", correct)
	}
	if rep.Summary.N != 25 || rep.Summary.CleanAccuracy != float64(correct)/25 {
		t.Errorf("summary %+v, want n 25, clean accuracy %d/25", rep.Summary, correct)
	}
	sm := m["summary"].(map[string]any)
	for _, k := range []string{"empirical_accuracy", "certified_accuracy", "falsified_certificates"} {
		if _, ok := sm[k]; ok {
			t.Errorf("summary has %q without the stage", k)
		}
	}
	if _, ok := sm["seconds"].(map[string]any)["clean"]; !ok {
		t.Errorf("no seconds.clean: %v", sm)
	}
	// 25 > 20 samples: summary table only; progress on stderr.
	if strings.Contains(out, "PREDICTED") || !strings.Contains(out, "clean accuracy") {
		t.Errorf("output:\n%s", out)
	}
	if !strings.Contains(out, "clean: ") || !strings.Contains(out, "report written to") {
		t.Errorf("no progress:\n%s", out)
	}
}

func TestSmallRunTablesAndCap(t *testing.T) {
	f := newFixture(t, 8)
	code, stdout, stderr := runCmd("--data", f.data, "--labels", f.labels, "-n", "50", f.model)
	if code != cli.ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "note: --count 50 exceeds the 8 samples") {
		t.Errorf("no cap note:\n%s", stderr)
	}
	if !strings.Contains(stdout, "PREDICTED") || !strings.Contains(stdout, "(") {
		t.Errorf("no per-sample table for 8 samples:\n%s", stdout)
	}
	code, stdout, stderr = runCmd("-q", "--data", f.data, "--labels", f.labels, "--json", "-", f.model)
	if code != cli.ExitOK || stderr != "" {
		t.Fatalf("exit %d, stderr %q with -q", code, stderr)
	}
	var rep pipeline.Report
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil || len(rep.Samples) != 8 {
		t.Errorf("--json -: %v, %d samples\n%s", err, len(rep.Samples), stdout)
	}
}

func TestSameSeedSameReport(t *testing.T) {
	f := newFixture(t, 16)
	encode := func() []byte {
		rep, _, _ := f.report(t, "-q", "--seed", "3")
		rep = resultsOnly(rep)
		b, err := json.Marshal(rep)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if a, b := encode(), encode(); !bytes.Equal(a, b) {
		t.Errorf("reports differ:\n%s\n%s", a, b)
	}
}

func TestDefaultData(t *testing.T) {
	f := newFixture(t, 5)
	// A checkout-like tree: testdata/ at the root, run from a subfolder.
	root := t.TempDir()
	for src, dst := range map[string]string{f.data: cli.DefaultData, f.labels: cli.DefaultLabels} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(root, filepath.FromSlash(dst))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sub := filepath.Join(root, "cmd", "certify")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(sub)
	code, _, stderr := runCmd(f.model)
	if code != cli.ExitOK || !strings.Contains(stderr, filepath.Join(root, "testdata", "mnist-test-1k.npy")) {
		t.Errorf("from a subfolder: exit %d\n%s", code, stderr)
	}

	t.Chdir(t.TempDir())
	code, _, stderr = runCmd(f.model)
	if code != cli.ExitError || !strings.Contains(stderr, "default data file testdata/mnist-test-1k.npy not found") ||
		!strings.Contains(stderr, "--data FILE.npy --labels FILE.npy") {
		t.Errorf("outside a checkout: exit %d\n%s", code, stderr)
	}
}

// --csv and --markdown write the same report as --json: the files equal what the
// decoded JSON report renders, and the CSV has one row per sample.
func TestCSVAndMarkdownFiles(t *testing.T) {
	f := newFixture(t, 12)
	csvPath, mdPath := filepath.Join(f.dir, "r.csv"), filepath.Join(f.dir, "r.md")
	rep, _, out := f.report(t, "-n", "12", "--radius", "0.1", "--methods", "ibp,crown", "--attacks", "fgsm",
		"--csv", csvPath, "--markdown", mdPath)
	for _, c := range []struct {
		path  string
		write func(*bytes.Buffer) error
	}{
		{csvPath, func(b *bytes.Buffer) error { return rep.WriteCSV(b) }},
		{mdPath, func(b *bytes.Buffer) error { return rep.WriteMarkdown(b) }},
	} {
		got, err := os.ReadFile(c.path)
		if err != nil {
			t.Fatal(err)
		}
		var want bytes.Buffer
		if err := c.write(&want); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want.Bytes()) {
			t.Errorf("%s differs from the JSON report's rendering:\n%s\nwant:\n%s", c.path, got, want.String())
		}
	}
	raw, _ := os.ReadFile(csvPath)
	if lines := strings.Count(string(raw), "\n"); lines != 13 {
		t.Errorf("CSV has %d lines, want a header and 12 samples", lines)
	}
	if !strings.Contains(out, "per-sample CSV written to") || !strings.Contains(out, "Markdown summary written to") {
		t.Errorf("no notes of the files written:\n%s", out)
	}
}

// resultsOnly is rep without what differs between two runs of the same evaluation
// by construction: the timings and the run's record (start time, command line,
// parameters, which include the output paths and --batch).
func resultsOnly(rep pipeline.Report) pipeline.Report {
	rep.Summary.Seconds = nil
	rep.Sweep = slices.Clone(rep.Sweep)
	for i := range rep.Sweep {
		rep.Sweep[i].Summary.Seconds = nil
	}
	rep.Time, rep.Command, rep.Parameters = "", nil, nil
	return rep
}

// --total-timeout ends the run's work: every correctly classified sample is
// unknown for every stage, the report is written, and the run succeeds.
func TestTotalTimeout(t *testing.T) {
	f := newFixture(t, 12)
	rep, _, out := f.report(t, "--total-timeout", "1ns", "--methods", "ibp,crown", "--attacks", "pgd")
	correct := 0
	for _, s := range rep.Samples {
		if !s.Correct() {
			continue
		}
		correct++
		want := map[string]string{"ibp": "deadline", "crown": "deadline", "pgd": "deadline"}
		if !reflect.DeepEqual(s.Unknown, want) {
			t.Errorf("sample %d: unknown %v, want %v", s.Index, s.Unknown, want)
		}
	}
	if u := rep.Summary.Unknown; correct == 0 || u["ibp"] != correct || u["pgd"] != correct {
		t.Errorf("summary unknown %v, want %d each", u, correct)
	}
	if w := strings.Join(rep.Summary.Warnings, "\n"); !strings.Contains(w, fmt.Sprintf("%d correctly classified samples have an attack that did not finish", correct)) {
		t.Errorf("no warning that the attacks did not finish: %q", w)
	}
	if !strings.Contains(out, "unknown: ibp") || !strings.Contains(out, fmt.Sprintf("%d (%d deadline)", correct, correct)) {
		t.Errorf("the tables do not show the unknown samples:\n%s", out)
	}
}

// A sweep over radii: one report with a run per radius, each equal to the
// single run at that radius (results aside from the run record), and a summary
// table by radius.
func TestSweepRun(t *testing.T) {
	f := newFixture(t, 12)
	common := []string{"--methods", "ibp", "--attacks", "fgsm,pgd"}
	rep, _, out := f.report(t, append([]string{"--radius", "0.02:0.06:0.02"}, common...)...)
	if len(rep.Sweep) != 3 || rep.Sweep[2].Radius != 0.06 {
		t.Fatalf("sweep of %d radii: %+v", len(rep.Sweep), rep.Sweep)
	}
	for _, run := range rep.Sweep {
		one, _, _ := f.report(t, append([]string{"--radius", strconv.FormatFloat(run.Radius, 'g', -1, 64)}, common...)...)
		run.Summary.Seconds, one.Summary.Seconds = nil, nil
		run.Summary.Warnings = one.Summary.Warnings
		if !reflect.DeepEqual(run.Samples, one.Samples) || !reflect.DeepEqual(run.Summary, one.Summary) {
			t.Errorf("radius %g: the sweep's run differs from the single run", run.Radius)
		}
	}
	for _, want := range []string{"radii 0.02:0.06:0.02", "RADIUS", "0.04", "EMPIRICAL"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
