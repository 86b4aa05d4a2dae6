package nets

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// vnncompDir returns the VNN-COMP benchmark folder (env CERTIFY_VNNCOMP, default
// the shared copy), skipping the test when it is absent: the networks are not part
// of the repository.
func vnncompDir(t testing.TB) string {
	dir := os.Getenv("CERTIFY_VNNCOMP")
	if dir == "" {
		dir = "/work/shared/benchmarks/vnncomp"
	}
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("VNN-COMP networks not found (%v); set CERTIFY_VNNCOMP to their folder", err)
	}
	return dir
}

// vnncompModels lists every .onnx file under dir, relative to it, sorted.
func vnncompModels(t testing.TB, dir string) []string {
	var out []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && filepath.Ext(path) == ".onnx" {
			rel, err := filepath.Rel(dir, path)
			if err != nil {
				return err
			}
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// vnncompRef is one network's reference output, computed in float64 by
// testdata/vnncomp_outputs.py, an interpreter written from the ONNX operator
// specifications in Python, independent of this package.
type vnncompRef struct {
	InputShape  []int     `json:"input_shape"`
	OutputShape []int     `json:"output_shape"`
	Output      []float64 `json:"output"`
}

// vnncompInput is the reference input: x[i] = ((7919 i + 123) mod 1000) / 1000.
func vnncompInput(shape []int) *Tensor {
	x := NewTensor(shape...)
	for i := range x.Data {
		x.Data[i] = float64((7919*i+123)%1000) / 1000
	}
	return x
}

// TestVNNCOMPModels loads every VNN-COMP network, runs it on an input of the
// declared shape, and compares the output with the independent reference. It also
// writes each network back to ONNX and checks the reloaded copy computes the same.
func TestVNNCOMPModels(t *testing.T) {
	dir := vnncompDir(t)
	raw, err := os.ReadFile("testdata/vnncomp_outputs.json")
	if err != nil {
		t.Fatal(err)
	}
	refs := map[string]vnncompRef{}
	if err := json.Unmarshal(raw, &refs); err != nil {
		t.Fatal(err)
	}
	models := vnncompModels(t, dir)
	if len(models) == 0 {
		t.Fatalf("no .onnx files under %s", dir)
	}
	for _, rel := range models {
		t.Run(rel, func(t *testing.T) {
			ref, ok := refs[rel]
			if !ok {
				t.Fatalf("no reference output in testdata/vnncomp_outputs.json: rerun testdata/vnncomp_outputs.py")
			}
			g, err := ReadONNX(filepath.Join(dir, rel))
			if err != nil {
				t.Fatal(err)
			}
			x := vnncompInput(ref.InputShape)
			y, err := runSingle(g, x)
			if err != nil {
				t.Fatal(err)
			}
			if y.HasNaN() {
				t.Fatalf("output has NaN or Inf: %v", y)
			}
			if NumElements(y.Shape) != NumElements(ref.OutputShape) {
				t.Fatalf("output shape %v, reference %v", y.Shape, ref.OutputShape)
			}
			for i, want := range ref.Output {
				if d := math.Abs(y.Data[i] - want); d > 1e-9*(1+math.Abs(want)) {
					t.Errorf("output %d = %.17g, reference %.17g (diff %.3g)", i, y.Data[i], want, d)
				}
			}

			// Export and reload: float32 weights survive exactly, so must the outputs.
			data, err := EncodeONNX(g)
			if err != nil {
				t.Fatal(err)
			}
			g2, err := DecodeONNX(data, "exported "+rel)
			if err != nil {
				t.Fatal(err)
			}
			y2, err := runSingle(g2, x)
			if err != nil {
				t.Fatal(err)
			}
			if !SameShape(y.Shape, y2.Shape) || !sameFloats(y.Data, y2.Data) {
				t.Errorf("after export: %v, before %v", y2, y)
			}
		})
	}
}

// runSingle feeds x to the graph's one data input and returns its one output.
func runSingle(g *Graph, x *Tensor) (*Tensor, error) {
	in, out, err := g.single()
	if err != nil {
		return nil, err
	}
	vals, err := g.Forward(map[string]*Tensor{in.Name: x})
	if err != nil {
		return nil, err
	}
	return vals[out], nil
}
