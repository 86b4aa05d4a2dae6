package main

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/certify-dev/certify/attacks"
	"github.com/certify-dev/certify/bounds"
	"github.com/certify-dev/certify/nets"
	"github.com/certify-dev/certify/smoothing"
	"github.com/certify-dev/certify/verify"
)

// boundChunk is the number of images per call of IBP and CROWN: they parallelise
// over the images of a call, and CROWN's coefficient tensors grow with it.
const boundChunk = 100

// certify fills r.Certified with the member's certification methods at r's radius
// and returns the notes on them. An image counts as certified only if the model
// classifies it correctly and the method proves that no point of the region
// changes that (for smoothing: the smoothed classifier predicts the label with a
// certified L2 radius ≥ ε). robust is the per-image result of the attacks: a
// certified image an attack broke is a falsified certificate, a bug, reported.
func (e *memberEval) certify(ctx context.Context, r *Row, norm attacks.Norm, robust []bool) ([]string, error) {
	var notes []string
	want := func(m string) bool { return slices.Contains(e.m.Certified, m) }
	g, isGraph := e.model.(*nets.Graph)
	boundMethods := want(methodIBP) || want(methodCROWN) || want(methodLP)
	switch {
	case !boundMethods:
	case norm != attacks.LInf:
		notes = append(notes, "ibp, crown, lp: L∞ rows only")
	case !isGraph:
		notes = append(notes, fmt.Sprintf("ibp, crown, lp: n/a, a %T is not a plain graph", e.model))
	default:
		var crown []bool
		for _, m := range []string{methodIBP, methodCROWN} {
			if !want(m) && !(m == methodCROWN && want(methodLP)) {
				continue
			}
			start := time.Now()
			cert, err := e.boundCertified(g, r.Epsilon, m)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", m, err)
			}
			if m == methodCROWN {
				crown = cert
			}
			if want(m) {
				r.Certified[m] = fraction(cert)
				notes = append(notes, e.audit(m, cert, robust)...)
				e.s.Logf("  %s ε=%g %s certified: %.1f%% [%.1fs]", e.m.Defense, r.Epsilon, m, 100*r.Certified[m], time.Since(start).Seconds())
			}
		}
		if want(methodLP) {
			note, err := e.lp(ctx, g, r, crown, robust)
			if err != nil {
				return nil, fmt.Errorf("lp: %w", err)
			}
			notes = append(notes, note...)
		}
	}
	if want(methodSmoothing) {
		if norm != attacks.L2 {
			notes = append(notes, "smoothing: L2 rows only")
		} else if e.s.SmoothCount > 0 {
			note, err := e.smoothed(r)
			if err != nil {
				return nil, fmt.Errorf("smoothing: %w", err)
			}
			notes = append(notes, note)
		}
	}
	return notes, nil
}

// boundCertified runs IBP (bounds.SpecIBP) or CROWN (bounds.CROWN) on the L∞ box of
// radius eps around every image, clipped to [0,1], with the spec "the label wins"
// (bounds.RobustnessSpec): an image is certified when it is classified correctly
// and every row's proven lower bound is > 0, as verify.IBP and verify.CROWN decide.
func (e *memberEval) boundCertified(g *nets.Graph, eps float64, method string) ([]bool, error) {
	n := len(e.labels)
	per := e.x.Len() / n
	cert := make([]bool, n)
	for lo := 0; lo < n; lo += boundChunk {
		hi := min(lo+boundChunk, n)
		xc := nets.FromData(e.x.Data[lo*per:hi*per], append([]int{hi - lo}, e.x.Shape[1:]...)...)
		specs := make([]bounds.Spec, hi-lo)
		for i := range specs {
			var err error
			if specs[i], err = bounds.RobustnessSpec(e.classes, e.labels[lo+i]); err != nil {
				return nil, fmt.Errorf("image %d: %w", lo+i, err)
			}
		}
		box := bounds.LinfBox(xc, eps, 0, 1)
		var res *bounds.Result
		var err error
		if method == methodIBP {
			res, err = bounds.SpecIBP(g, box, specs, bounds.Options{})
		} else {
			res, err = bounds.CROWN(g, box, specs, bounds.Options{})
		}
		if err != nil {
			return nil, fmt.Errorf("images %d–%d: %w", lo, hi-1, err)
		}
		for i, low := range res.Lower {
			cert[lo+i] = e.correct[lo+i] && minOf(low) > 0
		}
	}
	return cert, nil
}

func minOf(v []float64) float64 {
	m := math.Inf(1)
	for _, x := range v {
		if math.IsNaN(x) {
			return math.NaN()
		}
		m = math.Min(m, x)
	}
	return m
}

// audit returns a note (and prints it) for every image method certifies that an
// attack broke: certified ⊆ empirically robust must hold, or a verifier is wrong.
func (e *memberEval) audit(method string, cert, robust []bool) []string {
	var bad []string
	for i, c := range cert {
		if c && !robust[i] {
			bad = append(bad, fmt.Sprint(i))
		}
	}
	if len(bad) == 0 {
		return nil
	}
	msg := fmt.Sprintf("FALSIFIED CERTIFICATES: %s certifies image(s) %s that an attack broke", method, strings.Join(bad, ", "))
	e.s.Logf("zoo: %s: %s", e.m.Defense, msg)
	return []string{msg}
}

// lp runs the LP verifier (verify.LP: the triangle relaxation on α-CROWN's
// intermediate bounds) on the first LPCount images, on networks without
// convolutions only (one LP per image: seconds each on an MLP, far more on a CNN).
// LP is never looser than CROWN (its margin is the larger of the LP's and
// α-CROWN's, which starts from CROWN's), so the images CROWN certifies count as
// LP-certified; and no verifier can certify an image an attack broke, so those
// are not run. The rest are.
func (e *memberEval) lp(ctx context.Context, g *nets.Graph, r *Row, crown, robust []bool) ([]string, error) {
	if e.s.LPCount == 0 {
		return nil, nil
	}
	for _, node := range g.Nodes {
		if node.Op.OpType() == "Conv" {
			return []string{"lp: not run on a convolutional network (too slow)"}, nil
		}
	}
	count := min(e.s.LPCount, len(e.labels))
	cert := make([]bool, count)
	var run []int
	for i := range cert {
		cert[i] = crown[i]
		if !crown[i] && robust[i] {
			run = append(run, i)
		}
	}
	start := time.Now()
	if len(run) > 0 {
		per := e.x.Len() / len(e.labels)
		sub := nets.NewTensor(append([]int{len(run)}, e.x.Shape[1:]...)...)
		specs := make([]bounds.Spec, len(run))
		for k, i := range run {
			copy(sub.Data[k*per:(k+1)*per], e.x.Data[i*per:(i+1)*per])
			var err error
			if specs[k], err = bounds.RobustnessSpec(e.classes, e.labels[i]); err != nil {
				return nil, fmt.Errorf("image %d: %w", i, err)
			}
		}
		res, err := verify.LP{}.VerifyBatch(ctx, g, verify.LinfRegion(sub, r.Epsilon, 0, 1), specs)
		if err != nil {
			return nil, err
		}
		for k, i := range run {
			cert[i] = res[k].Verdict == verify.Verified
		}
	}
	r.Certified[methodLP] = fraction(cert)
	if count != len(e.labels) {
		if r.CertifiedN == nil {
			r.CertifiedN = map[string]int{}
		}
		r.CertifiedN[methodLP] = count
	}
	e.s.Logf("  %s ε=%g lp certified: %.1f%% of %d (%d LPs) [%.1fs]", e.m.Defense, r.Epsilon, 100*r.Certified[methodLP], count, len(run), time.Since(start).Seconds())
	notes := e.audit(methodLP, cert, robust[:count])
	if count != len(e.labels) {
		notes = append(notes, fmt.Sprintf("lp on the first %d images", count))
	}
	return notes, nil
}

// smoothResult is CERTIFY's answer for one image.
type smoothResult struct {
	class  int // -1: abstained
	radius float64
}

// smoothed fills r.Certified["smoothing"]: the fraction of the first SmoothCount
// images on which the smoothed classifier g(x) = argmax_c P(f(x+δ) = c),
// δ ~ N(0, σ²I), f the member's model, returns the label with a certified L2
// radius ≥ ε (CERTIFY of Cohen, Rosenfeld & Kolter, ICML 2019; each certificate
// wrong with probability ≤ α). The certificates do not depend on ε and are
// computed once per member; image i draws its noise from
// smoothing.SampleRand(seed, i).
func (e *memberEval) smoothed(r *Row) (string, error) {
	count := min(e.s.SmoothCount, len(e.labels))
	if e.smooth == nil {
		start := time.Now()
		s := smoothing.Smoothed{Base: e.model, Sigma: e.s.Sigma}
		e.smooth = make([]smoothResult, count)
		for i := range e.smooth {
			c, err := s.Certify(e.x.Row(i), e.s.SmoothN0, e.s.SmoothN, e.s.SmoothAlpha, smoothing.SampleRand(e.s.Seed, i))
			if err != nil {
				return "", fmt.Errorf("image %d: %w", i, err)
			}
			e.smooth[i] = smoothResult{class: c.Class, radius: c.Radius}
		}
		e.s.Logf("  %s smoothing: %d certificates (σ=%g, n=%d) [%.1fs]", e.m.Defense, count, e.s.Sigma, e.s.SmoothN, time.Since(start).Seconds())
	}
	cert := make([]bool, count)
	for i, c := range e.smooth {
		cert[i] = c.class == e.labels[i] && c.radius >= r.Epsilon
	}
	r.Certified[methodSmoothing] = fraction(cert)
	if count != len(e.labels) {
		if r.CertifiedN == nil {
			r.CertifiedN = map[string]int{}
		}
		r.CertifiedN[methodSmoothing] = count
	}
	return fmt.Sprintf("smoothing certifies the smoothed classifier (σ = %g) on the first %d images; the attacks attack the model itself", e.s.Sigma, count), nil
}
