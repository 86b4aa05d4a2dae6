package defenses

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/certify-dev/certify/nets"
)

// Spec is a wrapper spec file: the kind of wrapper, the model(s) it wraps and its
// parameters, e.g.
//
//	{"kind": "jpeg", "model": "../mnist_cnn.onnx", "params": {"quality": 75}}
//	{"kind": "ensemble", "models": ["a.onnx", "b.onnx"]}
//
// File names are relative to the spec file's folder. A model may itself be a spec
// (.json), so wrappers nest. Params are decoded strictly: an unknown parameter is
// an error, not silently ignored.
type Spec struct {
	Kind   string          `json:"kind"`
	Model  string          `json:"model,omitempty"`
	Models []string        `json:"models,omitempty"`
	Params json.RawMessage `json:"params,omitempty"`
}

// builder makes the wrapper of one kind from its spec.
type builder func(l *Loader, s Spec) (Model, error)

// kinds lists the wrapper kinds with their builders (each in the wrapper's file).
func kinds() map[string]builder {
	return map[string]builder{
		"blur":                buildBlur,
		"jpeg":                buildJPEG,
		"bit-depth":           buildBitDepth,
		"defense-vae":         buildDefenseVAE,
		"defense-gan":         buildDefenseGAN,
		"activation-detector": buildActivationDetector,
		"confidence-detector": buildConfidenceDetector,
		"squeeze-detector":    buildSqueezeDetector,
		"ensemble":            buildEnsemble,
		"rotation":            buildRotation,
		"shattered":           buildShattered,
		"stochastic":          buildStochastic,
		"saturated":           buildSaturated,
	}
}

// Kinds returns the wrapper kinds a spec may name, sorted.
func Kinds() []string {
	var ks []string
	for k := range kinds() {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// maxNesting bounds how deeply specs may name other specs (and catches cycles).
const maxNesting = 8

// Load reads a model file: an ONNX graph (.onnx) or a wrapper spec (.json). The
// model is checked on one all-zero input of its shape before it is returned, so a
// spec whose parts do not fit together fails here, with the spec's name.
func Load(path string) (Model, error) {
	return load(path, nil)
}

func load(path string, chain []string) (Model, error) {
	if !strings.EqualFold(filepath.Ext(path), ".json") {
		return nets.ReadONNX(path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("wrapper spec %s: %w", path, err)
	}
	if slices.Contains(chain, abs) {
		return nil, fmt.Errorf("wrapper spec %s: names itself through %s", path, strings.Join(chain, " -> "))
	}
	if len(chain) >= maxNesting {
		return nil, fmt.Errorf("wrapper spec %s: specs nested more than %d deep", path, maxNesting)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("wrapper spec: %w", err)
	}
	s, err := ParseSpec(raw)
	if err != nil {
		return nil, fmt.Errorf("wrapper spec %s: %w", path, err)
	}
	l := &Loader{file: path, dir: filepath.Dir(path), chain: append(slices.Clone(chain), abs)}
	m, err := kinds()[s.Kind](l, s)
	if err != nil {
		return nil, fmt.Errorf("wrapper spec %s (%s): %w", path, s.Kind, err)
	}
	if err := probe(m); err != nil {
		return nil, fmt.Errorf("wrapper spec %s (%s): %w", path, s.Kind, err)
	}
	return m, nil
}

// ParseSpec decodes a spec and checks its kind; it does not open the files it
// names.
func ParseSpec(raw []byte) (Spec, error) {
	var s Spec
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return Spec{}, fmt.Errorf("not a wrapper spec: %w", err)
	}
	if dec.More() {
		return Spec{}, errors.New("not a wrapper spec: data after the JSON object")
	}
	if s.Kind == "" {
		return Spec{}, fmt.Errorf(`no "kind" (one of %s)`, strings.Join(Kinds(), ", "))
	}
	if _, ok := kinds()[s.Kind]; !ok {
		return Spec{}, fmt.Errorf("unknown kind %q (have %s)", s.Kind, strings.Join(Kinds(), ", "))
	}
	return s, nil
}

// probe runs one all-zero input through m: a wrapper whose parts do not fit (a
// generator whose output is not the classifier's input, ensemble members of
// different shapes) fails here rather than in the middle of an evaluation.
func probe(m Model) error {
	shape, err := m.InputShape()
	if err != nil {
		return err
	}
	full := []int{1}
	for _, d := range shape {
		if d < 0 {
			d = 1
		}
		full = append(full, d)
	}
	z, err := m.Logits(nets.NewTensor(full...))
	if err != nil {
		return fmt.Errorf("one input of shape %v does not go through: %w", full, err)
	}
	if z == nil || z.Rank() != 2 || z.Shape[0] != 1 || z.Shape[1] < 2 {
		return fmt.Errorf("output for one input has shape %v; want [1, classes]", shapeOf(z))
	}
	return nil
}

func shapeOf(t *nets.Tensor) []int {
	if t == nil {
		return nil
	}
	return t.Shape
}

// Loader gives a builder the files its spec names, relative to the spec's folder.
type Loader struct {
	file, dir string
	chain     []string // absolute paths of the specs being loaded, outermost first
}

// Path resolves a file name of the spec: relative to the spec's folder.
func (l *Loader) Path(name string) string {
	if filepath.IsAbs(name) {
		return name
	}
	return filepath.Join(l.dir, name)
}

// Model loads a model the spec names: ONNX or another spec.
func (l *Loader) Model(name string) (Model, error) {
	if name == "" {
		return nil, errors.New(`no model: give "model" (a file name)`)
	}
	return load(l.Path(name), l.chain)
}

// Graph loads an ONNX model the spec names (a wrapper needing a network's layers
// or gradients: a denoiser, a detector head).
func (l *Loader) Graph(name string) (*nets.Graph, error) {
	if name == "" {
		return nil, errors.New("no model file named")
	}
	if !strings.EqualFold(filepath.Ext(name), ".onnx") {
		return nil, fmt.Errorf("%s: want an .onnx network here", name)
	}
	return nets.ReadONNX(l.Path(name))
}

// Differentiable loads a model the spec names and checks that it has gradients.
func (l *Loader) Differentiable(name string) (nets.Differentiable, Model, error) {
	m, err := l.Model(name)
	if err != nil {
		return nil, nil, err
	}
	d, ok := m.(nets.Differentiable)
	if !ok {
		return nil, nil, fmt.Errorf("model %s has no gradients (a %T); this wrapper needs a differentiable one", name, m)
	}
	return d, m, nil
}

// Params decodes the spec's params into dst strictly (unknown names are errors).
// Absent params leave dst as it is, so callers set defaults first.
func (l *Loader) Params(s Spec, dst any) error {
	if len(s.Params) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(s.Params))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return fmt.Errorf("params: %w", err)
	}
	return nil
}
