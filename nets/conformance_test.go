package nets

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"google.golang.org/protobuf/proto"
)

// The ONNX backend node tests (onnx/backend/test/data/node in the ONNX sources,
// shipped by Debian's libonnx-testdata): one folder per test holding model.onnx, a
// one-node model, and test_data_set_N/{input,output}_K.pb, serialized TensorProtos.
//
//	go test -run TestONNXConformance ./nets/ -onnx.update    rewrite the pass list
//	go test -run TestONNXConformance ./nets/ -onnx.passlist  print it as Markdown
var (
	conformanceUpdate = flag.Bool("onnx.update", false, "rewrite "+conformancePassFile+" from this run")
	conformanceList   = flag.Bool("onnx.passlist", false, "print the passing ONNX node tests as Markdown, by op")
)

const (
	conformancePassFile   = "testdata/onnx-conformance-pass.txt"
	conformanceDefaultDir = "/usr/share/libonnx-testdata/data/node"
	// Tolerance of the comparison: |got-want| ≤ conformanceAbs + conformanceRel·|want|.
	// The reference outputs are float32; we compute in float64.
	conformanceRel = 1e-4
	conformanceAbs = 1e-5
)

// conformanceResult is the outcome of one node test.
type conformanceResult struct {
	name   string
	ops    []string
	status string // "pass", "skip" (ErrUnsupported), "fail"
	detail string
}

// TestONNXConformance runs every node test whose ops all have constructors and whose
// inputs are all float (or int64/bool where the op's schema wants that type). A test fails when it errs (other than with ErrUnsupported)
// or computes wrong outputs; a test in the checked-in pass list must pass.
func TestONNXConformance(t *testing.T) {
	dir := os.Getenv("CERTIFY_ONNX_TESTDATA")
	if dir == "" {
		dir = conformanceDefaultDir
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("ONNX backend test data not found (%v): run `make deps` to install Debian's libonnx-testdata, or set CERTIFY_ONNX_TESTDATA", err)
	}
	ctors := Constructors()
	var results []conformanceResult
	ineligible := 0
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		r, ok := runConformance(filepath.Join(dir, e.Name()), e.Name(), ctors)
		if !ok {
			ineligible++
			continue
		}
		results = append(results, r)
	}

	listed, err := readPassList(conformancePassFile)
	if err != nil && !*conformanceUpdate {
		t.Fatal(err)
	}
	unseen := map[string]bool{}
	for name := range listed {
		unseen[name] = true
	}
	var passed []conformanceResult
	counts := map[string]int{}
	for _, r := range results {
		counts[r.status]++
		switch r.status {
		case "pass":
			passed = append(passed, r)
			if !listed[r.name] && !*conformanceUpdate {
				t.Logf("%s passes but is not in %s (run with -onnx.update)", r.name, conformancePassFile)
			}
		case "skip":
			t.Logf("skipped %s: %s", r.name, r.detail)
		case "fail":
			t.Errorf("FAIL %s: %s", r.name, r.detail)
		}
		delete(unseen, r.name)
		if r.status != "pass" && listed[r.name] && !*conformanceUpdate {
			t.Errorf("%s is in %s but did not pass (%s)", r.name, conformancePassFile, r.status)
		}
	}
	if !*conformanceUpdate {
		for name := range unseen {
			t.Errorf("%s is in %s but was not run (missing, or no longer eligible)", name, conformancePassFile)
		}
	}
	t.Logf("ONNX node tests: %d eligible (of %d), %d pass, %d skipped as unsupported, %d fail",
		len(results), len(results)+ineligible, counts["pass"], counts["skip"], counts["fail"])

	if *conformanceUpdate {
		if err := writePassList(conformancePassFile, passed, len(results)+ineligible); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s: %d tests", conformancePassFile, len(passed))
	}
	if *conformanceList {
		fmt.Print(passListMarkdown(passed))
	}
}

// runConformance runs one node test folder. ok is false when the test is not
// eligible: an op without a constructor, a non-float data input, or no test data.
func runConformance(dir, name string, ctors map[string]OpConstructor) (r conformanceResult, ok bool) {
	r.name = name
	data, err := os.ReadFile(filepath.Join(dir, "model.onnx"))
	if err != nil {
		return r, false
	}
	var m onnx.ModelProto
	if err := proto.Unmarshal(data, &m); err != nil {
		return r, false
	}
	seen := map[string]bool{}
	for _, n := range m.GetGraph().GetNode() {
		if _, has := ctors[n.GetOpType()]; !has || (n.GetDomain() != "" && n.GetDomain() != "ai.onnx") {
			return r, false
		}
		if !seen[n.GetOpType()] {
			seen[n.GetOpType()] = true
			r.ops = append(r.ops, n.GetOpType())
		}
	}
	inits := map[string]bool{}
	for _, tp := range m.GetGraph().GetInitializer() {
		inits[tp.GetName()] = true
	}
	// Inputs must be float, except those the ONNX schema types as int64 or bool
	// (Reshape's shape, Pad's pads, ...): float64 holds them exactly. Integer data
	// (Div on uint8) has integer semantics that a float64 graph does not have.
	typedOnly := map[string]bool{}
	for _, n := range m.GetGraph().GetNode() {
		for j, in := range n.GetInput() {
			_, typed := nonFloatInput(n.GetOpType(), j)
			if v, seen := typedOnly[in]; !seen || v {
				typedOnly[in] = typed
			}
		}
	}
	for _, in := range m.GetGraph().GetInput() {
		if et := in.GetType().GetTensorType().GetElemType(); !inits[in.GetName()] && et != onnxFloat &&
			!((et == onnxInt64 || et == onnxBool) && typedOnly[in.GetName()]) {
			return r, false
		}
	}
	sets, _ := filepath.Glob(filepath.Join(dir, "test_data_set_*"))
	if len(sets) == 0 || len(r.ops) == 0 {
		return r, false
	}
	sort.Strings(sets)

	fail := func(format string, args ...any) (conformanceResult, bool) {
		r.status, r.detail = "fail", fmt.Sprintf(format, args...)
		return r, true
	}
	g, err := DecodeONNX(data, name+"/model.onnx")
	if err != nil {
		if errors.Is(err, ErrUnsupported) {
			r.status, r.detail = "skip", err.Error()
			return r, true
		}
		return fail("%v", err)
	}
	if r.status, r.detail = evalSets(g, sets); r.status != "pass" {
		return r, true
	}
	// The writer must reproduce every op: export, reload, and pass again.
	out, err := EncodeONNX(g)
	if err != nil {
		return fail("export: %v", err)
	}
	g2, err := DecodeONNX(out, name+" exported")
	if err != nil {
		return fail("export: %v", err)
	}
	if status, detail := evalSets(g2, sets); status != "pass" {
		return fail("after export: %s", detail)
	}
	return r, true
}

// evalSets runs g on every test data set and compares the outputs.
func evalSets(g *Graph, sets []string) (status, detail string) {
	for _, set := range sets {
		ins, err := readTensorFiles(set, "input", len(g.Inputs))
		if err != nil {
			return "fail", err.Error()
		}
		want, err := readTensorFiles(set, "output", len(g.Outputs))
		if err != nil {
			return "fail", err.Error()
		}
		feed := map[string]*Tensor{}
		for i, vi := range g.Inputs {
			feed[vi.Name] = ins[i]
		}
		vals, err := g.Forward(feed)
		if err != nil {
			if errors.Is(err, ErrUnsupported) {
				return "skip", err.Error()
			}
			return "fail", fmt.Sprintf("%s: %v", filepath.Base(set), err)
		}
		for i, vi := range g.Outputs {
			got := vals[vi.Name]
			if got == nil {
				return "fail", fmt.Sprintf("%s: output %q not computed", filepath.Base(set), vi.Name)
			}
			if msg := compareTensors(got, want[i]); msg != "" {
				return "fail", fmt.Sprintf("%s: output %q: %s", filepath.Base(set), vi.Name, msg)
			}
		}
	}
	return "pass", ""
}

// readTensorFiles reads prefix_0.pb … prefix_{n-1}.pb from a test data set; there
// must be exactly n.
func readTensorFiles(set, prefix string, n int) ([]*Tensor, error) {
	files, _ := filepath.Glob(filepath.Join(set, prefix+"_*.pb"))
	if len(files) != n {
		return nil, fmt.Errorf("%s: %d %s files for %d graph %ss", filepath.Base(set), len(files), prefix, n, prefix)
	}
	out := make([]*Tensor, n)
	for i := range out {
		path := filepath.Join(set, fmt.Sprintf("%s_%d.pb", prefix, i))
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		if out[i], err = decodeTensorProto(data); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	return out, nil
}

// compareTensors returns "" when got matches want in shape and, elementwise, within
// conformanceAbs + conformanceRel·|want| (NaN matching NaN, infinities exactly),
// else a description of the first mismatch.
func compareTensors(got, want *Tensor) string {
	if !SameShape(got.Shape, want.Shape) {
		return fmt.Sprintf("shape %v, want %v", got.Shape, want.Shape)
	}
	worst, at := 0.0, -1
	for i, w := range want.Data {
		g := got.Data[i]
		switch {
		case math.IsNaN(w) || math.IsNaN(g):
			if !(math.IsNaN(w) && math.IsNaN(g)) {
				return fmt.Sprintf("element %d = %v, want %v", i, g, w)
			}
		case math.IsInf(w, 0) || math.IsInf(g, 0):
			if g != w {
				return fmt.Sprintf("element %d = %v, want %v", i, g, w)
			}
		default:
			if e := math.Abs(g-w) - conformanceRel*math.Abs(w); e > conformanceAbs && e > worst {
				worst, at = e, i
			}
		}
	}
	if at >= 0 {
		return fmt.Sprintf("element %d = %.9g, want %.9g (and possibly others)", at, got.Data[at], want.Data[at])
	}
	return ""
}

// readPassList reads the names listed in path, one per line; # starts a comment.
func readPassList(path string) (map[string]bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("pass list: %w (generate it with -onnx.update)", err)
	}
	defer f.Close()
	out := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		if line != "" {
			out[line] = true
		}
	}
	return out, sc.Err()
}

func writePassList(path string, passed []conformanceResult, total int) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# ONNX backend node tests (Debian libonnx-testdata) that must pass: %d of the\n", len(passed))
	fmt.Fprintf(&b, "# %d in the suite. Generated by: go test -run TestONNXConformance ./nets/ -onnx.update\n", total)
	for _, r := range passed {
		b.WriteString(r.name + "\n")
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// passListMarkdown groups the passing tests by the ops their models use.
func passListMarkdown(passed []conformanceResult) string {
	byOps := map[string][]string{}
	for _, r := range passed {
		key := strings.Join(r.ops, ", ")
		byOps[key] = append(byOps[key], strings.TrimPrefix(r.name, "test_"))
	}
	keys := make([]string, 0, len(byOps))
	for k := range byOps {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	fmt.Fprintf(&b, "| op | ONNX node tests passing (%d) |\n| --- | --- |\n", len(passed))
	for _, k := range keys {
		fmt.Fprintf(&b, "| %s | %s |\n", k, strings.Join(byOps[k], ", "))
	}
	return b.String()
}

// TestExportONNXCheckerConformance exports every model of the pass list and
// validates the exports with onnx.checker (full check, shape inference included):
// one model per op and attribute combination the suite covers.
func TestExportONNXCheckerConformance(t *testing.T) {
	dir := os.Getenv("CERTIFY_ONNX_TESTDATA")
	if dir == "" {
		dir = conformanceDefaultDir
	}
	listed, err := readPassList(conformancePassFile)
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, 0, len(listed))
	for name := range listed {
		names = append(names, name)
	}
	sort.Strings(names)
	tmp := t.TempDir()
	var paths []string
	for _, name := range names {
		g, err := ReadONNX(filepath.Join(dir, name, "model.onnx"))
		if err != nil {
			t.Fatalf("%v (run `make deps` if the test data is missing)", err)
		}
		p := filepath.Join(tmp, name+".onnx")
		if err := WriteONNX(g, p); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	for i, rep := range onnxChecker(t, paths...) {
		if rep != "" {
			t.Errorf("%s: %s", names[i], rep)
		}
	}
}
