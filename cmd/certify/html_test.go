package main

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/certify-dev/certify/internal/browser"
	"github.com/certify-dev/certify/internal/cli"
	"github.com/certify-dev/certify/pipeline"
)

// htmlRun is one run's outputs in a test of --html: the HTML page, the plot and
// the JSON report.
type htmlRun struct {
	page, plot []byte
	rep        *pipeline.Report
}

func readHTMLRun(t *testing.T, htmlPath, plotPath, jsonPath string) htmlRun {
	t.Helper()
	var r htmlRun
	var err error
	if r.page, err = os.ReadFile(htmlPath); err != nil {
		t.Fatal(err)
	}
	if r.plot, err = os.ReadFile(plotPath); err != nil {
		t.Fatal(err)
	}
	if r.rep, err = readReport(jsonPath); err != nil {
		t.Fatal(err)
	}
	return r
}

// attackedSample reports whether some attack found an adversarial example of s,
// as the JSON report records it.
func attackedSample(s *pipeline.Sample) bool {
	for _, found := range s.Attacks {
		if found {
			return true
		}
	}
	return false
}

// sweepRowPrefix is the row of the HTML summary table for one radius, computed
// from the run's samples in the JSON report (not from its summary): radius,
// clean accuracy, empirical accuracy, each method's certified accuracy, the
// falsified certificates; in the page's format, percentages with 2 decimals.
// It is a prefix: an "unknown" column may follow.
func sweepRowPrefix(rep *pipeline.Report, run pipeline.RadiusRun) string {
	n := float64(len(run.Samples))
	count := func(f func(s *pipeline.Sample) bool) string {
		c := 0
		for i := range run.Samples {
			if f(&run.Samples[i]) {
				c++
			}
		}
		return fmt.Sprintf("%.2f%%", 100*float64(c)/n)
	}
	correct := func(s *pipeline.Sample) bool { return s.Label == s.Predicted }
	cells := []string{fmt.Sprint(run.Radius), count(correct),
		count(func(s *pipeline.Sample) bool { return correct(s) && !attackedSample(s) })}
	for _, m := range rep.Methods {
		cells = append(cells, count(func(s *pipeline.Sample) bool { return s.Certified[m] }))
	}
	falsified := 0
	for _, s := range run.Samples {
		falsified += len(s.Falsified)
	}
	cells = append(cells, fmt.Sprint(falsified))
	return `<tr><td class="num">` + strings.Join(cells, `</td><td class="num">`) + `</td>`
}

// section is the text of page from the first match of start to the end of the
// next end after it; "" when there is none.
func section(page, start, end string) string {
	i := strings.Index(page, start)
	if i < 0 {
		return ""
	}
	j := strings.Index(page[i:], end)
	if j < 0 {
		return ""
	}
	return page[i : i+j+len(end)]
}

// summaryNumbers is what a page says of the run's results, timings aside: the
// summary table by radius and each radius's detail table without its
// "seconds:" rows.
func summaryNumbers(page string) string {
	out := section(page, `<table class="sweep" id="summary">`, "</table>")
	rest := page
	for {
		d := section(rest, `<table class="detail">`, "</table>")
		if d == "" {
			break
		}
		rest = rest[strings.Index(rest, d)+len(d):]
		for _, line := range strings.Split(d, "\n") {
			if !strings.Contains(line, "seconds: ") {
				out += line + "\n"
			}
		}
	}
	return out
}

var cardID = regexp.MustCompile(`<div class="card[^"]*" id="sample-(\d+)">`)

// galleryCards splits page's gallery into its cards, by sample index, in order.
func galleryCards(page string) (ids []string, cards map[string]string) {
	cards = map[string]string{}
	locs := cardID.FindAllStringSubmatchIndex(page, -1)
	for i, l := range locs {
		end := len(page)
		if i+1 < len(locs) {
			end = locs[i+1][0]
		}
		id := page[l[2]:l[3]]
		ids = append(ids, id)
		cards[id] = page[l[0]:end]
	}
	return ids, cards
}

// certify --html writes a page whose numbers are those of the JSON report, with
// a gallery of the adversarial examples found, and --plot a PNG of the figure's
// size; certify merge --html of the run's two shards writes the same numbers
// (its gallery has the originals only); and both pages open in headless
// Chromium with every image loaded and a silent console.
func TestHTMLEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("runs certify 3 times and a browser")
	}
	model, data, labels := shippedFiles(t)
	whole, parts := t.TempDir(), t.TempDir()
	args := func(dir string, extra ...string) []string {
		return append(extra, "-n", "40", "--radius", "0.02,0.08", "--methods", "ibp,crown", "--attacks", "pgd",
			"--data", data, "--labels", labels, "--html", filepath.Join(dir, "R.html"), "--plot", filepath.Join(dir, "P.png"),
			"--json", filepath.Join(dir, "J.json"), "--quiet", model)
	}
	certify := func(args ...string) {
		t.Helper()
		start := time.Now()
		if code, stdout, stderr := runCmd(args...); code != cli.ExitOK {
			t.Fatalf("certify %q: exit %d\n%s%s", args, code, stdout, stderr)
		}
		t.Logf("certify %s: %.2fs", strings.Join(args[:min(3, len(args))], " "), time.Since(start).Seconds())
	}
	certify(args(whole)...)
	// -n 40 in blocks of 32: shard 0 has samples 0..31, shard 1 32..39.
	certify(args(parts, "--shard", "0/2")...)
	certify(args(parts, "--shard", "1/2")...)
	merged := filepath.Join(parts, "M.html")
	certify("merge", "--quiet", "--html", merged, "--plot", filepath.Join(parts, "MP.png"), "--json", filepath.Join(parts, "MJ.json"),
		filepath.Join(parts, "J.1-of-2.json"), filepath.Join(parts, "J.0-of-2.json"))

	r := readHTMLRun(t, filepath.Join(whole, "R.html"), filepath.Join(whole, "P.png"), filepath.Join(whole, "J.json"))
	m := readHTMLRun(t, merged, filepath.Join(parts, "MP.png"), filepath.Join(parts, "MJ.json"))
	page, mpage := string(r.page), string(m.page)
	runs := r.rep.Runs()
	if len(runs) != 2 || len(runs[0].Samples) != 40 {
		t.Fatalf("the run has %d radii and %d samples, want 2 and 40", len(runs), len(runs[0].Samples))
	}

	// The plot is a PNG of the figure's size, the size the page shows it at.
	wantW, wantH := int(pipeline.CurvePlotWidth.Dots(96)), int(pipeline.CurvePlotHeight.Dots(96))
	cfg, err := png.DecodeConfig(bytes.NewReader(r.plot))
	if err != nil {
		t.Fatalf("P.png: %v", err)
	}
	if cfg.Width != wantW || cfg.Height != wantH {
		t.Errorf("P.png is %d×%d, want %d×%d", cfg.Width, cfg.Height, wantW, wantH)
	}
	if want := fmt.Sprintf(`width="%d" height="%d" alt="accuracy versus radius"`, wantW, wantH); !strings.Contains(page, want) {
		t.Errorf("the page lacks the figure's <img ... %s>", want)
	}
	// The same results draw the same plot.
	if !bytes.Equal(r.plot, m.plot) {
		t.Errorf("the merged run's plot (%d bytes) differs from the whole run's (%d bytes)", len(m.plot), len(r.plot))
	}

	// The summary by radius says what the samples of the JSON report say.
	table := section(page, `<table class="sweep" id="summary">`, "</table>")
	if want := "<tr><th>radius</th><th>clean</th><th>empirical</th><th>ibp</th><th>crown</th><th>falsified</th>"; !strings.HasPrefix(strings.TrimPrefix(table, `<table class="sweep" id="summary">`+"\n"), want) {
		t.Errorf("summary table:\n%s\nwant the head %s", table, want)
	}
	for _, run := range runs {
		if want := sweepRowPrefix(r.rep, run); !strings.Contains(table, want) {
			t.Errorf("summary table:\n%s\nlacks the row of radius %g: %s", table, run.Radius, want)
		}
	}

	// The gallery shows the largest radius with adversarial examples, and one
	// per card for each sample an attack broke, up to the gallery's size.
	gallery := runs[0]
	for _, run := range runs {
		if run.Radius > gallery.Radius && countSamples(run.Samples, attackedSample) > 0 {
			gallery = run
		}
	}
	attacked := countSamples(gallery.Samples, attackedSample)
	if attacked == 0 {
		t.Fatalf("no attack found an adversarial example at radius %g: the gallery shows none, and the test little", gallery.Radius)
	}
	cards := min(pipeline.DefaultGallery, len(gallery.Samples))
	advCards := min(pipeline.DefaultGallery, attacked)
	t.Logf("gallery at radius %g: %d cards, %d samples with an adversarial example", gallery.Radius, cards, attacked)
	if want := fmt.Sprintf("%d of %d samples at %s radius %g (the largest radius of the sweep with adversarial examples)", cards, len(gallery.Samples), r.rep.Norm, gallery.Radius); !strings.Contains(page, want) {
		t.Errorf("the gallery's caption is not %q", want)
	}
	ids, byID := galleryCards(page)
	if len(ids) != cards {
		t.Errorf("the gallery has %d cards, want %d", len(ids), cards)
	}
	var withAdv int
	for _, card := range byID {
		if strings.Contains(card, "<b>adversarial (pgd → ") && strings.Contains(card, "<b>perturbation</b>") {
			withAdv++
		}
	}
	if withAdv != advCards || strings.Count(page, "<b>adversarial (") != advCards {
		t.Errorf("the gallery has %d cards with an adversarial example and perturbation, %d adversarial images; want %d",
			withAdv, strings.Count(page, "<b>adversarial ("), advCards)
	}
	// The cards, in order: falsified certificates, then adversarial examples,
	// then certified samples, then the rest, each by index.
	rank := func(s *pipeline.Sample) int {
		switch {
		case len(s.Falsified) > 0:
			return 0
		case attackedSample(s):
			return 1
		case s.Certified["ibp"] || s.Certified["crown"]:
			return 2
		}
		return 3
	}
	var wantIDs []string
	for k := 0; k <= 3; k++ {
		for i := range gallery.Samples { // ordered by index
			if s := &gallery.Samples[i]; rank(s) == k && len(wantIDs) < cards {
				wantIDs = append(wantIDs, fmt.Sprint(s.Index))
			}
		}
	}
	if strings.Join(ids, " ") != strings.Join(wantIDs, " ") {
		t.Errorf("the gallery shows samples %v, want %v", ids, wantIDs)
	}
	for _, id := range wantIDs[:advCards] {
		if !strings.Contains(byID[id], "<b>adversarial (pgd → ") {
			t.Errorf("sample %s, broken by pgd at radius %g, has no adversarial example in the gallery", id, gallery.Radius)
		}
	}
	// The figure, and per card the original, with the adversarial example and
	// the perturbation when there is one.
	wantImages := 1 + 3*advCards + (cards - advCards)
	if n := strings.Count(page, "<img "); n != wantImages {
		t.Errorf("the page has %d <img>, want %d", n, wantImages)
	}

	// The merged run's page: the same numbers, and the same gallery, card for
	// card and pixel for pixel: the shards kept the adversarial examples their
	// galleries could show.
	if got, want := summaryNumbers(mpage), summaryNumbers(page); got != want || !strings.Contains(want, "certified accuracy: crown") {
		t.Errorf("the merged page's summary:\n%s\nwant the whole run's:\n%s", got, want)
	}
	mids, mByID := galleryCards(mpage)
	if strings.Join(mids, " ") != strings.Join(ids, " ") {
		t.Errorf("the merged page's gallery shows samples %v, the whole run's %v", mids, ids)
	}
	for _, id := range ids {
		if mByID[id] != byID[id] {
			t.Errorf("sample %s: the merged page's card differs from the whole run's", id)
		}
	}
	mImages := wantImages
	if n := strings.Count(mpage, "<img "); n != mImages || strings.Contains(mpage, "(not kept in the report)") {
		t.Errorf("the merged page has %d <img>, want %d, all adversarial examples kept", n, mImages)
	}

	// Both pages in the browser.
	path := browser.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	br, err := browser.Start(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer br.Close()
	for _, tc := range []struct {
		path   string
		images int
	}{{filepath.Join(whole, "R.html"), wantImages}, {merged, mImages}} {
		p, err := br.Open(tc.path)
		if err != nil {
			t.Fatal(err)
		}
		if p.Images != tc.images || p.Loaded != tc.images || len(p.Problems) > 0 {
			t.Errorf("%s: %d of %d images loaded, console %q; want %d of %d and nothing", filepath.Base(tc.path), p.Loaded, p.Images, p.Problems, tc.images, tc.images)
		}
		shot, err := png.DecodeConfig(bytes.NewReader(p.Screenshot))
		if err != nil {
			t.Fatalf("%s: screenshot: %v", tc.path, err)
		}
		if shot.Width != browser.WindowWidth || shot.Height <= browser.WindowHeight {
			t.Errorf("%s: screenshot of %d×%d, want %d wide and taller than the %d-pixel window", filepath.Base(tc.path), shot.Width, shot.Height, browser.WindowWidth, browser.WindowHeight)
		}
	}
}

func countSamples(samples []pipeline.Sample, f func(*pipeline.Sample) bool) int {
	c := 0
	for i := range samples {
		if f(&samples[i]) {
			c++
		}
	}
	return c
}
