package pipeline

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"strconv"
)

// CurvePoint is one point of the certified accuracy curve of a smoothed
// classifier: the fraction of the run's samples certified at L2 radius Radius.
type CurvePoint struct {
	Radius   float64 `json:"radius"`
	Accuracy float64 `json:"accuracy"`
}

// CurveStep is the spacing of the radii of the certified accuracy curve, as in
// Table 1 of Cohen, Rosenfeld & Kolter (2019): 0, 0.25, 0.5, ...
const CurveStep = 0.25

// curveMinRadius is the least radius the curve reaches (Table 1 of Cohen et al.
// goes from 0 to 1.5 on CIFAR-10).
const curveMinRadius = 1.5

// smoothCertifiedAt reports whether sample s is certified by randomized smoothing at
// L2 radius r: the smoothed classifier predicts its label (no abstention) with a
// certified radius of at least r.
func smoothCertifiedAt(s *Sample, r float64) bool {
	sm := s.Smoothing
	return sm != nil && !sm.Abstain && sm.Prediction == s.Label && sm.Radius >= r
}

// CurveRadii returns the radii of the curve: k·CurveStep for k = 0, 1, ... up to
// the first radius above every certified radius of the samples (where the curve is
// 0), and at least to 1.5.
func CurveRadii(samples []Sample) []float64 {
	top := 0.0
	for i := range samples {
		if smoothCertifiedAt(&samples[i], 0) {
			top = math.Max(top, samples[i].Smoothing.Radius)
		}
	}
	k := max(int(math.Round(curveMinRadius/CurveStep)), int(math.Floor(top/CurveStep))+1)
	radii := make([]float64, k+1)
	for i := range radii {
		radii[i] = float64(i) * CurveStep
	}
	return radii
}

// SmoothingCurve returns the certified accuracy of the smoothed classifier at each
// radius r: the fraction of all samples (N, the denominator of every accuracy of
// the report) whose smoothed prediction is the label and whose certified L2 radius
// is at least r. This is the "approximate certified test set accuracy" of Cohen et
// al. (2019), Section 4 (Figure 1, Table 1); samples without a smoothing record
// count as not certified.
func SmoothingCurve(samples []Sample, radii []float64) []CurvePoint {
	out := make([]CurvePoint, len(radii))
	for j, r := range radii {
		out[j].Radius = r
		if len(samples) == 0 {
			continue
		}
		c := countTrue(samples, func(s *Sample) bool { return smoothCertifiedAt(s, r) })
		out[j].Accuracy = float64(c) / float64(len(samples))
	}
	return out
}

// WriteSmoothingCSV writes the certified accuracy curve of the summary as CSV with
// the header radius,certified_accuracy, one row per radius. It is an error when
// smoothing did not run.
func (r *Report) WriteSmoothingCSV(w io.Writer) error {
	if r.Summary.SmoothingCurve == nil {
		return fmt.Errorf("certified accuracy curve: randomized smoothing did not run")
	}
	cw := csv.NewWriter(w)
	if err := cw.Write([]string{"radius", "certified_accuracy"}); err != nil {
		return err
	}
	for _, p := range r.Summary.SmoothingCurve {
		row := []string{strconv.FormatFloat(p.Radius, 'g', -1, 64), strconv.FormatFloat(p.Accuracy, 'g', -1, 64)}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// writeSmoothingCurve renders the certified accuracy curve as a table of radius,
// certified accuracy and count, nothing when smoothing did not run.
func (r *Report) writeSmoothingCurve(w io.Writer) error {
	curve := r.Summary.SmoothingCurve
	if curve == nil {
		return nil
	}
	n := len(r.Samples)
	title := "randomized smoothing: certified accuracy of the smoothed classifier by L2 radius"
	if p := r.Smoothing; p != nil {
		title += fmt.Sprintf(" (σ = %g, n0 = %d, n = %d, α = %g)", p.Sigma, p.N0, p.N, p.Alpha)
	}
	if _, err := fmt.Fprintln(w, title+":"); err != nil {
		return err
	}
	t := newTable(w)
	t.Header("L2 RADIUS", "CERTIFIED ACCURACY")
	for _, p := range curve {
		c := int(math.Round(p.Accuracy * float64(n)))
		if err := t.Append([]string{strconv.FormatFloat(p.Radius, 'f', 2, 64), fmt.Sprintf("%.2f%% (%d/%d)", 100*p.Accuracy, c, n)}); err != nil {
			return fmt.Errorf("certified accuracy curve: %w", err)
		}
	}
	if err := t.Render(); err != nil {
		return fmt.Errorf("certified accuracy curve: %w", err)
	}
	return nil
}
