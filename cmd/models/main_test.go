package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certify-dev/certify/nets"
)

// Two runs with the same seed write byte-identical files; the sample data holds the
// first MNIST test images and labels.
func TestRunReproducible(t *testing.T) {
	if testing.Short() {
		t.Skip("loads all of MNIST")
	}
	var dirs [2]string
	for i := range dirs {
		dirs[i] = t.TempDir()
		var out, errOut bytes.Buffer
		args := []string{"--out", dirs[i], "--models", "mnist_mlp", "--epochs", "1", "--train-limit", "600", "--check=false"}
		if err := run(args, &out, &errOut); err != nil {
			t.Fatalf("run %d: %v\n%s", i, err, errOut.String())
		}
		if !strings.Contains(out.String(), "epoch  1") || !strings.Contains(out.String(), "test accuracy") {
			t.Errorf("run %d printed:\n%s", i, out.String())
		}
	}
	for _, name := range []string{"mnist_mlp.onnx", "mnist-test-1k.npy", "mnist-test-1k-labels.npy"} {
		a, err := os.ReadFile(filepath.Join(dirs[0], name))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dirs[1], name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs between runs", name)
		}
	}
	x, err := nets.ReadNPY(filepath.Join(dirs[0], "mnist-test-1k.npy"))
	if err != nil {
		t.Fatal(err)
	}
	y, err := nets.ReadNPY(filepath.Join(dirs[0], "mnist-test-1k-labels.npy"))
	if err != nil {
		t.Fatal(err)
	}
	if !nets.SameShape(x.Shape, []int{1000, 1, 28, 28}) || !nets.SameShape(y.Shape, []int{1000}) {
		t.Fatalf("shapes %v, %v", x.Shape, y.Shape)
	}
	sum, lsum := 0.0, 0.0
	for _, v := range x.Data {
		sum += v
	}
	for _, v := range y.Data {
		lsum += v
	}
	// NumPy on the raw test file: x[:1000].sum() = 24443134 (bytes), y[:1000].sum() = 4327.
	// float32 rounding moves each p/255 ≤ 1 by at most 2⁻²⁵, the sum by < 784000·2⁻²⁵ ≈ 0.023.
	if d := sum - 24443134.0/255; d > 0.025 || d < -0.025 || lsum != 4327 || y.Data[0] != 7 {
		t.Errorf("pixel sum %v (want %v), label sum %v (want 4327), first label %v", sum, 24443134.0/255, lsum, y.Data[0])
	}
}

func TestRunFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--models", "resnet"}, "unknown model"},
		{[]string{"--epochs", "-1"}, "must not be negative"},
		{[]string{"extra"}, "unexpected arguments"},
		{[]string{"--mnist", "/nonexistent"}, "t10k-images-idx3-ubyte"},
	} {
		var out, errOut bytes.Buffer
		args := append([]string{"--out", t.TempDir(), "--data=false"}, tc.args...)
		err := run(args, &out, &errOut)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want %q", tc.args, err, tc.want)
		}
	}
}
