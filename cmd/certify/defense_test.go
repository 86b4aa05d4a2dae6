package main

import (
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

// certify takes a defense wrapper spec where it takes an ONNX file: here 1-bit
// depth reduction around the shipped CNN. Its predictions are the CNN's on the
// binarised images (computed here by hand), the spec's SHA-256 is recorded, and a
// bound-propagation method, which needs a plain network, is a clear error.
func TestDefenseSpecModel(t *testing.T) {
	cnn, err := filepath.Abs("../../testdata/mnist_cnn.onnx")
	if err != nil {
		t.Fatal(err)
	}
	data, labels := "../../testdata/mnist-test-1k.npy", "../../testdata/mnist-test-1k-labels.npy"
	dir := t.TempDir()
	spec := filepath.Join(dir, "bits.json")
	if err := os.WriteFile(spec, []byte(`{"kind": "bit-depth", "model": "`+cnn+`", "params": {"bits": 1}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "r.json")
	code, _, stderr := runCmd("--data", data, "--labels", labels, "-n", "30", "--radius", "0.1",
		"--attacks", "fgsm", "--json", out, spec)
	if code != cli.ExitOK {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var rep pipeline.Report
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	g, err := nets.ReadONNX(cnn)
	if err != nil {
		t.Fatal(err)
	}
	x, err := nets.ReadNPY(data)
	if err != nil {
		t.Fatal(err)
	}
	x = &nets.Tensor{Shape: []int{30, 1, 28, 28}, Data: x.Data[:30*784]}
	bin := x.Clone()
	for i, v := range bin.Data {
		bin.Data[i] = math.Floor(v + 0.5) // halves round up
	}
	z, err := g.Logits(bin)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range z.Argmax() {
		if rep.Samples[i].Predicted != p {
			t.Fatalf("sample %d: certify predicted %d, the CNN on the binarised image %d", i, rep.Samples[i].Predicted, p)
		}
	}
	if rep.Model != spec || len(rep.ModelSHA256) != 64 {
		t.Errorf("model %q sha256 %q", rep.Model, rep.ModelSHA256)
	}
	if len(rep.Attacks) != 1 || rep.Summary.EmpiricalAccuracy == nil {
		t.Errorf("attacks %v, empirical %v", rep.Attacks, rep.Summary.EmpiricalAccuracy)
	}

	code, _, stderr = runCmd("--data", data, "--labels", labels, "-n", "3", "--methods", "crown", spec)
	if code == cli.ExitOK || !strings.Contains(stderr, "needs its graph") {
		t.Fatalf("crown on a wrapper: exit %d\n%s", code, stderr)
	}
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"kind": "bit-depth", "model": "missing.onnx"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = runCmd("--data", data, "--labels", labels, "-n", "3", bad)
	if code == cli.ExitOK || !strings.Contains(stderr, "bad.json") || !strings.Contains(stderr, "missing.onnx") {
		t.Fatalf("spec naming a missing model: exit %d\n%s", code, stderr)
	}
}
