package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A noisy recipe trains alone (no other model, no sample data), reports its accuracy
// under its own noise, and is reproducible.
func TestRunNoisyModelAlone(t *testing.T) {
	if testing.Short() {
		t.Skip("loads all of MNIST")
	}
	var files [2][]byte
	for i := range files {
		dir := t.TempDir()
		var out, errOut bytes.Buffer
		args := []string{"--out", dir, "--models", "mnist_cnn_noise050", "--epochs", "1", "--train-limit", "300",
			"--check=false", "--data=false"}
		if err := run(args, &out, &errOut); err != nil {
			t.Fatalf("run %d: %v\n%s", i, err, errOut.String())
		}
		for _, want := range []string{"Gaussian augmentation σ 0.5", "noisy test acc", "accuracy under N(0, 0.5²I) noise"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("run %d: output lacks %q:\n%s", i, want, out.String())
			}
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 1 || entries[0].Name() != "mnist_cnn_noise050.onnx" {
			t.Fatalf("run %d wrote %v, want only mnist_cnn_noise050.onnx", i, entries)
		}
		if files[i], err = os.ReadFile(filepath.Join(dir, "mnist_cnn_noise050.onnx")); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(files[0], files[1]) {
		t.Error("two runs with the same seed wrote different models")
	}
}
