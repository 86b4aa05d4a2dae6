package main

import (
	"bytes"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certify-dev/certify/attacks"
	"github.com/certify-dev/certify/internal/cli"
	"github.com/certify-dev/certify/nets"
)

const (
	mlp    = "../../testdata/mnist_mlp.onnx"
	data   = "../../testdata/mnist-test-1k.npy"
	labels = "../../testdata/mnist-test-1k-labels.npy"
)

func runCmd(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

// checkOut reads the .npy written by --out and checks every row against the first
// rows of the data: same shape, inside the budget.
func checkOut(t *testing.T, path string, n int, b attacks.Budget) *nets.Tensor {
	t.Helper()
	adv, err := nets.ReadNPY(path)
	if err != nil {
		t.Fatal(err)
	}
	x, err := nets.ReadNPY(data)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{n, 1, 28, 28}; !nets.SameShape(adv.Shape, want) {
		t.Fatalf("--out shape %v, want %v", adv.Shape, want)
	}
	per := 784
	for i := 0; i < n; i++ {
		a, o := adv.Data[i*per:(i+1)*per], x.Data[i*per:(i+1)*per]
		if !b.Contains(a, o) {
			t.Errorf("row %d: distance %g outside the %v budget %g", i, attacks.Distance(b.Norm, a, o), b.Norm, b.Eps)
		}
	}
	return adv
}

// lineWith returns the first line of s containing sub.
func lineWith(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}

func TestAttackPGDFiles(t *testing.T) {
	dir := t.TempDir()
	out, grid := filepath.Join(dir, "adv.npy"), filepath.Join(dir, "grid.png")
	code, stdout, stderr := runCmd("-q", "-n", "4", "--pgd-steps", "10", "--radius", "0.05", "--data", data, "--labels", labels,
		"--out", out, "--png", grid, mlp)
	if code != cli.ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, s := range []string{"clean accuracy", "100.00% (4/4)", "attack success", "robust accuracy", "median distance", "queries per sample"} {
		if !strings.Contains(stdout, s) {
			t.Errorf("stdout lacks %q:\n%s", s, stdout)
		}
	}
	adv := checkOut(t, out, 4, attacks.Budget{Norm: attacks.LInf, Eps: 0.05, Lo: 0, Hi: 1})

	// The success rate printed is the model's verdict on the written points.
	g, err := nets.ReadONNX(mlp)
	if err != nil {
		t.Fatal(err)
	}
	z, err := g.Logits(adv)
	if err != nil {
		t.Fatal(err)
	}
	y, _ := nets.ReadNPY(labels)
	broken := 0
	for i, p := range z.Argmax() {
		if p != int(y.Data[i]) {
			broken++
		}
	}
	want := fmt.Sprintf("(%d/4)", broken)
	if line := lineWith(stdout, "attack success"); !strings.Contains(line, want) {
		t.Errorf("%d written points misclassified; stdout line %q lacks %q", broken, line, want)
	}

	f, err := os.Open(grid)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	w, h := gridSize(4, 28, 28, 2)
	if b := img.Bounds(); b.Dx() != w || b.Dy() != h || w != 3*56+8 || h != 4*56+10 {
		t.Errorf("grid %v, want %d×%d", b, w, h)
	}
	// The first original's top-left pixel is black (MNIST background), drawn at
	// (gridGap, gridGap); the margin is white.
	if r, _, _, _ := img.At(gridGap, gridGap).RGBA(); r != 0 {
		t.Errorf("original pixel (0,0): red %d, want 0", r)
	}
	if r, _, _, _ := img.At(0, 0).RGBA(); r != 0xffff {
		t.Errorf("margin: red %d, want white", r)
	}
}

// A minimal-norm attack also reports its unbounded median distance, and its
// bounded result stays inside the budget.
func TestAttackMinimalNorm(t *testing.T) {
	out := filepath.Join(t.TempDir(), "adv.npy")
	code, stdout, stderr := runCmd("-q", "-n", "4", "--attack", "deepfool", "--norm", "l2", "--radius", "0.5",
		"--data", data, "--labels", labels, "--out", out, mlp)
	if code != cli.ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "minimal l2 distance, any radius") {
		t.Errorf("stdout:\n%s", stdout)
	}
	checkOut(t, out, 4, attacks.Budget{Norm: attacks.L2, Eps: 0.5, Lo: 0, Hi: 1})
}

func TestAttackUsage(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{}, "missing MODEL.onnx"},
		{[]string{"--attack", "nope", mlp}, `unknown attack "nope"`},
		{[]string{"--attack", "cw", mlp}, "does not support --norm linf"},
		{[]string{"--attack", "transfer", mlp}, "--surrogate"},
		{[]string{"--surrogate", mlp, mlp}, "--surrogate"},
		{[]string{"--norm", "l7", mlp}, "--norm"},
		{[]string{"--radius", "-1", mlp}, "--radius"},
		{[]string{"--queries", "-1", mlp}, "must be >= 0"},
		{[]string{"--data", data, mlp}, "go together"},
	} {
		code, _, stderr := runCmd(c.args...)
		if code != cli.ExitUsage || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", c.args, code, stderr, c.want)
		}
	}
	code, stdout, _ := runCmd("--help")
	if code != cli.ExitOK || !strings.Contains(stdout, "hopskipjump") || !strings.Contains(stdout, "--png") {
		t.Errorf("--help: exit %d\n%s", code, stdout)
	}
}

func TestAttackTransfer(t *testing.T) {
	code, stdout, stderr := runCmd("-q", "-n", "4", "--attack", "transfer", "--surrogate", "../../testdata/mnist_cnn.onnx",
		"--pgd-steps", "5", "--data", data, "--labels", labels, mlp)
	if line := lineWith(stdout, "queries per sample"); code != cli.ExitOK || !strings.Contains(line, " 1 / 1.0 / 1 ") {
		t.Errorf("exit %d, %s\n%s", code, stderr, stdout)
	}
}
