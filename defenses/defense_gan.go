package defenses

import (
	"errors"
	"fmt"
	"math"
	"os"

	"github.com/certify-dev/certify/attacks"
	"github.com/certify-dev/certify/nets"
)

// DefenseGAN is the defense of Samangouei, Kabkab & Chellappa, "Defense-GAN:
// Protecting Classifiers Against Adversarial Attacks Using Generative Models",
// ICLR 2018 (their Algorithm 1 and Section 3.2): an input is replaced by the
// closest image the generator G can make, and that image is classified,
//
//	Logits(x) = f(G(z*)),   z* = argmin_z ‖G(z) − x‖²,
//
// where z* is sought by Steps steps of gradient descent z ← z − LR·∇_z‖G(z) − x‖²
// from each of Restarts starts z₀ ~ N(0, I), keeping the best iterate of each run
// (so a run never ends worse than it started) and the best run over all.
//
// The starts are drawn from InputRand(Seed, x), so a call is reproducible and each
// input's projection depends on nothing else in the batch: its Restarts runs go
// through the generator together, one input per call, and inputs run in parallel.
//
// DefenseGAN is deliberately not nets.Differentiable. The true derivative of what
// it computes goes back through all Steps·Restarts descent steps (and is zero in
// the random starts): the paper's argument was that such a gradient is impractical,
// and a zero gradient would only be a made-up one. Gradient attacks use
// AdaptiveTarget instead: BPDA with the identity backward pass, the attack with
// which Athalye, Carlini & Wagner ("Obfuscated Gradients Give a False Sense of
// Security", ICML 2018, Section 5.4.1) circumvented Defense-GAN on MNIST.
type DefenseGAN struct {
	// Net is the classifier f.
	Net Model
	// Generator is G: latent rows [B, k] to images of Net's input shape.
	Generator *nets.Graph
	// Steps L ≥ 1 and Restarts R ≥ 1 of gradient descent at learning rate LR > 0.
	Steps, Restarts int
	LR              float64
	// Seed seeds the starting points (with the bits of each input).
	Seed uint64
}

// Defaults of a defense-gan spec: L = 200 and R = 10 as in Samangouei et al.
// (their MNIST experiments). The step size is ours, for ‖G(z) − x‖² summed over
// the pixels: with a TrainGAN generator (hidden 256, latent 32) on MNIST, the
// projection error of held-out digits was flat for lr from 0.01 to 0.1 and
// lowest at 0.03 (TestDefenseGANMeasure).
const (
	defaultGANSteps    = 200
	defaultGANRestarts = 10
	defaultGANLR       = 0.03
)

// Logits implements nets.Classifier: f(G(z*(x))).
func (d *DefenseGAN) Logits(x *nets.Tensor) (*nets.Tensor, error) {
	p, err := d.Project(x)
	if err != nil {
		return nil, err
	}
	return d.Net.Logits(p)
}

// InputShape implements Model: the classifier's.
func (d *DefenseGAN) InputShape() ([]int, error) { return d.Net.InputShape() }

// AdaptiveTarget implements Adaptive: attacks.BPDA with Pre = Project and the
// identity backward pass, i.e. the gradient of f at G(z*(x)) taken as the gradient
// at x (Athalye et al. 2018, Section 5.4.1).
func (d *DefenseGAN) AdaptiveTarget() (AdaptiveTarget, error) {
	f, ok := d.Net.(nets.Differentiable)
	if !ok {
		return AdaptiveTarget{}, fmt.Errorf("defense-gan: classifier (a %T) has no gradients", d.Net)
	}
	return AdaptiveTarget{Name: "bpda", Model: attacks.BPDA{Pre: d.Project, Net: f}}, nil
}

// Project returns G(z*) for every row of x: the projection onto the generator's
// range that Logits classifies.
func (d *DefenseGAN) Project(x *nets.Tensor) (*nets.Tensor, error) {
	if d.Steps < 1 || d.Restarts < 1 || !(d.LR > 0) || math.IsInf(d.LR, 0) {
		return nil, fmt.Errorf("defense-gan: steps %d, restarts %d, lr %v: want steps, restarts ≥ 1 and a positive finite lr", d.Steps, d.Restarts, d.LR)
	}
	in, _, err := graphIO(d.Generator)
	if err != nil {
		return nil, fmt.Errorf("defense-gan: generator: %w", err)
	}
	k, err := latentSize(d.Generator, in)
	if err != nil {
		return nil, fmt.Errorf("defense-gan: %w", err)
	}
	if x.Rank() == 0 || x.Shape[0] == 0 {
		return nil, fmt.Errorf("defense-gan: empty batch of shape %v", x.Shape)
	}
	n := x.Shape[0]
	per := x.Len() / n
	out := nets.NewTensor(x.Shape...)
	errs := make([]error, n)
	forEach(n, func(i int) {
		row := x.Data[i*per : (i+1)*per]
		r := InputRand(d.Seed, row)
		starts := nets.NewTensor(d.Restarts, k)
		for j := range starts.Data {
			starts.Data[j] = r.NormFloat64()
		}
		img, _, err := d.project(row, starts)
		if err != nil {
			errs[i] = fmt.Errorf("defense-gan: row %d: %w", i, err)
			return
		}
		copy(out.Data[i*per:(i+1)*per], img)
	})
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// project runs the descent for one input row x from the starts [R, k] and
// returns the best image found and its squared distance ‖G(z) − x‖².
func (d *DefenseGAN) project(x []float64, starts *nets.Tensor) ([]float64, float64, error) {
	in, out, err := graphIO(d.Generator)
	if err != nil {
		return nil, 0, err
	}
	rr := starts.Shape[0]
	z := starts.Clone()
	best := make([]float64, len(x))
	bestErr := math.Inf(1)
	for step := 0; ; step++ {
		vals, err := d.Generator.Forward(map[string]*nets.Tensor{in: z})
		if err != nil {
			return nil, 0, fmt.Errorf("generator: %w", err)
		}
		g := vals[out]
		if g.Len() != rr*len(x) {
			return nil, 0, fmt.Errorf("generator maps %d latent rows to shape %v; want %d images of %d values", rr, g.Shape, rr, len(x))
		}
		seed := nets.NewTensor(g.Shape...)
		for r := 0; r < rr; r++ {
			gr := g.Data[r*len(x) : (r+1)*len(x)]
			var e float64
			for j, v := range gr {
				diff := v - x[j]
				e += diff * diff
				seed.Data[r*len(x)+j] = 2 * diff
			}
			if e < bestErr {
				bestErr = e
				copy(best, gr)
			}
		}
		if step == d.Steps {
			return best, bestErr, nil
		}
		grads, err := d.Generator.Backward(vals, map[string]*nets.Tensor{out: seed}, false)
		if err != nil {
			return nil, 0, fmt.Errorf("generator backward: %w", err)
		}
		gz, ok := grads[in]
		if !ok {
			return nil, 0, errors.New("generator output does not depend on its input")
		}
		for j, v := range gz.Data {
			z.Data[j] -= d.LR * v
		}
	}
}

// latentSize returns the size k of the generator's latent input [B, k].
func latentSize(g *nets.Graph, in string) (int, error) {
	for _, vi := range g.Inputs {
		if vi.Name == in {
			if len(vi.Shape) != 2 || vi.Shape[1] <= 0 {
				return 0, fmt.Errorf("generator input %q has shape %v; want [batch, latent size]", in, vi.Shape)
			}
			return vi.Shape[1], nil
		}
	}
	return 0, fmt.Errorf("generator has no input %q", in)
}

// defenseGANParams are the params of a "defense-gan" spec.
type defenseGANParams struct {
	Generator string  `json:"generator"`
	Steps     int     `json:"steps"`
	Restarts  int     `json:"restarts"`
	LR        float64 `json:"lr"`
	Seed      uint64  `json:"seed"`
}

// buildDefenseGAN makes a DefenseGAN from
//
//	{"kind": "defense-gan", "model": "classifier.onnx",
//	 "params": {"generator": "gan_generator.onnx", "steps": 200, "restarts": 10, "lr": 0.03, "seed": 0}}
//
// steps, restarts, lr and seed are optional (defaults 200, 10, 0.03, 0).
func buildDefenseGAN(l *Loader, s Spec) (Model, error) {
	p := defenseGANParams{Steps: defaultGANSteps, Restarts: defaultGANRestarts, LR: defaultGANLR}
	if err := l.Params(s, &p); err != nil {
		return nil, err
	}
	switch {
	case p.Generator == "":
		return nil, errors.New(`params: no "generator" (the GAN generator, an .onnx file)`)
	case p.Steps < 1:
		return nil, fmt.Errorf("params: steps %d; want at least 1 descent step", p.Steps)
	case p.Restarts < 1:
		return nil, fmt.Errorf("params: restarts %d; want at least 1", p.Restarts)
	case !(p.LR > 0) || math.IsInf(p.LR, 0):
		return nil, fmt.Errorf("params: lr %v; want positive and finite", p.LR)
	}
	if _, err := os.Stat(l.Path(p.Generator)); err != nil {
		return nil, fmt.Errorf("generator: %w", err)
	}
	gen, err := l.Graph(p.Generator)
	if err != nil {
		return nil, fmt.Errorf("generator: %w", err)
	}
	in, _, err := graphIO(gen)
	if err != nil {
		return nil, fmt.Errorf("generator %s: %w", p.Generator, err)
	}
	k, err := latentSize(gen, in)
	if err != nil {
		return nil, fmt.Errorf("generator %s: %w", p.Generator, err)
	}
	_, net, err := l.Differentiable(s.Model)
	if err != nil {
		return nil, err
	}
	want, err := net.InputShape()
	if err != nil {
		return nil, fmt.Errorf("classifier: %w", err)
	}
	have, err := genProbeShape(gen, []int{k})
	if err != nil {
		return nil, fmt.Errorf("generator %s: %w", p.Generator, err)
	}
	if !genShapesMatch(have, want) {
		return nil, fmt.Errorf("generator %s makes images of shape %v but the classifier takes %v", p.Generator, have, want)
	}
	return &DefenseGAN{Net: net, Generator: gen, Steps: p.Steps, Restarts: p.Restarts, LR: p.LR, Seed: p.Seed}, nil
}
