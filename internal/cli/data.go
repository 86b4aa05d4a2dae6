// Package cli holds what the commands share: loading a model and a labelled sample
// set the way certify does (default data files, shape conformance, domain and label
// checks, with errors that say what to do), and parsing a data domain.
package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/certify-dev/certify/nets"
)

// The default sample set: the first 1000 MNIST test images, shipped in testdata/.
const (
	DefaultData   = "testdata/mnist-test-1k.npy"
	DefaultLabels = "testdata/mnist-test-1k-labels.npy"
)

// FindDefault locates a default data file (a path relative to the repository root)
// when --data is not given: in the working directory and each of its parents, so
// that a command runs from anywhere inside a checkout (`go run` builds the binary in a
// temporary folder), then beside the executable and its parent (bin/certify in a
// checkout, or a release folder holding testdata/). The error lists where it
// looked and how to proceed.
func FindDefault(rel string) (string, error) {
	var tried []string
	try := func(dir string) (string, bool) {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p, true
		}
		if !slices.Contains(tried, dir) {
			tried = append(tried, dir)
		}
		return "", false
	}
	if wd, err := os.Getwd(); err == nil {
		for dir := wd; ; dir = filepath.Dir(dir) {
			if p, ok := try(dir); ok {
				return p, nil
			}
			if filepath.Dir(dir) == dir {
				break
			}
		}
	}
	if exe, err := os.Executable(); err == nil {
		if exe, err = filepath.EvalSymlinks(exe); err == nil {
			dir := filepath.Dir(exe)
			for _, d := range []string{dir, filepath.Dir(dir)} {
				if p, ok := try(d); ok {
					return p, nil
				}
			}
		}
	}
	return "", fmt.Errorf("default data file %s not found in the working directory, its parents or beside the executable (looked in %s); run inside the certify repository or pass --data FILE.npy --labels FILE.npy",
		rel, summarizeDirs(tried))
}

// summarizeDirs shortens a long list of searched folders for an error message.
func summarizeDirs(dirs []string) string {
	if len(dirs) > 4 {
		return strings.Join(dirs[:2], ", ") + ", ..., " + strings.Join(dirs[len(dirs)-2:], ", ")
	}
	return strings.Join(dirs, ", ")
}

// ReadData loads the samples: a float array [rows, ...sample shape], rows >= 1,
// with finite values.
func ReadData(path string) (*nets.Tensor, error) {
	x, err := nets.ReadNPY(path)
	if err != nil {
		return nil, err // ReadNPY names the file
	}
	if x.Rank() < 2 || x.Shape[0] < 1 || x.Len() == 0 {
		return nil, fmt.Errorf("data %s: shape %s; want [samples, ...sample shape] with at least one sample", path, FmtShape(x.Shape))
	}
	for i, v := range x.Data {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			per := x.Len() / x.Shape[0]
			return nil, fmt.Errorf("data %s: sample %d holds %g", path, i/per, v)
		}
	}
	return x, nil
}

// ReadLabels loads the labels: a 1-D array of integers, one per data row.
func ReadLabels(path string, rows int) ([]int, error) {
	t, err := nets.ReadNPY(path)
	if err != nil {
		return nil, err
	}
	if t.Rank() != 1 {
		return nil, fmt.Errorf("labels %s: shape %s; want a 1-D array of class indices", path, FmtShape(t.Shape))
	}
	if t.Len() != rows {
		return nil, fmt.Errorf("labels %s: %d labels for %d data rows", path, t.Len(), rows)
	}
	out := make([]int, t.Len())
	for i, v := range t.Data {
		if v != math.Trunc(v) || v < 0 || v > math.MaxInt32 {
			return nil, fmt.Errorf("labels %s: row %d holds %g; want a class index (integer >= 0)", path, i, v)
		}
		out[i] = int(v)
	}
	return out, nil
}

// CheckClasses checks every label against the number of classes of the model.
func CheckClasses(path string, labels []int, classes int) error {
	for i, y := range labels {
		if y >= classes {
			return fmt.Errorf("labels %s: row %d holds class %d but the model has %d classes (0..%d)", path, i, y, classes, classes-1)
		}
	}
	return nil
}

// CheckDomain checks that the samples lie in [lo, hi]: data on another scale (0..255
// pixels, normalised values) would make every radius and region meaningless.
func CheckDomain(path string, x *nets.Tensor, lo, hi float64) error {
	mn, mx := math.Inf(1), math.Inf(-1)
	for _, v := range x.Data {
		mn, mx = math.Min(mn, v), math.Max(mx, v)
	}
	if mn < lo || mx > hi {
		return fmt.Errorf("data %s: values span [%g,%g], outside the domain [%g,%g]; rescale the data or pass --domain %g,%g", path, mn, mx, lo, hi, math.Min(mn, lo), math.Max(mx, hi))
	}
	return nil
}

// FileSHA256 is the hex SHA-256 of a file's bytes (reports record the model's and
// the data's).
func FileSHA256(path string) (string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:]), nil
}
