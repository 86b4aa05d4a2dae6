package attacks

import (
	"fmt"
	"math"
	"strings"

	"github.com/certify-dev/certify/nets"
)

// Warning is a reason to distrust an empirical robustness evaluation: a property of
// the model or of the attack results under which attacks are known to fail silently
// and robust accuracy to be overestimated. The checks follow AutoAttack's flags
// (Croce & Hein, "Reliable evaluation of adversarial robustness with an ensemble of
// diverse parameter-free attacks", ICML 2020; fra31/auto-attack, flags_doc.md) and the
// gradient-masking signs of Athalye, Carlini & Wagner (ICML 2018, Section 3.1).
type Warning struct {
	// Check names the check that fired: "probabilities", "non-finite-outputs",
	// "no-gradients", "zero-gradients", "non-finite-gradients", "randomness" or
	// "gradient-masking".
	Check string
	// Message says what was seen and what to do about it.
	Message string
}

func (w Warning) String() string { return w.Check + ": " + w.Message }

// AutoAttack's tolerances: of the probability check (values in [−tol, 1+tol], row
// sums within tol of 1) and of the randomness check (on L2-normalised logits).
const (
	sanityProbTol = 1e-5
	sanityRandTol = 1e-4
)

// Sanity runs the checks that need only the model and a sample set:
// SanityProbabilities, SanityGradients and SanityDeterminism (5 calls, as
// AutoAttack). It returns every warning raised; an error means the model could not
// be evaluated at all.
func Sanity(m nets.Classifier, x *nets.Tensor, labels []int) ([]Warning, error) {
	var all []Warning
	w, err := SanityProbabilities(m, x)
	if err != nil {
		return nil, err
	}
	all = append(all, w...)
	w, err = SanityGradients(m, x, labels)
	if err != nil {
		return nil, err
	}
	all = append(all, w...)
	w, err = SanityDeterminism(m, x, labels, 5)
	if err != nil {
		return nil, err
	}
	return append(all, w...), nil
}

func sanityLogits(m nets.Classifier, x *nets.Tensor) (*nets.Tensor, error) {
	if x == nil || x.Rank() < 2 || x.Shape[0] == 0 {
		return nil, fmt.Errorf("sanity: input must be a non-empty batch, got shape %v", minNormShape(x))
	}
	z, err := m.Logits(x)
	if err != nil {
		return nil, fmt.Errorf("sanity: %w", err)
	}
	if z.Rank() != 2 || z.Shape[0] != x.Shape[0] {
		return nil, fmt.Errorf("sanity: model returned logits of shape %v for %d rows", z.Shape, x.Shape[0])
	}
	return z, nil
}

// SanityProbabilities flags a model whose outputs look like probabilities — every
// value in [0,1] and every row summing to 1, within 1e-5 — instead of logits
// (AutoAttack's check_range_output). Attacks built on logits (margin, DLR, C&W,
// DeepFool) then see a squashed, often saturated signal, and cross-entropy is applied
// to a softmax twice: their gradients vanish. Non-finite outputs are flagged too.
func SanityProbabilities(m nets.Classifier, x *nets.Tensor) ([]Warning, error) {
	z, err := sanityLogits(m, x)
	if err != nil {
		return nil, err
	}
	if z.HasNaN() {
		return []Warning{{Check: "non-finite-outputs", Message: "the model outputs NaN or Inf on clean inputs; every attack result on it is meaningless"}}, nil
	}
	k := z.Shape[1]
	for i := 0; i < z.Shape[0]; i++ {
		sum := 0.0
		for _, v := range z.Data[i*k : (i+1)*k] {
			if v < -sanityProbTol || v > 1+sanityProbTol {
				return nil, nil
			}
			sum += v
		}
		if math.Abs(sum-1) > sanityProbTol {
			return nil, nil
		}
	}
	return []Warning{{Check: "probabilities", Message: fmt.Sprintf(
		"the outputs on all %d samples lie in [0,1] and sum to 1: the model seems to output probabilities, not logits; "+
			"remove the final softmax so that gradient-based attacks do not face vanishing gradients", z.Shape[0])}}, nil
}

// SanityGradients flags zero and non-finite input gradients of the cross-entropy loss
// (AutoAttack's check_zero_gradients, which fires on any row with a zero gradient):
// gradient-based attacks cannot move from such points, so their failure says
// nothing about robustness — the typical symptom of a non-differentiable or
// saturating defence (shattered or vanishing gradients). A model without gradients
// gets a warning that white-box attacks cannot run on it.
func SanityGradients(m nets.Classifier, x *nets.Tensor, labels []int) ([]Warning, error) {
	if x == nil || x.Rank() < 2 || x.Shape[0] == 0 || x.Shape[0] != len(labels) {
		return nil, fmt.Errorf("sanity: batch of shape %v with %d labels", minNormShape(x), len(labels))
	}
	d, ok := m.(nets.Differentiable)
	if !ok {
		return []Warning{{Check: "no-gradients", Message: fmt.Sprintf(
			"the model (%T) exposes no gradients: white-box attacks cannot run, and black-box attacks alone give a weak upper bound on robustness; wrap it with BPDA/EOT if its parts are differentiable", m)}}, nil
	}
	_, g, err := d.LossGrad(x, labels, nets.CrossEntropy{})
	if err != nil {
		return nil, fmt.Errorf("sanity: %w", err)
	}
	n := x.Shape[0]
	if g == nil || g.Len() != x.Len() {
		return nil, fmt.Errorf("sanity: gradient of %d values for a batch of %d", minNormGradLen(g), x.Len())
	}
	per := x.Len() / n
	var zero, bad []int
	for i := 0; i < n; i++ {
		l1, finite := 0.0, true
		for _, v := range g.Data[i*per : (i+1)*per] {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				finite = false
			}
			l1 += math.Abs(v)
		}
		switch {
		case !finite:
			bad = append(bad, i)
		case l1 == 0:
			zero = append(zero, i)
		}
	}
	var out []Warning
	if len(bad) > 0 {
		out = append(out, Warning{Check: "non-finite-gradients", Message: fmt.Sprintf(
			"the input gradient is NaN or Inf on %d of %d samples (%s): gradient-based attacks cannot use it", len(bad), n, sanityRows(bad))})
	}
	if len(zero) > 0 {
		all := ""
		if len(zero) == n {
			all = " All of them: typical of a non-differentiable preprocessing such as quantisation (use BPDA)."
		}
		out = append(out, Warning{Check: "zero-gradients", Message: fmt.Sprintf(
			"the input gradient is exactly zero on %d of %d samples (%s); gradient-based attacks cannot move from these points, so their failure there does not show robustness.%s",
			len(zero), n, sanityRows(zero), all)})
	}
	return out, nil
}

// SanityDeterminism flags a randomised model: calls ≥ 2 evaluations of the same batch
// whose predictions differ, or whose L2-normalised logits differ by more than 1e-4
// for some row (AutoAttack's check_randomized, which uses 5 calls). Attacks on a
// randomised model optimise against one draw and are checked against another; use
// EOT to attack the expectation.
func SanityDeterminism(m nets.Classifier, x *nets.Tensor, labels []int, calls int) ([]Warning, error) {
	if calls < 2 {
		return nil, fmt.Errorf("sanity: %d calls (want at least 2)", calls)
	}
	if x == nil || x.Rank() < 2 || x.Shape[0] != len(labels) {
		return nil, fmt.Errorf("sanity: batch of shape %v with %d labels", minNormShape(x), len(labels))
	}
	first, err := sanityLogits(m, x)
	if err != nil {
		return nil, err
	}
	n, k := first.Shape[0], first.Shape[1]
	unit := func(z []float64) []float64 {
		s := 0.0
		for _, v := range z {
			s += v * v
		}
		s = math.Sqrt(s) + 1e-10
		out := make([]float64, len(z))
		for j, v := range z {
			out[j] = v / s
		}
		return out
	}
	pred0 := first.Argmax()
	maxDiff, changed := 0.0, 0
	for c := 1; c < calls; c++ {
		z, err := sanityLogits(m, x)
		if err != nil {
			return nil, err
		}
		if z.Shape[1] != k {
			return nil, fmt.Errorf("sanity: %d and %d classes in two calls", k, z.Shape[1])
		}
		pred := z.Argmax()
		for i := 0; i < n; i++ {
			if pred[i] != pred0[i] {
				changed++
			}
			a, b := unit(first.Data[i*k:(i+1)*k]), unit(z.Data[i*k:(i+1)*k])
			d := 0.0
			for j := range a {
				d += (a[j] - b[j]) * (a[j] - b[j])
			}
			if d = math.Sqrt(d); d > maxDiff || math.IsNaN(d) {
				maxDiff = d
			}
		}
	}
	if changed == 0 && !(maxDiff > sanityRandTol) {
		return nil, nil
	}
	return []Warning{{Check: "randomness", Message: fmt.Sprintf(
		"%d identical calls on %d samples disagree (%d predictions changed, normalised logits differ by up to %.3g): the model seems randomised; "+
			"attack its expectation with EOT, and count a sample robust only if it stays robust over many draws", calls, n, changed, maxDiff)}}, nil
}

// SanityGradientMasking compares the samples broken by the white-box attacks with
// those broken by the black-box attacks (one bool per sample, true = broken). A
// black-box attack, which sees only scores, should never beat attacks that see the
// gradients; when it breaks samples they missed, the gradients are likely masked
// (Athalye et al. 2018, Section 3.1, "black-box attacks are better than white-box";
// AutoAttack's check_square_sr), and the white-box results on the other samples are
// not trustworthy either.
func SanityGradientMasking(whiteBox, blackBox []bool) ([]Warning, error) {
	if len(whiteBox) != len(blackBox) {
		return nil, fmt.Errorf("sanity: %d white-box and %d black-box results", len(whiteBox), len(blackBox))
	}
	var rows []int
	for i := range whiteBox {
		if blackBox[i] && !whiteBox[i] {
			rows = append(rows, i)
		}
	}
	if len(rows) == 0 {
		return nil, nil
	}
	return []Warning{{Check: "gradient-masking", Message: fmt.Sprintf(
		"black-box attacks broke %d of %d samples (%.1f%%) that the white-box attacks did not (%s): the gradients are likely masked or obfuscated; "+
			"run adaptive attacks (BPDA for non-differentiable parts, EOT for randomness, more steps and restarts) before trusting the robust accuracy",
		len(rows), len(whiteBox), 100*float64(len(rows))/float64(len(whiteBox)), sanityRows(rows))}}, nil
}

// sanityRows lists sample indices for a message, the first few only.
func sanityRows(rows []int) string {
	const show = 8
	parts := make([]string, 0, show+1)
	for i, r := range rows {
		if i == show {
			parts = append(parts, "…")
			break
		}
		parts = append(parts, fmt.Sprint(r))
	}
	return "samples " + strings.Join(parts, ", ")
}
