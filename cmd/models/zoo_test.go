package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certify-dev/certify/defenses"
)

// copyShipped copies shipped models into dir: the zoo's base classifier and
// ensemble members, which the zoo reads from --out.
func copyShipped(t *testing.T, dir string, names ...string) {
	t.Helper()
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join("..", "..", "testdata", n))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, n), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// A small run of the zoo: two training defenses and every wrapper (with the VAE,
// GAN and detector head they need) are written under zoo/, and every spec loads
// back through defenses.Load with the networks beside it and scores on the test
// images.
func TestRunZooSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("loads all of MNIST")
	}
	dir := t.TempDir()
	copyShipped(t, dir, "mnist_cnn.onnx", "mnist_mlp.onnx", "mnist_cnn_noise025.onnx")
	var out, errOut bytes.Buffer
	args := []string{"--out", dir, "--data=false", "--models", "fgsm_at,ensemble_at,ibp," + wrappersName,
		"--epochs", "1", "--train-limit", "500", "--check=false", "--wrapper-test", "20"}
	if err := run(args, &out, &errOut); err != nil {
		t.Fatalf("%v\n%s\n%s", err, out.String(), errOut.String())
	}
	for _, f := range []string{"fgsm_at.onnx", "ensemble_at.onnx", "ibp.onnx", "vae.onnx", "gan_generator.onnx", "activation_detector_head.onnx"} {
		if _, err := os.Stat(filepath.Join(dir, zooDir, f)); err != nil {
			t.Errorf("not written: %v", err)
		}
	}
	specs, err := filepath.Glob(filepath.Join(dir, zooDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(specs) != 13 {
		t.Fatalf("%d specs written, want 13: %v", len(specs), specs)
	}
	kinds := map[string]bool{}
	for _, p := range specs {
		m, err := defenses.Load(p)
		if err != nil {
			t.Fatalf("written spec does not load: %v", err)
		}
		raw, _ := os.ReadFile(p)
		s, err := defenses.ParseSpec(raw)
		if err != nil {
			t.Fatal(err)
		}
		kinds[s.Kind] = true
		if _, isDetector := m.(defenses.Rejecting); isDetector != strings.Contains(s.Kind, "detector") {
			t.Errorf("%s: a %T; rejecting %v", p, m, isDetector)
		}
		if !strings.Contains(out.String(), p+": "+s.Kind+", test accuracy") {
			t.Errorf("no score printed for %s", p)
		}
	}
	if len(kinds) != len(defenses.Kinds()) {
		t.Errorf("spec kinds %v, want every kind %v", kinds, defenses.Kinds())
	}
}
