package verify

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func parseString(t *testing.T, s string) *Property {
	t.Helper()
	p, err := ParseVNNLIB(strings.NewReader(s), "test.vnnlib")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestParseVNNLIBSimple: bounds on inputs, an output comparison and a linear term,
// against a hand-written normal form.
func TestParseVNNLIBSimple(t *testing.T) {
	p := parseString(t, `; comment
(declare-const X_0 Real)
(declare-const X_1 Real)
(declare-const Y_0 Real)
(declare-const Y_1 Real)
(assert (<= X_0 0.5)) ; trailing comment
(assert (>= X_0 -0.1))
(assert (<= (* 2 X_1) 1))
(assert (>= X_1 (- 1)))
(assert (<= Y_0 Y_1))
(assert (>= (+ (* 2.0 Y_0) Y_1 -3) (- Y_1 1e-1)))
`)
	want := &Property{NumInputs: 2, NumOutputs: 2, Cases: []Case{{
		Lo: []float64{-0.1, -1}, Hi: []float64{0.5, 0.5},
		Out: []Conjunct{{
			{C: []float64{-1, 1}, D: 0},       // Y_1 − Y_0 ≥ 0
			{C: []float64{2, 0}, D: -3 + 0.1}, // 2Y_0 + Y_1 − 3 − (Y_1 − 0.1) ≥ 0
		}},
	}}}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("got %+v\nwant %+v", p, want)
	}
}

// TestParseVNNLIBDisjunctions: ACAS Xu property 6's shape, two input boxes times
// four output disjuncts, grouped into two cases of four conjuncts; and an
// (or (and box out)…) form with a shared box.
func TestParseVNNLIBDisjunctions(t *testing.T) {
	p := parseString(t, `(declare-const X_0 Real)
(declare-const Y_0 Real)
(declare-const Y_1 Real)
(declare-const Y_2 Real)
(assert (or (and (<= X_0 1) (>= X_0 0)) (and (<= X_0 3) (>= X_0 2))))
(assert (or (and (<= Y_1 Y_0)) (and (<= Y_2 Y_0) (< Y_1 0))))
`)
	if len(p.Cases) != 2 || len(p.Cases[0].Out) != 2 || len(p.Cases[1].Out) != 2 {
		t.Fatalf("got %+v", p)
	}
	if p.Cases[1].Lo[0] != 2 || p.Cases[1].Hi[0] != 3 || !p.Cases[0].Out[1][1].Strict {
		t.Errorf("got %+v", p)
	}
	q := parseString(t, `(declare-const X_0 Real)
(declare-const Y_0 Real)
(assert (or (and (>= X_0 -1) (<= X_0 1) (>= Y_0 100)) (and (>= X_0 -1) (<= X_0 1) (<= Y_0 -100)) (and (>= X_0 5) (<= X_0 4))))
`)
	if len(q.Cases) != 1 || len(q.Cases[0].Out) != 2 {
		t.Errorf("got %+v, want one box with two conjuncts (the empty box dropped)", q)
	}
	if !q.Cases[0].Out[0].Holds([]float64{100}) || q.Cases[0].Out[0].Holds([]float64{99}) {
		t.Errorf("Y_0 >= 100 evaluates wrongly")
	}
}

// TestParseVNNLIBErrors: malformed and unsupported properties are errors that
// name the file and line.
func TestParseVNNLIBErrors(t *testing.T) {
	head := "(declare-const X_0 Real)\n(declare-const Y_0 Real)\n"
	for _, tc := range []struct{ src, want string }{
		{head + "(assert (<= X_0 1)", "test.vnnlib:3: '(' not closed"},
		{head + ")", "test.vnnlib:3: unexpected ')'"},
		{head + "(assert (<= X_0 1))\n(assert (<= Y_0 X_0))", "test.vnnlib:4: constraint relating"},
		{head + "(assert (<= X_0 1))", "X_0 is unbounded"},
		{head + "(assert (<= X_0 1))\n(assert (>= X_0 0))\n(assert (<= Y_0 Z))", "test.vnnlib:5: \"Z\" is neither"},
		{head + "(assert (<= X_0 inf))", "neither a declared variable"},
		{head + "(assert (<= (* Y_0 Y_0) 1))", "not linear"},
		{head + "(assert (<= X_1 1))", "X_1 used but not declared"},
		{"(declare-const X_0 Int)", "only Real"},
		{"(declare-const X_1 Real)(declare-const Y_0 Real)", "X_0 not declared"},
		{head + "(check-sat)", "unsupported command"},
		{head + "(assert (xor true false))", "unsupported formula"},
		{head + "(assert (< X_0 1))", "strict bound"},
	} {
		_, err := ParseVNNLIB(strings.NewReader(tc.src), "test.vnnlib")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one containing %q", tc.src, err, tc.want)
		}
	}
}

// TestParseVNNLIBShared parses every property of the shared VNN-COMP benchmarks
// and checks the counts against the declarations and boxes are non-empty.
func TestParseVNNLIBShared(t *testing.T) {
	dir := vnncompDir(t)
	var files []string
	if err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".vnnlib") {
			files = append(files, path)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Skip("no .vnnlib files")
	}
	shapes := map[[2]int]int{}
	for _, f := range files {
		p, err := ReadVNNLIB(f)
		if err != nil {
			t.Error(err)
			continue
		}
		if len(p.Cases) == 0 {
			t.Errorf("%s: no case", f)
		}
		for _, c := range p.Cases {
			for i := range c.Lo {
				if !(c.Lo[i] <= c.Hi[i]) {
					t.Errorf("%s: X_%d in [%v, %v]", f, i, c.Lo[i], c.Hi[i])
				}
			}
		}
		shapes[[2]int{p.NumInputs, p.NumOutputs}]++
	}
	t.Logf("%d files; (inputs, outputs): %v", len(files), shapes)
}

// vnncompDir returns the VNN-COMP benchmark folder (env CERTIFY_VNNCOMP, default
// the shared copy), skipping the test when it is absent.
func vnncompDir(t testing.TB) string {
	dir := os.Getenv("CERTIFY_VNNCOMP")
	if dir == "" {
		dir = "/work/shared/benchmarks/vnncomp"
	}
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("VNN-COMP benchmarks not found (%v); set CERTIFY_VNNCOMP to their folder", err)
	}
	return dir
}

// FuzzParseVNNLIB: the parser never panics, and whatever it accepts is a
// well-formed Property.
func FuzzParseVNNLIB(f *testing.F) {
	f.Add("(declare-const X_0 Real)\n(declare-const Y_0 Real)\n(assert (<= X_0 1))\n(assert (>= X_0 0))\n(assert (<= Y_0 0))")
	f.Add("(declare-const X_0 Real)(declare-const Y_0 Real)(declare-const Y_1 Real)(assert (or (and (>= X_0 -1) (<= X_0 1) (>= (+ Y_0 (* 2 Y_1)) 100))))")
	f.Add("(((((")
	f.Add("; only a comment")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseVNNLIB(strings.NewReader(s), "fuzz")
		if err != nil {
			return
		}
		for _, c := range p.Cases {
			if len(c.Lo) != p.NumInputs || len(c.Hi) != p.NumInputs {
				t.Fatalf("box of %d/%d for %d inputs", len(c.Lo), len(c.Hi), p.NumInputs)
			}
			for i := range c.Lo {
				if !(c.Lo[i] <= c.Hi[i]) {
					t.Fatalf("empty box side %v > %v", c.Lo[i], c.Hi[i])
				}
			}
			for _, k := range c.Out {
				for _, h := range k {
					if len(h.C) != p.NumOutputs {
						t.Fatalf("halfspace of %d for %d outputs", len(h.C), p.NumOutputs)
					}
				}
			}
		}
	})
}
