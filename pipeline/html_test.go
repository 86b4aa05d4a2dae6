package pipeline

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"image"
	"image/png"
	"io"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// htmlSide is the side of the fixture's images: 28×28 grey, as MNIST.
const htmlSide = 28

// htmlInput is sample i's input: a ring whose radius grows with i, so that the
// images differ and have structure, with values in [0, 1].
func htmlInput(i int) []float64 {
	x := make([]float64, htmlSide*htmlSide)
	r0 := 4 + float64(i%8)
	for y := range htmlSide {
		for xx := range htmlSide {
			d := math.Hypot(float64(y)-13.5, float64(xx)-13.5)
			x[y*htmlSide+xx] = math.Max(0, 1-math.Abs(d-r0)/2.5)
		}
	}
	return x
}

// htmlAdversarial is x moved by ±eps per pixel (signs from rng), clipped to [0, 1].
func htmlAdversarial(rng *rand.Rand, x []float64, eps float64) []float64 {
	a := make([]float64, len(x))
	for i, v := range x {
		d := eps
		if rng.IntN(2) == 0 {
			d = -eps
		}
		a[i] = math.Min(1, math.Max(0, v+d))
	}
	return a
}

// htmlReport is a hand-built sweep over radii 0.2 and 0.1 (in that order) of 6
// samples with methods ibp and crown and attack pgd, and the inputs of its
// samples. At radius 0.2 (by index): 0 correct, nothing proven or found; 1
// correct, pgd found an adversarial example (kept); 2 certified by both methods;
// 3 certified by crown and broken by pgd (a falsified certificate, adversarial
// example kept); 4 misclassified; 5 crown timed out. At 0.1 no attack finds
// anything and 1 and 3 are certified by crown, 3 by ibp too. Samples from 6 on
// (for larger pages) are correct and uncertified, and at radius 0.2 every third
// has an adversarial example.
func htmlReport(n int) (*Report, map[int][]float64) {
	rng := rand.New(rand.NewPCG(1, 2))
	inputs := map[int][]float64{}
	build := func(radius float64) RadiusRun {
		samples := make([]Sample, n)
		for i := range samples {
			inputs[i] = htmlInput(i)
			s := Sample{Index: i, Label: i % 10, Predicted: i % 10,
				Certified: map[string]bool{"ibp": false, "crown": false},
				Margins:   map[string]float64{"ibp": -0.5 - float64(i)/10, "crown": -0.25 - float64(i)/10},
				Attacks:   map[string]bool{"pgd": false}}
			switch {
			case i >= 6 && i%3 == 1 && radius == 0.2:
				s.Attacks["pgd"] = true
				s.Adversarial = &Adversarial{Attack: "pgd", X: htmlAdversarial(rng, inputs[i], radius), Predicted: (i + 1) % 10}
			case i >= 6:
			case i == 1 || i == 3:
				if radius == 0.1 {
					s.Certified["crown"], s.Margins["crown"] = true, 0.125
					s.Certified["ibp"], s.Margins["ibp"] = i == 3, 0.0625
					break
				}
				s.Attacks["pgd"] = true
				s.Adversarial = &Adversarial{Attack: "pgd", X: htmlAdversarial(rng, inputs[i], radius), Predicted: (i + 1) % 10}
				if i == 3 {
					s.Certified["crown"], s.Margins["crown"] = true, 0.01
				}
			case i == 2:
				s.Certified = map[string]bool{"ibp": true, "crown": true}
				s.Margins = map[string]float64{"ibp": 0.5, "crown": 0.75}
			case i == 4:
				s.Predicted = 7
				s.Certified, s.Margins, s.Attacks = map[string]bool{"ibp": false, "crown": false}, nil, nil
			case i == 5:
				if radius == 0.2 {
					s.Unknown = map[string]string{"crown": "timeout"}
					delete(s.Margins, "crown")
				}
			}
			samples[i] = s
		}
		one := &Report{Methods: []string{"ibp", "crown"}, Attacks: []string{"pgd"}, Samples: samples}
		summarize(one)
		return RadiusRun{Radius: radius, Samples: one.Samples, Summary: one.Summary}
	}
	r := &Report{
		Tool: "certify v0.0.0-test", Command: []string{"certify", "--model", "m y.onnx", "--radius", "0.2,0.1"},
		Parameters: map[string]string{"radius": "0.2,0.1", "norm": "linf", "seed": "7"},
		Time:       "2026-11-26T05:00:00Z", Model: "models/mnist_small.onnx", ModelSHA256: strings.Repeat("ab", 32),
		Data: "testdata/mnist.csv", DataSHA256: strings.Repeat("cd", 32), Norm: LInf, Domain: [2]float64{0, 1}, Seed: 7,
		Methods: []string{"ibp", "crown"}, Attacks: []string{"pgd"},
		Sweep: []RadiusRun{build(0.2), build(0.1)},
	}
	r.Radius, r.Samples, r.Summary = r.Sweep[0].Radius, r.Sweep[0].Samples, r.Sweep[0].Summary
	r.Summary.Warnings = []string{"pgd: gradients are zero on 2 samples <check masking>"}
	r.Sweep[0].Summary.Warnings = r.Summary.Warnings
	return r, inputs
}

// node is an element of the page as encoding/xml reads HTML (non-strict, with
// HTML's void elements and entities): enough structure to check the page.
type node struct {
	name     string
	attr     map[string]string
	children []*node
	text     strings.Builder
}

func parseHTML(t *testing.T, page string) *node {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(page))
	d.Strict, d.AutoClose, d.Entity = false, xml.HTMLAutoClose, xml.HTMLEntity
	root := &node{name: "#root"}
	stack := []*node{root}
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("page does not parse: %v", err)
		}
		top := stack[len(stack)-1]
		switch tok := tok.(type) {
		case xml.StartElement:
			n := &node{name: tok.Name.Local, attr: map[string]string{}}
			for _, a := range tok.Attr {
				n.attr[a.Name.Local] = a.Value
			}
			top.children = append(top.children, n)
			stack = append(stack, n)
		case xml.EndElement:
			if top.name != tok.Name.Local {
				t.Fatalf("</%s> closes <%s>", tok.Name.Local, top.name)
			}
			stack = stack[:len(stack)-1]
		case xml.CharData:
			for _, n := range stack {
				n.text.Write(tok)
			}
		}
	}
	if len(stack) != 1 {
		t.Fatalf("unclosed <%s>", stack[len(stack)-1].name)
	}
	return root
}

// all returns the elements under n (n included) that match.
func (n *node) all(match func(*node) bool) []*node {
	var out []*node
	if match(n) {
		out = append(out, n)
	}
	for _, c := range n.children {
		out = append(out, c.all(match)...)
	}
	return out
}

func byName(name string) func(*node) bool { return func(n *node) bool { return n.name == name } }

// tableRows is the rows of the tables under n, cells joined by "|".
func tableRows(n *node) []string {
	var rows []string
	for _, tr := range n.all(byName("tr")) {
		var cells []string
		for _, c := range tr.children {
			cells = append(cells, c.Text())
		}
		rows = append(rows, strings.Join(cells, "|"))
	}
	return rows
}

func (n *node) Text() string { return strings.Join(strings.Fields(n.text.String()), " ") }

// decodeDataPNG decodes a data:image/png;base64 URI.
func decodeDataPNG(uri string) (image.Image, error) {
	b64, ok := strings.CutPrefix(uri, "data:image/png;base64,")
	if !ok {
		return nil, fmt.Errorf("not a PNG data URI: %.40q", uri)
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, err
	}
	return png.Decode(bytes.NewReader(raw))
}

func writeHTMLString(t *testing.T, r *Report, o HTMLOptions) string {
	t.Helper()
	var b bytes.Buffer
	if err := r.WriteHTML(&b, o); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestWriteHTML(t *testing.T) {
	r, inputs := htmlReport(6)
	page := writeHTMLString(t, r, HTMLOptions{Inputs: inputs, Shape: []int{1, htmlSide, htmlSide}, Gallery: 4})
	root := parseHTML(t, page)

	// Every image is an inline PNG whose pixels are its width and height
	// attributes: the figure (576×384), then per card 28×28 scaled ×4.
	imgs := root.all(byName("img"))
	decoded := map[string]image.Image{}
	for _, im := range imgs {
		src := im.attr["src"]
		pic, err := decodeDataPNG(src)
		if err != nil {
			t.Fatalf("<img alt=%q>: %v", im.attr["alt"], err)
		}
		w, h := pic.Bounds().Dx(), pic.Bounds().Dy()
		if strconv.Itoa(w) != im.attr["width"] || strconv.Itoa(h) != im.attr["height"] {
			t.Errorf("<img alt=%q> is %dx%d, attributes say %sx%s", im.attr["alt"], w, h, im.attr["width"], im.attr["height"])
		}
		decoded[im.attr["alt"]] = pic
		if strings.HasPrefix(im.attr["alt"], "accuracy") {
			if w != 576 || h != 384 {
				t.Errorf("figure %dx%d, want 576x384", w, h)
			}
		} else if w != 4*htmlSide || h != 4*htmlSide {
			t.Errorf("gallery image %q %dx%d, want 112x112", im.attr["alt"], w, h)
		}
	}
	// Gallery 4 of radius 0.2: samples 3 (falsified), 1 (adversarial), 2
	// (certified), 0 (by index). 3 and 1 have original, adversarial and
	// perturbation; 2 and 0 the original alone: 1 + 3 + 3 + 1 + 1 images.
	if len(imgs) != 9 {
		t.Errorf("%d images, want 9", len(imgs))
	}
	if strings.Count(page, "<img ") != len(imgs) {
		t.Errorf("%d <img in the text, %d parsed", strings.Count(page, "<img "), len(imgs))
	}
	var order []string
	for _, c := range root.all(func(n *node) bool { return strings.HasPrefix(n.attr["id"], "sample-") }) {
		order = append(order, c.attr["id"])
	}
	if got := strings.Join(order, " "); got != "sample-3 sample-1 sample-2 sample-0" {
		t.Errorf("gallery %s, want sample-3 sample-1 sample-2 sample-0", got)
	}
	if !strings.Contains(page, "4 of 6 samples at linf radius 0.2 (the largest radius of the sweep with adversarial examples)") {
		t.Error("gallery caption does not name radius 0.2")
	}

	// The summary table: a row per radius, in the sweep's order, with the
	// values of the hand count in htmlReport's comment.
	tables := root.all(func(n *node) bool { return n.attr["id"] == "summary" })
	if len(tables) != 1 {
		t.Fatalf("%d summary tables", len(tables))
	}
	rows := tableRows(tables[0])
	want := []string{
		"radius|clean|empirical|ibp|crown|falsified|unknown",
		"0.2|83.33%|50.00%|16.67%|33.33%|1|1",
		"0.1|83.33%|83.33%|33.33%|50.00%|0|0",
	}
	if strings.Join(rows, "\n") != strings.Join(want, "\n") {
		t.Errorf("summary table\n%s\nwant\n%s", strings.Join(rows, "\n"), strings.Join(want, "\n"))
	}
	// And against the summaries the report holds.
	for i, run := range r.Sweep {
		s := run.Summary
		cells := strings.Split(rows[i+1], "|")
		for j, v := range []float64{s.CleanAccuracy, *s.EmpiricalAccuracy, s.CertifiedAccuracy["ibp"], s.CertifiedAccuracy["crown"]} {
			if cells[j+1] != fmt.Sprintf("%.2f%%", 100*v) {
				t.Errorf("radius %g column %d: %s, summary %v", run.Radius, j+1, cells[j+1], v)
			}
		}
		if cells[5] != strconv.Itoa(*s.FalsifiedCertificates) {
			t.Errorf("radius %g falsified %s, summary %d", run.Radius, cells[5], *s.FalsifiedCertificates)
		}
	}
	bad := tables[0].all(func(n *node) bool { return n.name == "tr" && n.attr["class"] == "bad" })
	if len(bad) != 1 || bad[0].children[0].Text() != "0.2" {
		t.Errorf("%d red rows, want radius 0.2's", len(bad))
	}

	text := root.Text()
	for _, s := range []string{
		"model_sha256", strings.Repeat("ab", 32), "testdata/mnist.csv (sha256 " + strings.Repeat("cd", 32),
		"0.2, 0.1", "[0, 1]", "certify v0.0.0-test", "certify --model 'm y.onnx' --radius 0.2,0.1", "2026-11-26T05:00:00Z",
		"1 falsified certificate(s)", "pgd: gradients are zero on 2 samples <check masking>",
		"FALSIFIED: certified, but an attack found an adversarial example", "Adversarial example found by pgd: the model predicts 4 (label 3).",
	} {
		if !strings.Contains(text, s) {
			t.Errorf("page lacks %q", s)
		}
	}

	// Sample 3's card: verdicts and margins, and the perturbation's norms.
	card := root.all(func(n *node) bool { return n.attr["id"] == "sample-3" })[0]
	cardRows := strings.Join(tableRows(card), "\n")
	for _, s := range []string{"ibp|not certified|-0.8000", "crown|FALSIFIED: certified, but an attack found an adversarial example|0.0100", "pgd|adversarial example found"} {
		if !strings.Contains(cardRows, s) {
			t.Errorf("sample 3's card lacks %q: %s", s, cardRows)
		}
	}
	text = card.Text()
	s3 := &r.Sweep[0].Samples[3]
	linf, l2 := 0.0, 0.0
	for i, v := range s3.Adversarial.X {
		d := v - inputs[3][i]
		linf, l2 = math.Max(linf, math.Abs(d)), l2+d*d
	}
	if norms := fmt.Sprintf("‖δ‖∞ = %.4g, ‖δ‖₂ = %.4g (radius 0.2)", linf, math.Sqrt(l2)); !strings.Contains(text, norms) {
		t.Errorf("sample 3's card lacks %q: %s", norms, text)
	}
}

// The gallery's pixels are the inputs: the original's grey level is 255·x
// (rounded) in 4×4 blocks, and the perturbation is mid grey where δ = 0, white
// where δ = +‖δ‖∞ and black where δ = −‖δ‖∞.
func TestHTMLGalleryPixels(t *testing.T) {
	r, inputs := htmlReport(6)
	page := writeHTMLString(t, r, HTMLOptions{Inputs: inputs, Shape: []int{htmlSide * htmlSide}, Gallery: 2})
	root := parseHTML(t, page)
	card := root.all(func(n *node) bool { return n.attr["id"] == "sample-1" })[0]
	imgs := card.all(byName("img"))
	if len(imgs) != 3 {
		t.Fatalf("sample 1 has %d images, want 3", len(imgs))
	}
	orig, err := decodeDataPNG(imgs[0].attr["src"])
	if err != nil {
		t.Fatal(err)
	}
	pert, err := decodeDataPNG(imgs[2].attr["src"])
	if err != nil {
		t.Fatal(err)
	}
	x, adv := inputs[1], r.Sweep[0].Samples[1].Adversarial.X
	linf := 0.0
	for i := range x {
		linf = math.Max(linf, math.Abs(adv[i]-x[i]))
	}
	grey := func(img image.Image, px, py int) int {
		v, _, _, _ := img.At(px, py).RGBA()
		return int(v >> 8)
	}
	for i := range x {
		px, py := i%htmlSide, i/htmlSide
		for _, off := range [][2]int{{0, 0}, {3, 3}} {
			if got, want := grey(orig, 4*px+off[0], 4*py+off[1]), int(math.Round(255*x[i])); got != want {
				t.Fatalf("original pixel %d (+%v) = %d, want %d", i, off, got, want)
			}
		}
		want := int(math.Round(255 * (0.5 + 0.5*(adv[i]-x[i])/linf)))
		if got := grey(pert, 4*px+1, 4*py+2); got != want {
			t.Fatalf("perturbation pixel %d = %d, want %d (δ = %v of %v)", i, got, want, adv[i]-x[i], linf)
		}
	}
}

func TestHTMLImageLayouts(t *testing.T) {
	for _, tc := range []struct {
		shape   []int
		n       int
		ok      bool
		c, h, w int
	}{
		{[]int{1, 28, 28}, 784, true, 1, 28, 28},
		{[]int{784}, 784, true, 1, 28, 28},
		{nil, 784, true, 1, 28, 28},
		{[]int{28, 28}, 784, true, 1, 28, 28},
		{[]int{3, 32, 32}, 3072, true, 3, 32, 32},
		{[]int{1, 3, 32, 32}, 3072, true, 3, 32, 32},
		{[]int{5, 7}, 35, true, 1, 5, 7},
		{[]int{10}, 10, false, 0, 0, 0},           // not a square
		{[]int{2, 4, 4}, 32, false, 0, 0, 0},      // 2 channels
		{[]int{1, 28, 28}, 700, false, 0, 0, 0},   // wrong length
		{[]int{0, 28}, 0, false, 0, 0, 0},         // empty dimension
		{[]int{2, 1, 4, 4}, 32, false, 0, 0, 0},   // batch of 2
		{[]int{-1, -784}, 784, false, 0, 0, 0},    // negative
		{[]int{1, 1, 1, 6, 6}, 36, true, 1, 6, 6}, // leading 1s
	} {
		l, ok := imageLayout(tc.shape, tc.n)
		if ok != tc.ok || (ok && l != (layout{tc.c, tc.h, tc.w})) {
			t.Errorf("imageLayout(%v, %d) = %+v, %v; want {%d %d %d}, %v", tc.shape, tc.n, l, ok, tc.c, tc.h, tc.w, tc.ok)
		}
	}
	for _, tc := range []struct{ h, w, scale int }{{28, 28, 4}, {32, 32, 4}, {5, 7, 16}, {224, 224, 1}, {100, 10, 2}} {
		if got := galleryScale(tc.h, tc.w); got != tc.scale {
			t.Errorf("galleryScale(%d, %d) = %d, want %d", tc.h, tc.w, got, tc.scale)
		}
	}
	// An RGB image: channel-major values, red then green then blue planes.
	x := make([]float64, 3*2*2)
	x[0], x[4+1], x[8+2] = 1, 1, 1 // (0,0) red, (0,1) green, (1,0) blue
	img := inputImage("rgb", x, []int{3, 2, 2}, 0, 1)
	pic, err := decodeDataPNG(string(img.URI))
	if err != nil {
		t.Fatal(err)
	}
	k := galleryScale(2, 2)
	for _, tc := range []struct{ px, py, r, g, b int }{{0, 0, 255, 0, 0}, {1, 0, 0, 255, 0}, {0, 1, 0, 0, 255}, {1, 1, 0, 0, 0}} {
		r, g, b, _ := pic.At(tc.px*k, tc.py*k).RGBA()
		if int(r>>8) != tc.r || int(g>>8) != tc.g || int(b>>8) != tc.b {
			t.Errorf("RGB pixel (%d,%d) = %d,%d,%d, want %d,%d,%d", tc.px, tc.py, r>>8, g>>8, b>>8, tc.r, tc.g, tc.b)
		}
	}
	// Values outside the domain are clipped, NaN is black.
	img = inputImage("clip", []float64{-1, 2, math.NaN(), 0.5}, []int{2, 2}, 0, 1)
	pic, err = decodeDataPNG(string(img.URI))
	if err != nil {
		t.Fatal(err)
	}
	k = galleryScale(2, 2)
	for i, want := range []int{0, 255, 0, 128} {
		v, _, _, _ := pic.At((i%2)*k, (i/2)*k).RGBA()
		if int(v>>8) != want {
			t.Errorf("clipped pixel %d = %d, want %d", i, v>>8, want)
		}
	}
}

// Inputs that are no image are summarised in numbers; a sample without input
// says so; neither is an error.
func TestHTMLNoImages(t *testing.T) {
	r, inputs := htmlReport(6)
	flat := map[int][]float64{1: inputs[1][:10]} // 10 values: no square
	page := writeHTMLString(t, r, HTMLOptions{Inputs: flat, Shape: []int{10}, Gallery: 3})
	root := parseHTML(t, page)
	if n := len(root.all(byName("img"))); n != 1 {
		t.Errorf("%d images, want the figure alone", n)
	}
	for _, s := range []string{"input not given", "10 values (no image shape): min", "original has 10 values, adversarial 784"} {
		if !strings.Contains(page, s) {
			t.Errorf("page lacks %q", s)
		}
	}
	if err := r.WriteHTML(io.Discard, HTMLOptions{Gallery: -1}); err == nil {
		t.Error("a negative gallery should be an error")
	}
	// A report of no samples (accuracies 0/0) is still a page.
	empty := &Report{Methods: []string{"crown"}, Attacks: []string{"pgd"}}
	summarize(empty)
	parseHTML(t, writeHTMLString(t, empty, HTMLOptions{}))
}

// Text from the report is escaped: a model path with markup shows as text.
func TestHTMLEscaping(t *testing.T) {
	r, _ := htmlReport(2)
	r.Model = `dir/<script>alert("x")</script>.onnx`
	r.Methods = append(r.Methods, `<img src=x onerror=alert(1)>`)
	page := writeHTMLString(t, r, HTMLOptions{Title: `A & B <i>`})
	if strings.Contains(strings.ToLower(page), "<script") || strings.Contains(page, "<img src=x") || strings.Contains(page, "<i>") {
		t.Error("markup of the report reached the page unescaped")
	}
	for _, s := range []string{"&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;.onnx", "<title>A &amp; B &lt;i&gt;</title>", "&lt;img src=x onerror=alert(1)&gt;"} {
		if !strings.Contains(page, s) {
			t.Errorf("page lacks %q", s)
		}
	}
	parseHTML(t, page)
}

// With randomized smoothing, a single radius: the smoothing figure is there, the
// details of the one radius are open, and the gallery (no adversarial example)
// is of that radius.
func TestHTMLSmoothing(t *testing.T) {
	var samples []Sample
	for i := range 5 {
		samples = append(samples, Sample{Index: i, Label: 1, Predicted: 1, Certified: map[string]bool{"smoothing": i%2 == 0},
			Smoothing: &Smoothing{Prediction: 1, Radius: 0.3 * float64(i), Abstain: i%2 == 1}})
	}
	r := &Report{Model: "m.onnx", Norm: L2, Radius: 0.25, Domain: [2]float64{0, 1}, Methods: []string{"smoothing"}, Samples: samples,
		Smoothing: &SmoothingParams{Method: "smoothing", Sigma: 0.5, N0: 10, N: 100, Alpha: 0.001}}
	summarize(r)
	page := writeHTMLString(t, r, HTMLOptions{})
	root := parseHTML(t, page)
	imgs := root.all(byName("img"))
	if len(imgs) != 2 {
		t.Fatalf("%d images, want the two figures", len(imgs))
	}
	for _, im := range imgs {
		pic, err := decodeDataPNG(im.attr["src"])
		if err != nil || pic.Bounds().Dx() != 576 || pic.Bounds().Dy() != 384 {
			t.Errorf("figure %q: %v", im.attr["alt"], err)
		}
	}
	if d := root.all(byName("details")); len(d) != 1 || d[0].attr["open"] == "" {
		t.Errorf("details of the single radius should be open")
	}
	for _, s := range []string{"Randomized smoothing", "σ = 0.5", "5 of 5 samples at l2 radius 0.25:", "predicts 1, certified L2 radius 0.6000", "abstains"} {
		if !strings.Contains(page, s) {
			t.Errorf("page lacks %q", s)
		}
	}
}

func TestHTMLGallerySelection(t *testing.T) {
	r, _ := htmlReport(6)
	run, adv := r.galleryRun()
	if run.Radius != 0.2 || !adv {
		t.Errorf("gallery of radius %v (adversarial %v), want 0.2", run.Radius, adv)
	}
	var got []int
	for _, s := range gallerySamples(run.Samples, 10) {
		got = append(got, s.Index)
	}
	if fmt.Sprint(got) != "[3 1 2 0 4 5]" {
		t.Errorf("gallery order %v, want [3 1 2 0 4 5]", got)
	}
	// Without any adversarial example: the largest radius.
	for i := range r.Sweep {
		for j := range r.Sweep[i].Samples {
			r.Sweep[i].Samples[j].Adversarial = nil
			r.Sweep[i].Samples[j].Attacks = nil
		}
	}
	if run, adv := r.galleryRun(); run.Radius != 0.2 || adv {
		t.Errorf("gallery of radius %v (adversarial %v), want 0.2 without", run.Radius, adv)
	}
}

// A typical page, 100 MNIST-sized samples with the default gallery of 24, stays
// small enough to mail or attach to an issue.
func TestHTMLPageSize(t *testing.T) {
	r, inputs := htmlReport(100)
	page := writeHTMLString(t, r, HTMLOptions{Inputs: inputs, Shape: []int{1, htmlSide, htmlSide}})
	root := parseHTML(t, page)
	cards := root.all(func(n *node) bool { return strings.HasPrefix(n.attr["id"], "sample-") })
	// 1 falsified, then 1 + 31 with an adversarial example: the 24 are sample
	// 3, then 1, 7, 10, ... with 3 images each.
	if len(cards) != DefaultGallery || cards[0].attr["id"] != "sample-3" || cards[2].attr["id"] != "sample-7" {
		t.Errorf("%d cards, from %s, %s", len(cards), cards[0].attr["id"], cards[2].attr["id"])
	}
	if n := len(root.all(byName("img"))); n != 1+3*DefaultGallery {
		t.Errorf("%d images, want %d", n, 1+3*DefaultGallery)
	}
	if len(page) > 1<<20 {
		t.Errorf("page of %d bytes, want under 1 MiB", len(page))
	}
	t.Logf("page of 100 samples, gallery %d: %d bytes", DefaultGallery, len(page))
}
