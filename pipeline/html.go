package pipeline

import (
	"bytes"
	_ "embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// HTMLOptions say what WriteHTML shows besides the report, which does not keep
// the inputs.
type HTMLOptions struct {
	// Inputs has the input values of the samples to show in the gallery, by
	// sample index (Sample.Index, the row in the data file), each in Shape.
	Inputs map[int][]float64
	// Shape is the input shape of one sample: [C,H,W] with C = 1 (grey) or 3
	// (RGB), [H,W], or flat [n] with n a square (shown as √n×√n); leading 1s
	// are dropped. Inputs of another shape are summarised in numbers.
	Shape []int
	// Gallery is the most samples the gallery shows; 0 means DefaultGallery.
	Gallery int
	// Title is the page's title; empty means "certify report: " and the model's
	// file name.
	Title string
}

// DefaultGallery is the number of samples the HTML gallery shows by default.
const DefaultGallery = 24

// galleryMinPixels is the size up to which gallery images are scaled (by an
// integer factor, nearest neighbour, so that pixels stay sharp): 28×28 MNIST
// digits become 112×112.
const galleryMinPixels = 112

//go:embed html_template.html
var htmlTemplateText string

// WriteHTML writes the report as one self-contained HTML page, to be read in a
// browser and archived with the run: the run record (model and data with their
// SHA-256, radii, norm, domain, seed, tool, command line, time, parameters), the
// warnings, the summary by radius (the terminal's sweep table) with each radius's
// detailed summary, the accuracy-versus-radius figure (RadiusPlot), the smoothed
// classifier's curve when smoothing ran (SmoothingPlot), and a gallery of samples
// (see galleryCards). Images are inline PNG data: URIs and the styles inline, so
// the page needs no other file, no network and no JavaScript. All text is
// escaped by html/template. The page is built whole before it is written, so an
// error writes nothing.
func (r *Report) WriteHTML(w io.Writer, o HTMLOptions) error {
	if o.Gallery < 0 {
		return fmt.Errorf("html: gallery of %d samples: want >= 0 (0: %d)", o.Gallery, DefaultGallery)
	}
	if o.Gallery == 0 {
		o.Gallery = DefaultGallery
	}
	page, err := r.htmlPage(o)
	if err != nil {
		return err
	}
	t, err := template.New("report").Parse(htmlTemplateText)
	if err != nil {
		return fmt.Errorf("html: template html_template.html: %w", err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, page); err != nil {
		return fmt.Errorf("html: %w", err)
	}
	if _, err := w.Write(b.Bytes()); err != nil {
		return fmt.Errorf("html: %w", err)
	}
	return nil
}

// htmlPage is the data of html_template.html.
type htmlPage struct {
	Title, Model, Threat string
	Falsified            int // falsified certificates over all radii
	Record, Parameters   []htmlPair
	Warnings             []string
	SweepHead            []string
	SweepRows            []htmlRow
	Details              []htmlDetail
	RadiusPlot           htmlImage
	SmoothingPlot        *htmlImage
	Gallery              *htmlGallery
}

type htmlPair struct{ Name, Value string }

type htmlRow struct {
	Cells []string
	Bad   bool // a falsified certificate: shown red
}

type htmlDetail struct {
	Radius string
	Open   bool
	Rows   []htmlRow
}

// htmlImage is an inline image: a data: URI of a PNG of Width×Height pixels,
// or, when URI is empty, the Caption alone (an input that is no image).
type htmlImage struct {
	Title         string
	URI           template.URL
	Width, Height int
	Caption       string
}

// Src is the image's src attribute, written whole: html/template would escape
// each '+' of the base64 text as "&#43;" in a URL attribute, making the page
// larger and its URIs harder to extract. The URI is base64 text from pngURI, so
// it needs no escaping.
func (im htmlImage) Src() template.HTMLAttr {
	return template.HTMLAttr(`src="` + string(im.URI) + `"`)
}

type htmlGallery struct {
	Caption string
	Cards   []htmlCard
}

type htmlCard struct {
	Index, Label, Predicted int
	Correct, Falsified      bool
	Tags                    []string
	Images                  []htmlImage
	Adversarial             string
	Verdicts                []htmlVerdict
	Attacks                 []htmlPair
	Smoothing               string
}

type htmlVerdict struct{ Method, Verdict, Class, Margin string }

// htmlPage assembles the page's data.
func (r *Report) htmlPage(o HTMLOptions) (*htmlPage, error) {
	runs := r.Runs()
	p := &htmlPage{Title: o.Title, Model: r.Model, Warnings: r.Summary.Warnings}
	if p.Title == "" {
		p.Title = "certify report: " + filepath.Base(r.Model)
	}
	p.Threat = fmt.Sprintf("%s %s, domain [%g, %g], %d samples", r.Norm, radiiText(runs), r.Domain[0], r.Domain[1], runs[0].Summary.N)
	p.Record = r.htmlRecord(runs)
	keys := make([]string, 0, len(r.Parameters))
	for k := range r.Parameters {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p.Parameters = append(p.Parameters, htmlPair{k, r.Parameters[k]})
	}

	head, rows := r.sweepRows(false)
	falsifiedCol := -1
	for i, h := range head {
		p.SweepHead = append(p.SweepHead, fmt.Sprint(h))
		if h == "falsified" {
			falsifiedCol = i
		}
	}
	for _, row := range rows {
		p.SweepRows = append(p.SweepRows, htmlRow{Cells: row, Bad: falsifiedCol >= 0 && row[falsifiedCol] != "0"})
	}
	for _, run := range runs {
		if f := run.Summary.FalsifiedCertificates; f != nil {
			p.Falsified += *f
		}
		d := htmlDetail{Radius: strconv.FormatFloat(run.Radius, 'g', -1, 64), Open: len(runs) == 1}
		for _, row := range r.at(run).summaryRows(false) {
			d.Rows = append(d.Rows, htmlRow{Cells: row, Bad: strings.Contains(row[1], "UNSOUND")})
		}
		p.Details = append(p.Details, d)
	}

	var b bytes.Buffer
	if err := r.WriteRadiusPNG(&b); err != nil {
		return nil, fmt.Errorf("html: %w", err)
	}
	p.RadiusPlot = htmlImage{Title: "accuracy versus radius", URI: pngURI(b.Bytes()),
		Width: int(CurvePlotWidth.Dots(96)), Height: int(CurvePlotHeight.Dots(96)),
		Caption: "Certified accuracy per method and empirical accuracy (no attack found an adversarial example) at each radius; " +
			"the clean accuracy as a dashed line" + smoothingNote(r) + "."}
	if r.Smoothing != nil && r.Summary.SmoothingCurve != nil {
		b.Reset()
		if err := r.WriteSmoothingPNG(&b); err != nil {
			return nil, fmt.Errorf("html: %w", err)
		}
		p.SmoothingPlot = &htmlImage{Title: "randomized smoothing", URI: pngURI(b.Bytes()),
			Width: int(CurvePlotWidth.Dots(96)), Height: int(CurvePlotHeight.Dots(96)),
			Caption: fmt.Sprintf("Certified accuracy of the smoothed classifier (σ = %g, n0 = %d, n = %d, α = %g) by L2 radius, "+
				"as Figure 1 of Cohen, Rosenfeld & Kolter (2019): the fraction of samples whose smoothed prediction is the label with at least that certified radius.",
				r.Smoothing.Sigma, r.Smoothing.N0, r.Smoothing.N, r.Smoothing.Alpha)}
	}
	p.Gallery = r.htmlGallery(o)
	return p, nil
}

func smoothingNote(r *Report) string {
	if r.Summary.SmoothingCurve == nil {
		return ""
	}
	if r.Norm == L2 {
		return "; and the smoothed classifier's certified accuracy (a curve of one run, not per radius)"
	}
	return "; and the smoothed classifier's certified accuracy at L2 radius (its certificate is an L2 ball, whatever the norm of the run)"
}

// radiiText is "radius 0.1" or "radii 0.01, 0.02, 0.05" in the sweep's order.
func radiiText(runs []RadiusRun) string {
	radii := make([]string, len(runs))
	for i, run := range runs {
		radii[i] = strconv.FormatFloat(run.Radius, 'g', -1, 64)
	}
	if len(radii) == 1 {
		return "radius " + radii[0]
	}
	return "radii " + strings.Join(radii, ", ")
}

// htmlRecord is the run record: what `certify replay` needs to re-run the report.
func (r *Report) htmlRecord(runs []RadiusRun) []htmlPair {
	withSHA := func(path, sha string) string {
		if sha == "" {
			return path
		}
		return path + " (sha256 " + sha + ")"
	}
	rec := []htmlPair{{"model", r.Model}, {"model_sha256", r.ModelSHA256}}
	if r.Data != "" {
		rec = append(rec, htmlPair{"data", withSHA(r.Data, r.DataSHA256)})
	}
	if r.Labels != "" {
		rec = append(rec, htmlPair{"labels", withSHA(r.Labels, r.LabelsSHA256)})
	}
	name := "radius"
	if len(runs) > 1 {
		name = "radii"
	}
	rec = append(rec,
		htmlPair{name, strings.TrimPrefix(strings.TrimPrefix(radiiText(runs), "radii "), "radius ")},
		htmlPair{"norm", string(r.Norm)},
		htmlPair{"domain", fmt.Sprintf("[%g, %g]", r.Domain[0], r.Domain[1])},
		htmlPair{"seed", strconv.FormatInt(r.Seed, 10)},
		htmlPair{"samples", strconv.Itoa(runs[0].Summary.N)},
		htmlPair{"methods", strings.Join(r.Methods, ", ")},
		htmlPair{"attacks", strings.Join(r.Attacks, ", ")})
	if sp := r.Smoothing; sp != nil {
		rec = append(rec, htmlPair{"smoothing", fmt.Sprintf("method %s, σ = %g, n0 = %d, n = %d, α = %g", sp.Method, sp.Sigma, sp.N0, sp.N, sp.Alpha)})
	}
	rec = append(rec, htmlPair{"tool", r.Tool}, htmlPair{"command", shellJoin(r.Command)}, htmlPair{"time", r.Time})
	return rec
}

// shellJoin writes a command line as a POSIX shell would read it back: each
// argument with characters other than letters, digits and -_./=:,+@% in single
// quotes.
func shellJoin(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		safe := a != ""
		for _, c := range a {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("-_./=:,+@%", c)) {
				safe = false
				break
			}
		}
		if safe {
			out[i] = a
		} else {
			out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(out, " ")
}

func pngURI(b []byte) template.URL {
	// The URI is built here from PNG bytes, never from the report's text, so
	// it is safe to mark as a URL for html/template.
	return template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(b))
}

// galleryRun is the run the gallery shows: the one of largest radius with an
// adversarial example kept (Sample.Adversarial), else with one found, else the
// largest radius; and whether it has any adversarial example.
func (r *Report) galleryRun() (RadiusRun, bool) {
	runs := r.sortedRuns()
	for _, has := range []func(*Sample) bool{
		func(s *Sample) bool { return s.Adversarial != nil },
		attacked,
	} {
		for i := len(runs) - 1; i >= 0; i-- {
			if countTrue(runs[i].Samples, has) > 0 {
				return runs[i], true
			}
		}
	}
	return runs[len(runs)-1], false
}

// attacked reports whether an attack found an adversarial example of s.
func attacked(s *Sample) bool {
	if s.Adversarial != nil {
		return true
	}
	for _, found := range s.Attacks {
		if found {
			return true
		}
	}
	return false
}

// galleryRank orders the gallery by interest: falsified certificates (soundness
// bugs) first, then samples with an adversarial example, then certified ones,
// then the rest.
func galleryRank(s *Sample) int {
	switch {
	case len(s.Falsified) > 0:
		return 0
	case attacked(s):
		return 1
	}
	for _, ok := range s.Certified {
		if ok {
			return 2
		}
	}
	return 3
}

// gallerySamples picks up to limit samples of samples, by galleryRank, then index.
func gallerySamples(samples []Sample, limit int) []*Sample {
	out := make([]*Sample, len(samples))
	for i := range samples {
		out[i] = &samples[i]
	}
	slices.SortStableFunc(out, func(a, b *Sample) int {
		if ra, rb := galleryRank(a), galleryRank(b); ra != rb {
			return ra - rb
		}
		return a.Index - b.Index
	})
	return out[:min(limit, len(out))]
}

// htmlGallery is the gallery of the run galleryRun picks: per sample (see
// gallerySamples) the original, the adversarial example and the perturbation,
// the attack, and each method's verdict and margin.
func (r *Report) htmlGallery(o HTMLOptions) *htmlGallery {
	run, adv := r.galleryRun()
	picked := gallerySamples(run.Samples, o.Gallery)
	if len(picked) == 0 {
		return nil
	}
	lo, hi := 0.0, 1.0
	if r.Domain[0] < r.Domain[1] {
		lo, hi = r.Domain[0], r.Domain[1]
	}
	g := &htmlGallery{}
	g.Caption = fmt.Sprintf("%d of %d samples at %s radius %g", len(picked), len(run.Samples), r.Norm, run.Radius)
	if len(r.Runs()) > 1 {
		if adv {
			g.Caption += " (the largest radius of the sweep with adversarial examples)"
		} else {
			g.Caption += " (the largest radius of the sweep; no attack found an adversarial example)"
		}
	}
	g.Caption += fmt.Sprintf(": samples with a falsified certificate first, then those with an adversarial example, then certified ones, then the rest, by index. "+
		"Pixel values are shown from %g (black) to %g (white), clipped.", lo, hi)
	sm := r.smoothingMethod()
	for _, s := range picked {
		c := htmlCard{Index: s.Index, Label: s.Label, Predicted: s.Predicted, Correct: s.Correct(), Falsified: len(s.Falsified) > 0}
		switch galleryRank(s) {
		case 0:
			c.Tags = []string{"falsified"}
		case 1:
			c.Tags = []string{"adversarial"}
		case 2:
			c.Tags = []string{"certified"}
		}
		c.Images = sampleImages(s, o, lo, hi, run.Radius)
		switch a := s.Adversarial; {
		case a != nil:
			c.Adversarial = fmt.Sprintf("Adversarial example found by %s: the model predicts %d (label %d).", a.Attack, a.Predicted, s.Label)
		case attacked(s):
			var by []string
			for _, name := range r.Attacks {
				if s.Attacks[name] {
					by = append(by, name)
				}
			}
			c.Adversarial = "Adversarial example found by " + strings.Join(by, ", ") + " (not kept in the report)."
		}
		for _, m := range r.Methods {
			text, class := verdict(s, m, m == sm)
			margin := "-"
			if v, ok := s.Margins[m]; ok {
				margin = strconv.FormatFloat(v, 'f', 4, 64)
			}
			c.Verdicts = append(c.Verdicts, htmlVerdict{Method: m, Verdict: text, Class: class, Margin: margin})
		}
		for _, a := range r.Attacks {
			res := "not run"
			if found, ran := s.Attacks[a]; ran {
				res = "nothing found"
				if found {
					res = "adversarial example found"
				}
			}
			if why := s.Unknown[a]; why != "" {
				res = "unknown: " + why
			}
			c.Attacks = append(c.Attacks, htmlPair{a, res})
		}
		if x := s.Smoothing; x != nil {
			if x.Abstain {
				c.Smoothing = "abstains"
			} else {
				c.Smoothing = fmt.Sprintf("predicts %d, certified L2 radius %.4f", x.Prediction, x.Radius)
			}
		}
		g.Cards = append(g.Cards, c)
	}
	return g
}

// verdict is a method's answer for a sample, in words, and its CSS class.
func verdict(s *Sample, m string, smoothing bool) (string, string) {
	ok, ran := s.Certified[m]
	switch {
	case slices.Contains(s.Falsified, m):
		return "FALSIFIED: certified, but an attack found an adversarial example", "bad"
	case slices.Contains(s.Refuted, m):
		return "refuted: counterexample found", "refuted"
	case s.Unknown[m] != "":
		return "unknown: " + s.Unknown[m], "unknown"
	case !ran:
		return "not run", "na"
	case ok:
		return "certified", "ok"
	case !s.Correct() && !smoothing:
		return "not certified (misclassified)", "na"
	}
	return "not certified", "no"
}

// sampleImages renders the original, the adversarial example and the
// perturbation of s, as far as they are known.
func sampleImages(s *Sample, o HTMLOptions, lo, hi, radius float64) []htmlImage {
	x, hasX := o.Inputs[s.Index]
	var out []htmlImage
	if hasX {
		out = append(out, inputImage("original", x, o.Shape, lo, hi))
	} else {
		out = append(out, htmlImage{Title: "original", Caption: "input not given"})
	}
	a := s.Adversarial
	if a == nil {
		return out
	}
	out = append(out, inputImage(fmt.Sprintf("adversarial (%s → %d)", a.Attack, a.Predicted), a.X, o.Shape, lo, hi))
	if !hasX {
		return out
	}
	if len(x) != len(a.X) {
		return append(out, htmlImage{Title: "perturbation", Caption: fmt.Sprintf("original has %d values, adversarial %d", len(x), len(a.X))})
	}
	d := make([]float64, len(x))
	linf, l2 := 0.0, 0.0
	for i := range x {
		d[i] = a.X[i] - x[i]
		linf = math.Max(linf, math.Abs(d[i]))
		l2 += d[i] * d[i]
	}
	l2 = math.Sqrt(l2)
	norms := fmt.Sprintf("‖δ‖∞ = %.4g, ‖δ‖₂ = %.4g (radius %g)", linf, l2, radius)
	img := htmlImage{Title: "perturbation"}
	if linf == 0 {
		img.Caption = "none, " + norms
	} else {
		img.Caption = fmt.Sprintf("δ = adversarial − original; grey = 0, black = −%.3g, white = +%.3g; %s", linf, linf, norms)
	}
	if l, ok := imageLayout(o.Shape, len(d)); ok {
		// Symmetric scale: δ ∈ [−‖δ‖∞, ‖δ‖∞] maps to [0, 1], 0 to mid grey.
		s := linf
		if s == 0 {
			s = 1
		}
		img.URI, img.Width, img.Height = renderPNG(d, l, -s, s)
	} else {
		img.Caption += "; " + numbersSummary(d)
	}
	return append(out, img)
}

// inputImage renders input values as an image, or summarises them in numbers
// when they are no image of a known layout.
func inputImage(title string, x []float64, shape []int, lo, hi float64) htmlImage {
	img := htmlImage{Title: title}
	l, ok := imageLayout(shape, len(x))
	if !ok {
		img.Caption = numbersSummary(x)
		return img
	}
	img.URI, img.Width, img.Height = renderPNG(x, l, lo, hi)
	return img
}

func numbersSummary(x []float64) string {
	if len(x) == 0 {
		return "no values"
	}
	lo, hi, sum := math.Inf(1), math.Inf(-1), 0.0
	for _, v := range x {
		lo, hi, sum = math.Min(lo, v), math.Max(hi, v), sum+v
	}
	return fmt.Sprintf("%d values (no image shape): min %.4g, max %.4g, mean %.4g", len(x), lo, hi, sum/float64(len(x)))
}

// layout is an image's channels (1 or 3), height and width.
type layout struct{ c, h, w int }

// imageLayout reads a sample shape as an image: [C,H,W] with C 1 or 3, [H,W], or
// [n] with n a square, after dropping leading 1s beyond three dimensions. An
// empty shape is read as [n]. ok is false when the shape is no image or does not
// hold n values.
func imageLayout(shape []int, n int) (layout, bool) {
	if len(shape) == 0 {
		shape = []int{n}
	}
	for len(shape) > 3 && shape[0] == 1 {
		shape = shape[1:]
	}
	size := 1
	for _, d := range shape {
		if d <= 0 {
			return layout{}, false
		}
		size *= d
	}
	if size != n {
		return layout{}, false
	}
	switch len(shape) {
	case 1:
		s := int(math.Round(math.Sqrt(float64(n))))
		if s*s != n {
			return layout{}, false
		}
		return layout{1, s, s}, true
	case 2:
		return layout{1, shape[0], shape[1]}, true
	case 3:
		if shape[0] == 1 || shape[0] == 3 {
			return layout{shape[0], shape[1], shape[2]}, true
		}
	}
	return layout{}, false
}

// galleryScale is the integer factor that brings an image of h×w pixels to at
// least galleryMinPixels on its longer side.
func galleryScale(h, w int) int {
	return max(1, (galleryMinPixels+max(h, w)-1)/max(h, w))
}

// renderPNG draws x (channel-major, in layout l) as a PNG data: URI, values
// mapped linearly from [lo, hi] to black–white and clipped, each pixel scaled to
// a galleryScale square; it returns the image's size too.
func renderPNG(x []float64, l layout, lo, hi float64) (template.URL, int, int) {
	k := galleryScale(l.h, l.w)
	level := func(v float64) uint8 {
		t := (v - lo) / (hi - lo)
		if !(t > 0) { // NaN too
			return 0
		}
		if t >= 1 {
			return 255
		}
		return uint8(math.Round(255 * t))
	}
	rect := image.Rect(0, 0, l.w*k, l.h*k)
	var img interface {
		image.Image
		Set(x, y int, c color.Color)
	}
	if l.c == 1 {
		img = image.NewGray(rect) // a third of the bytes of RGB
	} else {
		img = image.NewNRGBA(rect)
	}
	plane := l.h * l.w
	for y := 0; y < l.h; y++ {
		for xx := 0; xx < l.w; xx++ {
			i := y*l.w + xx
			var c color.Color
			if l.c == 1 {
				c = color.Gray{Y: level(x[i])}
			} else {
				c = color.NRGBA{R: level(x[i]), G: level(x[plane+i]), B: level(x[2*plane+i]), A: 255}
			}
			for dy := 0; dy < k; dy++ {
				for dx := 0; dx < k; dx++ {
					img.Set(xx*k+dx, y*k+dy, c)
				}
			}
		}
	}
	var b bytes.Buffer
	// Encoding an in-memory image into a buffer cannot fail.
	_ = png.Encode(&b, img)
	return pngURI(b.Bytes()), l.w * k, l.h * k
}
