package defenses

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"

	"github.com/certify-dev/certify/attacks"
	"github.com/certify-dev/certify/nets"
)

// ActivationDetector is the detector of Metzen, Genewein, Fischer & Bischoff, "On
// Detecting Adversarial Perturbations", ICLR 2017: a small network, the head h,
// reads the classifier's activations a(x) at one named value of its graph (Layer) and
// is trained to tell clean inputs from adversarial ones. The head has two logits
// (clean, adversarial); the detector score is their log-odds against a threshold t,
//
//	s(x) = h_adv(a(x)) − h_clean(a(x)) − t,   rejected ⇔ s(x) > 0,
//
// and Logits are the classifier's K logits and the reject column max_j f_j(x) + s(x)
// (see withReject). Classifier and head are differentiable, so LossGrad is the exact
// gradient of a loss of those K+1 logits, through the head into the classifier at
// Layer and through the classifier's own output; the detector-aware target (Carlini
// & Wagner, AISec 2017) is the detector itself with EvasionLoss.
type ActivationDetector struct {
	// Base is the classifier f, Head the detector network on f's value Layer.
	Base, Head *nets.Graph
	Layer      string
	// Threshold t on the head's log-odds of "adversarial" (any finite number).
	Threshold float64

	classes                  int
	in, out, headIn, headOut string
}

// NewActivationDetector wraps base with a head reading base's value layer. The
// head must map that value (batched) to [batch, 2] logits (clean, adversarial).
func NewActivationDetector(base, head *nets.Graph, layer string, threshold float64) (*ActivationDetector, error) {
	if math.IsNaN(threshold) || math.IsInf(threshold, 0) {
		return nil, fmt.Errorf("activation detector: threshold %v: want a finite number (log-odds)", threshold)
	}
	d := &ActivationDetector{Base: base, Head: head, Layer: layer, Threshold: threshold}
	var err error
	if d.in, d.out, err = graphIO(base); err != nil {
		return nil, fmt.Errorf("activation detector: base: %w", err)
	}
	if d.headIn, d.headOut, err = graphIO(head); err != nil {
		return nil, fmt.Errorf("activation detector: head: %w", err)
	}
	if err := checkLayer(base, layer); err != nil {
		return nil, fmt.Errorf("activation detector: %w", err)
	}
	shape, err := base.InputShape()
	if err != nil {
		return nil, fmt.Errorf("activation detector: base: %w", err)
	}
	full := []int{1}
	for _, v := range shape {
		full = append(full, max(v, 1))
	}
	z, _, h, err := d.forward(nets.NewTensor(full...))
	if err != nil {
		return nil, fmt.Errorf("activation detector: one input of shape %v: %w", full, err)
	}
	d.classes = z.Shape[1]
	if d.classes < 2 {
		return nil, fmt.Errorf("activation detector: base has %d logits; want at least 2", d.classes)
	}
	if h.Rank() != 2 || h.Shape[1] != 2 {
		return nil, fmt.Errorf("activation detector: head output of shape %v; want [batch, 2] (clean, adversarial)", h.Shape)
	}
	return d, nil
}

// checkLayer checks that layer is a value computed by one of g's nodes.
func checkLayer(g *nets.Graph, layer string) error {
	var names []string
	for _, n := range g.Nodes {
		for _, o := range n.Outputs {
			if o == layer && o != "" {
				return nil
			}
			if o != "" {
				names = append(names, o)
			}
		}
	}
	if layer == "" {
		return errors.New(`no layer named (the base's value the head reads)`)
	}
	sort.Strings(names)
	return fmt.Errorf("unknown layer %q: the base computes %s", layer, strings.Join(names, ", "))
}

func buildActivationDetector(l *Loader, s Spec) (Model, error) {
	p := struct {
		Head      string   `json:"head"`
		Layer     string   `json:"layer"`
		Threshold *float64 `json:"threshold"`
	}{}
	if err := l.Params(s, &p); err != nil {
		return nil, err
	}
	if p.Head == "" {
		return nil, errors.New(`params: no "head" (the detector network, an .onnx file)`)
	}
	if p.Layer == "" {
		return nil, errors.New(`params: no "layer" (the base's value the head reads)`)
	}
	if p.Threshold == nil {
		return nil, errors.New(`params: no "threshold" (the head's log-odds above which an input is rejected)`)
	}
	base, err := l.Graph(s.Model)
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	head, err := l.Graph(p.Head)
	if err != nil {
		return nil, fmt.Errorf("head: %w", err)
	}
	return NewActivationDetector(base, head, p.Layer, *p.Threshold)
}

// InputShape is the base's.
func (d *ActivationDetector) InputShape() ([]int, error) { return d.Base.InputShape() }

// Reject is the index of the reject column, K.
func (d *ActivationDetector) Reject() int { return d.classes }

// forward runs base and head on a batch: the base's logits and values, the head's
// values, and the head's logits.
func (d *ActivationDetector) forward(x *nets.Tensor) (z *nets.Tensor, vals nets.Values, h *nets.Tensor, err error) {
	if vals, err = d.Base.Forward(map[string]*nets.Tensor{d.in: x}); err != nil {
		return nil, nil, nil, fmt.Errorf("base: %w", err)
	}
	z, a := vals[d.out], vals[d.Layer]
	if z == nil || z.Rank() != 2 || z.Shape[0] != x.Shape[0] {
		return nil, nil, nil, fmt.Errorf("base: logits of shape %v for %d rows", shapeOf(z), x.Shape[0])
	}
	if a == nil {
		return nil, nil, nil, fmt.Errorf("base: value %q not computed", d.Layer)
	}
	hv, err := d.Head.Forward(map[string]*nets.Tensor{d.headIn: a})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("head on %q (shape %v): %w", d.Layer, a.Shape, err)
	}
	h = hv[d.headOut]
	if h == nil || h.Rank() != 2 || h.Shape[0] != x.Shape[0] || h.Shape[1] != 2 {
		return nil, nil, nil, fmt.Errorf("head: output of shape %v for %d rows; want [rows, 2]", shapeOf(h), x.Shape[0])
	}
	for k, v := range hv {
		vals["head/"+k] = v // the head's values, kept for its backward pass
	}
	return z, vals, h, nil
}

// headValues extracts the head's values stored by forward.
func headValues(vals nets.Values) nets.Values {
	hv := nets.Values{}
	for k, v := range vals {
		if name, ok := strings.CutPrefix(k, "head/"); ok {
			hv[name] = v
		}
	}
	return hv
}

// scores returns s = h_adv − h_clean − t per row.
func (d *ActivationDetector) scores(h *nets.Tensor) []float64 {
	s := make([]float64, h.Shape[0])
	for i := range s {
		s[i] = h.Data[2*i+1] - h.Data[2*i] - d.Threshold
	}
	return s
}

// Logits returns the base's logits and the reject column, on all cores.
func (d *ActivationDetector) Logits(x *nets.Tensor) (*nets.Tensor, error) {
	if x == nil || x.Rank() == 0 || x.Shape[0] == 0 {
		return nil, fmt.Errorf("activation detector: empty batch of shape %v", shapeOf(x))
	}
	n, k1 := x.Shape[0], d.classes+1
	out := nets.NewTensor(n, k1)
	err := nets.ParallelRows(n, 16, func(_, lo, hi int) error {
		z, _, h, err := d.forward(rowsOf(x, lo, hi))
		if err != nil {
			return err
		}
		zr, err := withReject(z, d.scores(h))
		if err != nil {
			return err
		}
		if zr.Shape[1] != k1 {
			return fmt.Errorf("base gives %d logits, %d at construction", zr.Shape[1]-1, d.classes)
		}
		copy(out.Data[lo*k1:hi*k1], zr.Data)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("activation detector: %w", err)
	}
	return out, nil
}

// LossGrad is the exact gradient of loss over the K+1 logits: with g' its gradient
// there, ∂L/∂z and ∂L/∂s from the reject column (rejectBackward), ∂L/∂h =
// (−∂L/∂s, ∂L/∂s) back through the head to the activation a, and one backward pass
// of the base seeded with ∂L/∂z at its output and ∂L/∂a at Layer.
func (d *ActivationDetector) LossGrad(x *nets.Tensor, labels []int, loss nets.Loss) ([]float64, *nets.Tensor, error) {
	if x == nil || x.Rank() == 0 || x.Shape[0] == 0 || x.Shape[0] != len(labels) {
		return nil, nil, fmt.Errorf("activation detector: batch of shape %v with %d labels", shapeOf(x), len(labels))
	}
	if loss == nil {
		loss = nets.CrossEntropy{}
	}
	n := x.Shape[0]
	per := x.Len() / n
	values := make([]float64, n)
	grad := nets.NewTensor(x.Shape...)
	err := nets.ParallelRows(n, 16, func(_, lo, hi int) error {
		z, vals, h, err := d.forward(rowsOf(x, lo, hi))
		if err != nil {
			return err
		}
		zr, err := withReject(z, d.scores(h))
		if err != nil {
			return err
		}
		v, g, err := loss.Eval(zr, labels[lo:hi])
		if err != nil {
			return err
		}
		copy(values[lo:hi], v)
		dz, ds := rejectBackward(z, g)
		dh := nets.NewTensor(hi-lo, 2)
		for i, v := range ds {
			dh.Data[2*i], dh.Data[2*i+1] = -v, v
		}
		hg, err := d.Head.Backward(headValues(vals), map[string]*nets.Tensor{d.headOut: dh}, false)
		if err != nil {
			return fmt.Errorf("head: %w", err)
		}
		da, ok := hg[d.headIn]
		if !ok {
			return errors.New("head: its output does not depend on its input")
		}
		seeds := map[string]*nets.Tensor{d.out: dz}
		if d.Layer == d.out {
			for i, v := range da.Data {
				dz.Data[i] += v
			}
		} else {
			seeds[d.Layer] = da
		}
		bg, err := d.Base.Backward(vals, seeds, false)
		if err != nil {
			return fmt.Errorf("base: %w", err)
		}
		if gx, ok := bg[d.in]; ok {
			copy(grad.Data[lo*per:hi*per], gx.Data)
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("activation detector: %w", err)
	}
	return values, grad, nil
}

// AdaptiveTarget is the detector itself (its gradients are exact) with EvasionLoss.
func (d *ActivationDetector) AdaptiveTarget() (AdaptiveTarget, error) {
	return AdaptiveTarget{Name: "detector-aware", Model: d, Loss: EvasionLoss{Reject: d.classes}}, nil
}

// DetectorConfig sets up TrainActivationDetector.
type DetectorConfig struct {
	// Layer is the base's value the head reads, e.g. the hidden fully connected
	// layer after its ReLU.
	Layer string
	// Hidden is the width of the head's one hidden layer; Epochs, Batch and LR
	// (Adam's learning rate) its training.
	Hidden, Epochs, Batch int
	LR                    float64
	// Eps is the L∞ radius of the PGD examples the head learns to detect, PGDSteps
	// their number of steps (step size 2.5·Eps/PGDSteps).
	Eps      float64
	PGDSteps int
	// FPR is the false-positive rate on held-out clean rows the threshold is
	// calibrated to, in [0, 1), e.g. 0.05.
	FPR float64
	// Seed fixes the split, the PGD starts, the head's initialisation and shuffles.
	Seed uint64
}

// activationHoldout is the fraction of rows TrainActivationDetector keeps apart for
// calibrating the threshold.
const activationHoldout = 0.2

// TrainActivationDetector trains the head of an ActivationDetector on base as
// Metzen et al. (ICLR 2017, Section 3) do: the rows of d are split at random, a
// fifth held out; on the others, PGD (Madry et al. 2018: L∞ radius cfg.Eps in the
// domain [0, 1], cfg.PGDSteps steps, random start, stopped at the first
// misclassified iterate) attacks base, and a head Flatten → Gemm(Hidden) → ReLU →
// Gemm(2) learns, by cross-entropy with Adam, to give the clean rows class 0 and
// the successful adversarial ones class 1 (failed attacks are the clean row back,
// not adversarial, and are left out). The threshold on the head's log-odds is then
// calibrated on the held-out clean rows so that a fraction cfg.FPR of them is
// rejected (see calibrate). The head maps base's value cfg.Layer to [batch, 2].
func TrainActivationDetector(base *nets.Graph, d Data, cfg DetectorConfig) (head *nets.Graph, threshold float64, err error) {
	switch {
	case cfg.Hidden <= 0 || cfg.Epochs <= 0 || cfg.Batch <= 0 || cfg.PGDSteps <= 0:
		return nil, 0, fmt.Errorf("train activation detector: hidden %d, epochs %d, batch %d, PGD steps %d: want positive", cfg.Hidden, cfg.Epochs, cfg.Batch, cfg.PGDSteps)
	case !(cfg.LR > 0) || math.IsInf(cfg.LR, 0):
		return nil, 0, fmt.Errorf("train activation detector: learning rate %v: want positive", cfg.LR)
	case !(cfg.Eps > 0) || cfg.Eps > 1:
		return nil, 0, fmt.Errorf("train activation detector: ε %v: want in (0, 1]", cfg.Eps)
	case !(cfg.FPR >= 0 && cfg.FPR < 1):
		return nil, 0, fmt.Errorf("train activation detector: false-positive rate %v: want in [0, 1)", cfg.FPR)
	case d.X == nil || d.X.Rank() < 2 || d.X.Shape[0] != len(d.Labels):
		return nil, 0, fmt.Errorf("train activation detector: %d labels for data of shape %v", len(d.Labels), shapeOf(d.X))
	case len(d.Labels) < 10:
		return nil, 0, fmt.Errorf("train activation detector: %d rows; want at least 10", len(d.Labels))
	}
	in, _, err := graphIO(base)
	if err != nil {
		return nil, 0, fmt.Errorf("train activation detector: base: %w", err)
	}
	if err := checkLayer(base, cfg.Layer); err != nil {
		return nil, 0, fmt.Errorf("train activation detector: %w", err)
	}
	trainRows, calRows := activationSplit(len(d.Labels), cfg.Seed)
	trainX, trainY := pickRows(d, trainRows)
	calX, _ := pickRows(d, calRows)
	r := rand.New(rand.NewPCG(cfg.Seed, 0x6d65747a656e)) // "metzen": the head's init and shuffles

	pgd := attacks.PGD{Budget: attacks.Budget{Norm: attacks.LInf, Eps: cfg.Eps, Lo: 0, Hi: 1},
		Steps: cfg.PGDSteps, Step: 2.5 * cfg.Eps / float64(cfg.PGDSteps), Restarts: 1,
		Loss: nets.CrossEntropy{}, RandomStart: true, EarlyStop: true, Seed: cfg.Seed}
	res, err := pgd.Attack(context.Background(), base, trainX, trainY)
	if err != nil {
		return nil, 0, fmt.Errorf("train activation detector: PGD: %w", err)
	}
	var advRows []int
	for i, ok := range res.Success {
		if ok {
			advRows = append(advRows, i)
		}
	}
	if len(advRows) == 0 {
		return nil, 0, fmt.Errorf("train activation detector: PGD at ε = %v found no adversarial example among %d rows", cfg.Eps, len(trainY))
	}
	advX, _ := pickRows(Data{X: res.Adv, Labels: trainY}, advRows)

	cleanA, err := activations(base, in, cfg.Layer, trainX)
	if err != nil {
		return nil, 0, fmt.Errorf("train activation detector: %w", err)
	}
	advA, err := activations(base, in, cfg.Layer, advX)
	if err != nil {
		return nil, 0, fmt.Errorf("train activation detector: %w", err)
	}
	x := nets.NewTensor(append([]int{cleanA.Shape[0] + advA.Shape[0]}, cleanA.Shape[1:]...)...)
	copy(x.Data, cleanA.Data)
	copy(x.Data[cleanA.Len():], advA.Data)
	labels := make([]int, x.Shape[0])
	for i := cleanA.Shape[0]; i < len(labels); i++ {
		labels[i] = 1
	}
	head, err = nets.MLP(r, cleanA.Shape[1:], cfg.Hidden, 2)
	if err != nil {
		return nil, 0, fmt.Errorf("train activation detector: head: %w", err)
	}
	head.Name = "activation_detector_head"
	_, err = nets.Train(head, x, labels, nets.TrainConfig{Epochs: cfg.Epochs, BatchSize: cfg.Batch,
		Optimizer: nets.NewAdam(), Schedule: nets.ConstantLR(cfg.LR), Rand: r})
	if err != nil {
		return nil, 0, fmt.Errorf("train activation detector: head: %w", err)
	}

	calA, err := activations(base, in, cfg.Layer, calX)
	if err != nil {
		return nil, 0, fmt.Errorf("train activation detector: %w", err)
	}
	h, err := head.Logits(calA)
	if err != nil {
		return nil, 0, fmt.Errorf("train activation detector: head: %w", err)
	}
	s := make([]float64, h.Shape[0])
	for i := range s {
		s[i] = h.Data[2*i+1] - h.Data[2*i]
	}
	if threshold, err = calibrate(s, cfg.FPR); err != nil {
		return nil, 0, fmt.Errorf("train activation detector: %w", err)
	}
	return head, threshold, nil
}

// activationSplit splits n rows at random (from seed) into the rows
// TrainActivationDetector trains on and the fifth it calibrates on.
func activationSplit(n int, seed uint64) (train, cal []int) {
	perm := rand.New(rand.NewPCG(seed, 0x73706c6974)).Perm(n) // "split"
	nCal := max(1, int(math.Round(activationHoldout*float64(n))))
	return perm[nCal:], perm[:nCal]
}

// pickRows copies the given rows of d.
func pickRows(d Data, rows []int) (*nets.Tensor, []int) {
	y := make([]int, len(rows))
	for i, j := range rows {
		y[i] = d.Labels[j]
	}
	return gatherRows(d.X, rows), y
}

// activations returns base's value layer on every row of x, on all cores.
func activations(base *nets.Graph, in, layer string, x *nets.Tensor) (*nets.Tensor, error) {
	n := x.Shape[0]
	parts := make([]*nets.Tensor, n)
	err := nets.ParallelRows(n, 16, func(_, lo, hi int) error {
		vals, err := base.Forward(map[string]*nets.Tensor{in: rowsOf(x, lo, hi)})
		if err != nil {
			return err
		}
		a := vals[layer]
		if a == nil || a.Rank() == 0 || a.Shape[0] != hi-lo {
			return fmt.Errorf("value %q of shape %v for %d rows; want one row per input", layer, shapeOf(a), hi-lo)
		}
		parts[lo] = a
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("activations at %q: %w", layer, err)
	}
	var first *nets.Tensor
	for _, p := range parts {
		if p != nil {
			first = p
			break
		}
	}
	out := nets.NewTensor(append([]int{n}, first.Shape[1:]...)...)
	per := first.Len() / first.Shape[0]
	for lo, p := range parts {
		if p != nil {
			copy(out.Data[lo*per:], p.Data)
		}
	}
	return out, nil
}
