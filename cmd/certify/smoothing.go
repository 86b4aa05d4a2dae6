package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"slices"
	"sync"

	"github.com/certify-dev/certify/internal/cli"
	"github.com/certify-dev/certify/nets"
	"github.com/certify-dev/certify/pipeline"
	"github.com/certify-dev/certify/smoothing"
	"github.com/spf13/pflag"
)

// smoothingName is the name of randomized smoothing in --methods and the report.
const smoothingName = "smoothing"

// defaultSigma is the default noise level σ of --sigma: the middle of the levels
// Cohen, Rosenfeld & Kolter (2019) train and certify with on [0,1] images
// (0.12, 0.25, 0.5, 1.0), and the level of the shipped mnist_cnn_noise025.onnx.
const defaultSigma = 0.25

// Defaults of the smoothing audit (SmoothAdv's PGD on the smoothed classifier).
const (
	defaultSmoothAttackSteps = 20
	defaultSmoothAttackNoise = 32
)

// smoothingOptions are the flags of --methods smoothing.
type smoothingOptions struct {
	Sigma float64
	N0, N int
	Alpha float64
	Batch int
	// AttackSteps and AttackNoise are the steps T and noise draws m per step of
	// the smoothing audit (smoothAdv); AttackSteps 0 turns the audit off.
	AttackSteps, AttackNoise int
	CurveCSV                 string // output file, "" for none (--plot, which draws the curve too, is certify's)
	// cache, when set, is shared by the smoothing methods of a sweep's radii.
	cache *smoothingCache
}

// smoothingCache keeps each sample's CERTIFY result and audit across the radii of
// a sweep: neither depends on --radius (CERTIFY's noise comes from the sample's
// seed, the audit attacks within the certified radius), only whether the sample
// counts as certified does. A sweep then costs one smoothing run, not one per
// radius, and gives what separate runs at each radius give.
type smoothingCache struct {
	mu     sync.Mutex
	certs  map[int]smoothing.Certificate
	audits map[int]pipeline.SmoothingAttack
}

func newSmoothingCache() *smoothingCache {
	return &smoothingCache{certs: map[int]smoothing.Certificate{}, audits: map[int]pipeline.SmoothingAttack{}}
}

// certify is CERTIFY of sample index, computed by f once.
func (c *smoothingCache) certify(index int, f func() (smoothing.Certificate, error)) (smoothing.Certificate, error) {
	if c == nil {
		return f()
	}
	c.mu.Lock()
	got, ok := c.certs[index]
	c.mu.Unlock()
	if ok {
		return got, nil
	}
	got, err := f()
	if err == nil {
		c.mu.Lock()
		c.certs[index] = got
		c.mu.Unlock()
	}
	return got, err
}

// audit is the smoothing audit of sample index, computed by f once.
func (c *smoothingCache) audit(index int, f func() (*pipeline.SmoothingAttack, error)) (*pipeline.SmoothingAttack, error) {
	if c == nil {
		return f()
	}
	c.mu.Lock()
	got, ok := c.audits[index]
	c.mu.Unlock()
	if ok {
		return &got, nil
	}
	a, err := f()
	if err == nil && a != nil {
		c.mu.Lock()
		c.audits[index] = *a
		c.mu.Unlock()
	}
	return a, err
}

// addSmoothingFlags defines the flags of randomized smoothing on fs.
func addSmoothingFlags(fs *pflag.FlagSet, o *smoothingOptions) {
	fs.Float64Var(&o.Sigma, "sigma", defaultSigma, "smoothing: noise level `σ` > 0 of the smoothed classifier, in input units")
	fs.IntVar(&o.N0, "n0", smoothing.DefaultN0, "smoothing: noise samples that select the predicted class")
	fs.IntVar(&o.N, "n", smoothing.DefaultN, "smoothing: noise samples that estimate its probability (the radius; not -n, which is --count)")
	fs.Float64Var(&o.Alpha, "alpha", smoothing.DefaultAlpha, "smoothing: each certificate fails with probability at most `α`, 0 < α < 1")
	fs.IntVar(&o.Batch, "batch", smoothing.DefaultBatch, "smoothing: noisy copies per forward pass (memory, not results)")
	fs.IntVar(&o.AttackSteps, "smoothing-attack-steps", defaultSmoothAttackSteps, "smoothing audit: PGD steps on the smoothed classifier per certified sample (0: no audit)")
	fs.IntVar(&o.AttackNoise, "smoothing-attack-noise", defaultSmoothAttackNoise, "smoothing audit: noise draws `m` averaged per PGD step")
	fs.StringVar(&o.CurveCSV, "curve-csv", "", "smoothing: write the certified accuracy curve to `file` as CSV (radius,certified_accuracy)")
}

// smoothingHelp is the paragraph of the usage text on randomized smoothing.
func smoothingHelp() string {
	return fmt.Sprintf(`Randomized smoothing (--methods smoothing; Cohen, Rosenfeld & Kolter, ICML 2019)
certifies another classifier than the others: the smoothed classifier
g(x) = argmax_c P(model(x + δ) = c), δ ~ N(0, σ²I), σ = --sigma (default %g), not
the model itself, and always in the L2 norm, whatever --norm. Per sample it reports
g's prediction (or an abstention) and the L2 radius R = σ·Φ⁻¹(p̲A) in which g
provably does not change, with probability at least 1−α over the noise
(samples[].smoothing); certified.smoothing means g predicts the label with
R >= --radius read as an L2 radius. It runs on every sample, also those the model
misclassifies, and base-model attacks do not audit it (they attack the model, not
g). The defaults are the paper's: --n0 %d --n %d --alpha %g (100,000
noise samples per image); use a small --n to try it quickly. The summary adds g's
certified accuracy by L2 radius (0, 0.25, 0.5, ...; also --curve-csv, --plot).
The smoothing audit attacks g on every certified sample (PGD on the softmax
averaged over --smoothing-attack-noise noise draws, within the certified radius,
as SmoothAdv of Salman et al. 2019) and runs PREDICT (--n samples) at the point
found: a prediction of another class
contradicts the certificate, which should happen on at most about 2α of them
(counted in the summary, and a warning). It about doubles the time of smoothing;
--smoothing-attack-steps 0 turns it off.
`, defaultSigma, smoothing.DefaultN0, smoothing.DefaultN, smoothing.DefaultAlpha)
}

// checkSmoothingFlags checks the smoothing flags: their ranges, and that the
// smoothing-only flags come with --methods smoothing.
func checkSmoothingFlags(o options, fs *pflag.FlagSet) error {
	so := o.smoothing
	switch {
	case !(so.Sigma > 0) || math.IsInf(so.Sigma, 1):
		return cli.Usagef("--sigma %g: want a finite noise level > 0", so.Sigma)
	case so.N0 < 1:
		return cli.Usagef("--n0 %d: want at least 1 noise sample", so.N0)
	case so.N < 1:
		return cli.Usagef("--n %d: want at least 1 noise sample", so.N)
	case !(so.Alpha > 0 && so.Alpha < 1):
		return cli.Usagef("--alpha %g: want 0 < α < 1", so.Alpha)
	case so.Batch < 1:
		return cli.Usagef("--batch %d: want at least 1", so.Batch)
	case so.AttackSteps < 0:
		return cli.Usagef("--smoothing-attack-steps %d: want >= 0 (0: no smoothing audit)", so.AttackSteps)
	case so.AttackNoise < 1:
		return cli.Usagef("--smoothing-attack-noise %d: want at least 1", so.AttackNoise)
	}
	if !slices.Contains(o.methods, smoothingName) {
		for _, name := range []string{"sigma", "n0", "n", "alpha", "batch", "smoothing-attack-steps", "smoothing-attack-noise", "curve-csv"} {
			if fs.Changed(name) {
				return cli.Usagef("--%s is a flag of randomized smoothing: give --methods %s", name, smoothingName)
			}
		}
	}
	return nil
}

// smoothingMethod is randomized smoothing as a certification method of the
// pipeline (a pipeline.SmoothedMethod): CERTIFY of Cohen et al. on each sample, with
// the noise of sample i drawn from the sample's seed, so the answer does not depend
// on the number of cores or workers; then, on the samples it certifies, the
// smoothing audit (smoothAdv).
type smoothingMethod struct {
	o      smoothingOptions
	domain pipeline.Domain
}

func (smoothingMethod) Name() string { return smoothingName }

// Smoothing implements pipeline.SmoothedMethod.
func (m smoothingMethod) Smoothing() pipeline.SmoothingParams {
	return pipeline.SmoothingParams{Sigma: m.o.Sigma, N0: m.o.N0, N: m.o.N, Alpha: m.o.Alpha}
}

// The random streams of one sample, all of smoothing.SampleRand(Query.Seed, ·).
const (
	streamCertify = iota // CERTIFY's selection and estimation noise
	streamAttack         // the audit's EOT noise and random directions
	streamPredict        // PREDICT at the audit's point
)

// Certify runs CERTIFY on q.X. The sample is certified when g predicts q.Label
// with an L2 radius of at least q.Region.Radius (--radius, read as L2 whatever
// --norm). The margin is -Inf: smoothing proves nothing about the model's logits.
func (m smoothingMethod) Certify(ctx context.Context, model nets.Classifier, q pipeline.Query) (pipeline.Certificate, error) {
	if err := ctx.Err(); err != nil {
		return pipeline.Certificate{}, err
	}
	s := smoothing.Smoothed{Base: model, Sigma: m.o.Sigma, Batch: m.o.Batch}
	seed := uint64(q.Seed)
	c, err := m.o.cache.certify(q.Index, func() (smoothing.Certificate, error) {
		return s.Certify(q.X, m.o.N0, m.o.N, m.o.Alpha, smoothing.SampleRand(seed, streamCertify))
	})
	if err != nil {
		return pipeline.Certificate{}, err
	}
	rec := &pipeline.Smoothing{Prediction: c.Class, Abstain: c.Abstain, Radius: c.Radius}
	certified := !c.Abstain && c.Class == q.Label && c.Radius >= q.Region.Radius
	if certified && m.o.AttackSteps > 0 {
		if rec.Attack, err = m.o.cache.audit(q.Index, func() (*pipeline.SmoothingAttack, error) { return m.audit(ctx, s, q, c) }); err != nil {
			return pipeline.Certificate{}, fmt.Errorf("smoothing audit: %w", err)
		}
	}
	return pipeline.Certificate{Certified: certified, Margin: math.Inf(-1), Smoothing: rec}, nil
}

// audit attacks g around q.X within the certified radius c.Radius (smoothAdv) and
// runs PREDICT (n = --n, α = --alpha) at the point found, with noise of its own.
func (m smoothingMethod) audit(ctx context.Context, s smoothing.Smoothed, q pipeline.Query, c smoothing.Certificate) (*pipeline.SmoothingAttack, error) {
	d, ok := s.Base.(nets.Differentiable)
	if !ok {
		return nil, fmt.Errorf("the attack on the smoothed classifier needs the model's gradients, and this model (%T) gives only scores: use --smoothing-attack-steps 0", s.Base)
	}
	seed := uint64(q.Seed)
	a := smoothAdv{Sigma: m.o.Sigma, Eps: c.Radius, Steps: m.o.AttackSteps, Noise: m.o.AttackNoise,
		Lo: m.domain.Lo, Hi: m.domain.Hi}
	adv, err := a.run(ctx, d, q.X, q.Label, smoothing.SampleRand(seed, streamAttack))
	if err != nil {
		return nil, err
	}
	class, abstain, err := s.Predict(adv, m.o.N, m.o.Alpha, smoothing.SampleRand(seed, streamPredict))
	if err != nil {
		return nil, err
	}
	dist := 0.0
	for i, v := range adv.Data {
		dist += (v - q.X.Data[i]) * (v - q.X.Data[i])
	}
	return &pipeline.SmoothingAttack{Distance: math.Sqrt(dist), Prediction: class, Abstain: abstain,
		Changed: !abstain && class != c.Class}, nil
}

// smoothingWarnings is the warning of the smoothing audit when it changed the
// prediction of a certified sample.
func smoothingWarnings(rep *pipeline.Report) []string {
	a := rep.Summary.SmoothingAudit
	if a == nil || a.Changed == 0 {
		return nil
	}
	return []string{fmt.Sprintf("smoothing audit: at the attack point the smoothed classifier predicts another class on %d of %d certified samples (%.2f%%); "+
		"each certificate fails with probability at most α = %g (and PREDICT errs with at most α), so about %.2g expected: many more is a bug signal "+
		"(see samples[].smoothing.attack)", a.Changed, a.Attacked, 100*float64(a.Changed)/float64(a.Attacked), a.Alpha, 2*a.Alpha*float64(a.Attacked))}
}

// writeSmoothingFiles writes --curve-csv.
func writeSmoothingFiles(o smoothingOptions, rep *pipeline.Report, logf func(string, ...any)) error {
	for _, out := range []struct {
		path  string
		write func(*os.File) error
	}{
		{o.CurveCSV, func(f *os.File) error { return rep.WriteSmoothingCSV(f) }},
	} {
		if out.path == "" {
			continue
		}
		f, err := os.Create(out.path)
		if err != nil {
			return fmt.Errorf("certified accuracy curve: %w", err)
		}
		if err := out.write(f); err != nil {
			f.Close()
			return fmt.Errorf("certified accuracy curve %s: %w", out.path, err)
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("certified accuracy curve %s: %w", out.path, err)
		}
		logf("certified accuracy curve written to %s", out.path)
	}
	return nil
}
