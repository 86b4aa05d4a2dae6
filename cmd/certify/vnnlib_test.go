package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certify-dev/certify/internal/cli"
	"github.com/certify-dev/certify/verify"
)

// TestVNNResult: the result file of a sat answer lists the inputs, then the
// outputs; other answers are one line.
func TestVNNResult(t *testing.T) {
	got := vnnResult(verify.Decision{Outcome: verify.OutcomeSat, X: []float64{0.5, -1}, Y: []float64{3}})
	want := "sat\n((X_0 0.5)\n (X_1 -1)\n (Y_0 3))\n"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := vnnResult(verify.Decision{Outcome: verify.OutcomeUnsat}); got != "unsat\n" {
		t.Errorf("got %q", got)
	}
}

// TestVNNLIBMode runs certify --vnnlib on the VNN-COMP test instances (ACAS Xu
// property 3 on a net that violates it and one that satisfies it), when present.
func TestVNNLIBMode(t *testing.T) {
	dir := filepath.Join(os.Getenv("CERTIFY_VNNCOMP"), "2021/test")
	if os.Getenv("CERTIFY_VNNCOMP") == "" {
		dir = "/work/shared/benchmarks/vnncomp/2021/test"
	}
	if _, err := os.Stat(dir); err != nil {
		t.Skip(err)
	}
	for model, want := range map[string]string{"test_sat.onnx": "sat", "test_unsat.onnx": "unsat"} {
		res := filepath.Join(t.TempDir(), "result.txt")
		var out, errb bytes.Buffer
		code := run([]string{"--vnnlib", filepath.Join(dir, "test_prop.vnnlib"), "--vnnlib-result", res, "--timeout", "20s", filepath.Join(dir, model)}, &out, &errb)
		if code != cli.ExitOK || strings.TrimSpace(out.String()) != want {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want %s", model, code, out.String(), errb.String(), want)
			continue
		}
		b, err := os.ReadFile(res)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(b), want+"\n") || (want == "sat") != strings.Contains(string(b), "(X_4 ") {
			t.Errorf("%s: result file %q", model, b)
		}
	}
}
