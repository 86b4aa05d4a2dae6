package defenses

import (
	"path/filepath"
	"strings"
	"testing"
)

// Specs that are not specs, or name an unknown kind, are rejected before any file
// is opened, with a message that says what is wrong.
func TestParseSpecErrors(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{`not json`, "not a wrapper spec"},
		{`{"kind": "jpeg", "modle": "a.onnx"}`, `unknown field "modle"`},
		{`{"model": "a.onnx"}`, `no "kind"`},
		{`{"kind": "jpg", "model": "a.onnx"}`, `unknown kind "jpg" (have activation-detector, bit-depth, blur`},
		{`{"kind": "jpeg"} {"kind": "blur"}`, "data after the JSON object"},
		{`{"kind": 3}`, "not a wrapper spec"},
	} {
		if _, err := ParseSpec([]byte(tc.body)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.body, err, tc.want)
		}
	}
	s, err := ParseSpec([]byte(`{"kind": "ensemble", "models": ["a.onnx", "b.json"], "params": {"seed": 3}}`))
	if err != nil || s.Kind != "ensemble" || len(s.Models) != 2 || s.Models[1] != "b.json" || string(s.Params) != `{"seed": 3}` {
		t.Fatalf("parsed %+v, %v", s, err)
	}
}

// Load names the spec file in every error: a missing spec, a missing base model, a
// spec that names itself, and the wrong file type where a network is needed.
func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	self := writeSpec(t, dir, "self.json", `{"kind": "ensemble", "models": ["self.json", "self.json"]}`)
	a := writeSpec(t, dir, "a.json", `{"kind": "ensemble", "models": ["b.json", "b.json"]}`)
	writeSpec(t, dir, "b.json", `{"kind": "ensemble", "models": ["a.json", "a.json"]}`)
	missing := writeSpec(t, dir, "missing.json", `{"kind": "jpeg", "model": "nowhere.onnx"}`)
	bad := writeSpec(t, dir, "bad.json", `{"kind": "jpeg", "model": "`+cnnPath(t)+`", "params": {"quality": 75, "colour": 1}}`)
	for _, tc := range []struct {
		path string
		want []string
	}{
		{filepath.Join(dir, "none.json"), []string{"none.json", "no such file"}},
		{self, []string{"self.json", "names itself"}},
		{a, []string{"a.json", "names itself"}},
		{missing, []string{"missing.json", "nowhere.onnx"}},
		{bad, []string{"bad.json", `unknown field "colour"`}},
	} {
		_, err := Load(tc.path)
		for _, w := range tc.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("Load(%s): error %v, want it to mention %q", filepath.Base(tc.path), err, w)
			}
		}
	}
}

// An .onnx path loads the network itself; specs resolve names relative to their
// own folder, so a spec in a sub-folder can name "../model.onnx".
func TestLoadPaths(t *testing.T) {
	m, err := Load("../testdata/mnist_mlp.onnx")
	if err != nil {
		t.Fatal(err)
	}
	if shape, err := m.InputShape(); err != nil || len(shape) == 0 {
		t.Fatalf("input shape %v, %v", shape, err)
	}
	l := &Loader{dir: "sub"}
	if got := l.Path("../m.onnx"); got != "m.onnx" {
		t.Fatalf("Path(../m.onnx) from sub/ = %q", got)
	}
	if got := l.Path("/abs/m.onnx"); got != "/abs/m.onnx" {
		t.Fatalf("absolute path changed to %q", got)
	}
	if _, err := l.Graph("x.json"); err == nil || !strings.Contains(err.Error(), "want an .onnx network") {
		t.Fatalf("Graph(x.json): %v", err)
	}
}
