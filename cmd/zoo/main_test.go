package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/certify-dev/certify/internal/cli"
)

// zooDir makes a --dir holding the shipped MLP only, and returns it with the
// flags that point at the shipped data and keep the run small.
func zooDir(t *testing.T) (string, []string) {
	t.Helper()
	dir := t.TempDir()
	abs, err := filepath.Abs(testdata)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(abs, "mnist_mlp.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "mnist_mlp.onnx"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, []string{"--dir", dir, "--data", filepath.Join(abs, "mnist-test-1k.npy"), "--labels", filepath.Join(abs, "mnist-test-1k-labels.npy"),
		"--count", "10", "--eps-list", "0.02,0.05", "--pgd-steps", "4", "--lp-count", "0", "--square-queries", "20"}
}

// TestMissingMemberSkipped: a member whose file is missing is skipped with a note
// on stderr and in both files; with --strict it is an error. Two runs with the
// same seed write the same bytes.
func TestMissingMemberSkipped(t *testing.T) {
	dir, args := zooDir(t)
	args = append(args, "--members", "undefended-mlp,pgd-at")
	var stdout, stderr bytes.Buffer
	if code := run(args, &stdout, &stderr); code != cli.ExitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "pgd-at: skipped: model file "+filepath.Join(dir, "zoo/pgd_at.onnx")+" does not exist") {
		t.Errorf("stderr does not name the missing file:\n%s", stderr.String())
	}
	md1, err := os.ReadFile(filepath.Join(dir, "zoo.md"))
	if err != nil {
		t.Fatal(err)
	}
	js1, err := os.ReadFile(filepath.Join(dir, "zoo.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rows []Row
	if err := json.Unmarshal(js1, &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 4 {
		t.Fatalf("%d rows, want 2 members × 2 radii", len(rows))
	}
	for _, r := range rows[2:] {
		if r.Defense != "pgd-at" || r.N != 0 || r.Clean != nil || len(r.Attacks) != 0 || r.Notes != "skipped: no file zoo/pgd_at.onnx" {
			t.Errorf("skipped row %+v", r)
		}
	}
	if rows[0].Clean == nil || rows[0].N != 10 || rows[0].Epsilon != 0.02 || rows[1].Epsilon != 0.05 {
		t.Errorf("evaluated rows %+v", rows[:2])
	}
	if !strings.Contains(string(md1), "| pgd-at | zoo/pgd_at.onnx | L∞ 0.02, 0.05 | — |") || !strings.Contains(string(md1), "skipped: no file zoo/pgd_at.onnx") {
		t.Errorf("the table does not show the skipped member:\n%s", md1)
	}

	stderr.Reset()
	if code := run(args, &stdout, &stderr); code != cli.ExitOK {
		t.Fatalf("second run: exit %d: %s", code, stderr.String())
	}
	md2, _ := os.ReadFile(filepath.Join(dir, "zoo.md"))
	js2, _ := os.ReadFile(filepath.Join(dir, "zoo.json"))
	if !bytes.Equal(md1, md2) || !bytes.Equal(js1, js2) {
		t.Errorf("two runs with the same seed wrote different files")
	}

	stderr.Reset()
	if code := run(append(args, "--strict"), &stdout, &stderr); code != cli.ExitError || !strings.Contains(stderr.String(), "pgd-at: model file") || !strings.Contains(stderr.String(), "--strict") {
		t.Errorf("--strict: exit %d, stderr %q; want exit 1 naming the missing file", code, stderr.String())
	}
}

// TestFailedMemberNoted: a member file that exists but does not load is noted in
// the output and makes the exit status 1; the other members are still written.
func TestFailedMemberNoted(t *testing.T) {
	dir, args := zooDir(t)
	if err := os.MkdirAll(filepath.Join(dir, "zoo"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "zoo/jpeg.json"), []byte(`{"kind": "no-such-kind"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := run(append(args, "--members", "jpeg,undefended-mlp"), &stdout, &stderr)
	if code != cli.ExitError || !strings.Contains(stderr.String(), "jpeg: FAILED") {
		t.Fatalf("exit %d, stderr %s; want 1 and jpeg FAILED", code, stderr.String())
	}
	var rows []Row
	raw, err := os.ReadFile(filepath.Join(dir, "zoo.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &rows); err != nil {
		t.Fatal(err)
	}
	// Zoo order: the MLP first, then the wrappers.
	if len(rows) != 4 || rows[0].Clean == nil || rows[2].Defense != "jpeg" || !strings.Contains(rows[2].Notes, `unknown kind "no-such-kind"`) {
		t.Errorf("rows %+v", rows)
	}
}

// TestJSONSchema: the JSON is a list of rows with exactly the documented field
// names, and decodes back to the same rows.
func TestJSONSchema(t *testing.T) {
	clean := 0.9
	rows := []Row{
		{Defense: "d", Model: "zoo/d.json", Norm: "linf", Epsilon: 0.1, N: 20, Clean: &clean,
			Attacks: map[string]float64{"fgsm": 0.5, "pgd": 0.4, "adaptive": 0.3, "all": 0.25}, Adaptive: "bpda",
			Certified: map[string]float64{"ibp": 0.1, "lp": 0.2}, CertifiedN: map[string]int{"lp": 10},
			Rejected: map[string]float64{"clean": 0.05, "pgd": 0.3}, Notes: "a note"},
		{Defense: "gone", Model: "zoo/gone.onnx", Norm: "l2", Epsilon: 0.5, Attacks: map[string]float64{}, Certified: map[string]float64{}, Notes: "skipped: ..."},
	}
	var buf bytes.Buffer
	if err := writeJSON(&buf, rows); err != nil {
		t.Fatal(err)
	}
	var generic []map[string]json.RawMessage
	if err := json.Unmarshal(buf.Bytes(), &generic); err != nil {
		t.Fatal(err)
	}
	keys := func(m map[string]json.RawMessage) []string {
		var ks []string
		for k := range m {
			ks = append(ks, k)
		}
		slices.Sort(ks)
		return ks
	}
	want := []string{"adaptive", "attacks", "certified", "certified_n", "clean", "defense", "epsilon", "model", "n", "norm", "notes", "rejected"}
	if got := keys(generic[0]); !slices.Equal(got, want) {
		t.Errorf("full row keys %v, want %v", got, want)
	}
	want = []string{"attacks", "certified", "clean", "defense", "epsilon", "model", "n", "norm", "notes"}
	if got := keys(generic[1]); !slices.Equal(got, want) {
		t.Errorf("skipped row keys %v, want %v", got, want)
	}
	if string(generic[1]["clean"]) != "null" {
		t.Errorf("skipped row clean = %s, want null", generic[1]["clean"])
	}
	var back []Row
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, rows) {
		t.Errorf("round trip:\n got %+v\nwant %+v", back, rows)
	}
}

// TestBadFlags: every bad command line is a usage error (exit 2) that says what
// is wrong.
func TestBadFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--count", "0"}, "--count 0"},
		{[]string{"--members", "undefended-mlp,nope"}, `unknown member "nope"`},
		{[]string{"--members", "undefended-mlp,,"}, "empty name"},
		{[]string{"--eps-list", "0.1,abc"}, `"abc" is not a number`},
		{[]string{"--eps-list", "-0.1"}, "want a finite value > 0"},
		{[]string{"--eps-list", "0.1,0.1"}, "given twice"},
		{[]string{"--l2-eps-list", "NaN"}, "--l2-eps-list"},
		{[]string{"--sigma", "0"}, "--sigma 0"},
		{[]string{"--smoothing-alpha", "1"}, "--smoothing-alpha 1"},
		{[]string{"--pgd-steps", "0"}, "--pgd-steps"},
		{[]string{"--lp-count", "-1"}, "--lp-count"},
		{[]string{"--no-such-flag"}, "unknown flag: --no-such-flag"},
		{[]string{"model.onnx"}, "unexpected arguments: model.onnx"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(c.args, &stdout, &stderr)
		if code != cli.ExitUsage || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and %q", c.args, code, stderr.String(), c.want)
		}
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"--help"}, &stdout, &stderr); code != cli.ExitOK || !strings.Contains(stdout.String(), "--eps-list") || !strings.Contains(stdout.String(), "zoo/crown_ibp.onnx") {
		t.Errorf("--help: exit %d, usage %q", code, stdout.String())
	}
}

// TestZooMembers checks the member list: unique names, known norms and methods,
// positive radii.
func TestZooMembers(t *testing.T) {
	seen := map[string]bool{}
	for _, m := range zoo() {
		if seen[m.Defense] {
			t.Errorf("member %q twice", m.Defense)
		}
		seen[m.Defense] = true
		if m.Norm != "linf" && m.Norm != "l2" || len(m.Epsilons) == 0 || m.File == "" {
			t.Errorf("member %+v", m)
		}
		for _, c := range m.Certified {
			if !slices.Contains([]string{methodIBP, methodCROWN, methodLP, methodSmoothing}, c) {
				t.Errorf("member %s: unknown method %q", m.Defense, c)
			}
		}
	}
	if len(seen) != 24 {
		t.Errorf("%d members, want the 24 of the zoo", len(seen))
	}
}

// The zoo evaluated in two parts and merged with --render gives the same files as
// one run over both members.
func TestRenderMergesParts(t *testing.T) {
	dir, args := zooDir(t)
	raw, err := os.ReadFile(filepath.Join(testdata, "mnist_mlp.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	// A second member: the same network as the IBP-trained one's file.
	if err := os.MkdirAll(filepath.Join(dir, "zoo"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "zoo", "ibp.onnx"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	out := func(name string) []string {
		return []string{"--out-json", filepath.Join(dir, name+".json"), "--out-md", filepath.Join(dir, name+".md")}
	}
	var stdout, stderr bytes.Buffer
	for _, part := range []struct{ name, members string }{{"whole", "undefended-mlp,ibp"}, {"a", "undefended-mlp"}, {"b", "ibp"}} {
		if code := run(append(append(slices.Clone(args), out(part.name)...), "--members", part.members), &stdout, &stderr); code != cli.ExitOK {
			t.Fatalf("%s: exit %d: %s", part.name, code, stderr.String())
		}
	}
	render := append(append(slices.Clone(args), out("merged")...), "--members", "undefended-mlp,ibp",
		"--render", filepath.Join(dir, "b.json")+","+filepath.Join(dir, "a.json"))
	if code := run(render, &stdout, &stderr); code != cli.ExitOK {
		t.Fatalf("render: exit %d: %s", code, stderr.String())
	}
	for _, ext := range []string{".json", ".md"} {
		want, _ := os.ReadFile(filepath.Join(dir, "whole"+ext))
		got, _ := os.ReadFile(filepath.Join(dir, "merged"+ext))
		if len(want) == 0 || !bytes.Equal(got, want) {
			t.Errorf("merged%s differs from the single run's:\n%s\nwant:\n%s", ext, got, want)
		}
	}
	if code := run(append(slices.Clone(args), "--render", filepath.Join(dir, "whole.md")), &stdout, &stderr); code == cli.ExitOK ||
		!strings.Contains(stderr.String(), "not a zoo JSON file") {
		t.Errorf("rendering a Markdown file: exit %d, %s", code, stderr.String())
	}
}
