package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/certify-dev/certify/defenses"
	"github.com/certify-dev/certify/nets"
)

// Source says what to load: a model, a sample set with labels, and how much of it.
type Source struct {
	// Model is an ONNX file or a defense wrapper spec (.json, see defenses.Load).
	Model string
	// Data and Labels are .npy files; both empty means DefaultData and
	// DefaultLabels, looked up with FindDefault.
	Data, Labels string
	// Count is the number of samples wanted (≥ 1); capped at the data size.
	Count int
	// Lo, Hi is the data domain every value must lie in.
	Lo, Hi float64
	// Logf, when not nil, receives notes (the count cap) and a summary of what was loaded.
	Logf func(format string, args ...any)
}

// Loaded is a model with its samples, shaped for it.
type Loaded struct {
	// Model is the loaded model: a *nets.Graph for an ONNX file, a defenses wrapper
	// for a spec.
	Model       defenses.Model
	ModelSHA256 string // hex SHA-256 of the model file (for a spec: of the spec's bytes)
	InputShape  []int  // the model's per-sample input shape (-1: dynamic)
	Classes     int
	// X holds the first N samples, [N, ...input shape]; Labels their classes.
	X      *nets.Tensor
	Labels []int
	// Rows is the number of samples in the data file.
	Rows int
	// Data and Labels paths, as used (the defaults resolved).
	Data, LabelsPath string
}

// Load reads the model and the first s.Count samples and labels, checks the data
// against the model (shape, domain, labels within its classes) and runs one sample
// through it, so that every later error is the algorithm's, not the input's.
func Load(s Source) (*Loaded, error) {
	logf := s.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	raw, err := os.ReadFile(s.Model)
	if err != nil {
		return nil, fmt.Errorf("load model: %w", err)
	}
	sum := sha256.Sum256(raw)
	var g defenses.Model
	if strings.EqualFold(filepath.Ext(s.Model), ".json") {
		g, err = defenses.Load(s.Model) // "wrapper spec MODEL: ..."
	} else {
		g, err = nets.DecodeONNX(raw, s.Model) // "load MODEL: ..."
	}
	if err != nil {
		return nil, err
	}
	inShape, err := g.InputShape()
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", s.Model, err)
	}
	if (s.Data == "") != (s.Labels == "") {
		return nil, fmt.Errorf("data and labels go together: give both or neither")
	}
	if s.Data == "" {
		if s.Data, err = FindDefault(DefaultData); err != nil {
			return nil, err
		}
		if s.Labels, err = FindDefault(DefaultLabels); err != nil {
			return nil, err
		}
	}
	x, err := ReadData(s.Data)
	if err != nil {
		return nil, err
	}
	labels, err := ReadLabels(s.Labels, x.Shape[0])
	if err != nil {
		return nil, err
	}
	rows := x.Shape[0]
	n := s.Count
	if n < 1 {
		return nil, fmt.Errorf("count %d: want at least 1", n)
	}
	if n > rows {
		logf("note: --count %d exceeds the %d samples in %s; using %d", n, rows, s.Data, rows)
		n = rows
	}
	sample, err := ConformShape(x.Shape[1:], inShape)
	if err != nil {
		return nil, fmt.Errorf("data %s has shape %s, model %s takes input %s: %v",
			s.Data, FmtShape(x.Shape), s.Model, FmtShape(append([]int{-1}, inShape...)), err)
	}
	per := x.Len() / rows
	x = nets.FromData(x.Data[:n*per], append([]int{n}, sample...)...)
	if err := CheckDomain(s.Data, x, s.Lo, s.Hi); err != nil {
		return nil, err
	}
	// One sample through the model: its number of classes, and an early, clear
	// error if it cannot run on this data at all.
	probe, err := g.Logits(x.Row(0))
	if err != nil {
		return nil, fmt.Errorf("model %s on data %s (samples of shape %s): %w", s.Model, s.Data, FmtShape(sample), err)
	}
	if probe.Rank() != 2 || probe.Shape[0] != 1 || probe.Shape[1] < 2 {
		return nil, fmt.Errorf("model %s: output shape %s for one sample; want [1, classes] with at least 2 classes", s.Model, FmtShape(probe.Shape))
	}
	classes := probe.Shape[1]
	if err := CheckClasses(s.Labels, labels, classes); err != nil {
		return nil, err
	}
	h := hex.EncodeToString(sum[:])
	logf("model %s: input %s, %d classes, sha256 %s", s.Model, FmtShape(append([]int{-1}, inShape...)), classes, h[:12])
	logf("data %s: %s, using the first %d; labels %s", s.Data, FmtShape(append([]int{rows}, sample...)), n, s.Labels)
	return &Loaded{
		Model: g, ModelSHA256: h, InputShape: inShape, Classes: classes,
		X: x, Labels: labels[:n], Rows: rows, Data: s.Data, LabelsPath: s.Labels,
	}, nil
}

// ParseDomain parses "lo,hi" into finite lo < hi.
func ParseDomain(s string) (lo, hi float64, err error) {
	parts := strings.Split(s, ",")
	if len(parts) != 2 {
		return 0, 0, fmt.Errorf("want two numbers lo,hi")
	}
	var v [2]float64
	for i, p := range parts {
		f, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil {
			return 0, 0, fmt.Errorf("%q is not a number", p)
		}
		v[i] = f
	}
	if math.IsNaN(v[0]) || math.IsNaN(v[1]) || math.IsInf(v[0], 0) || math.IsInf(v[1], 0) {
		return 0, 0, fmt.Errorf("domain [%g,%g]: bounds must be finite", v[0], v[1])
	}
	if !(v[0] < v[1]) {
		return 0, 0, fmt.Errorf("domain [%g,%g]: lo must be below hi", v[0], v[1])
	}
	return v[0], v[1], nil
}
