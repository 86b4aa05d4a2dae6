package browser

import (
	"bytes"
	"context"
	"encoding/base64"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// redPixelURI is a data: URI of a 1×1 PNG of pure red, encoded here.
func redPixelURI(t *testing.T) string {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, 1, 1))
	img.Set(0, 0, color.NRGBA{R: 255, A: 255})
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return "data:image/png;base64," + base64.StdEncoding.EncodeToString(b.Bytes())
}

// The browser catches what is wrong with a page (a missing image, a console
// error, an uncaught exception) and finds nothing wrong with a good one, whose
// screenshot shows its image where the page puts it and the page's whole height.
func TestBrowserOpen(t *testing.T) {
	path := Require(t)
	dir := t.TempDir()
	// The red pixel, scaled to a 100×100 square at the top left of a white
	// page, above a 2000-pixel spacer: the page is taller than the window.
	const tall = 2000
	good := `<!DOCTYPE html><html><head><meta charset="utf-8"><title>good</title></head>
<body style="margin:0;background:#fff"><img src="` + redPixelURI(t) + `" width="100" height="100" alt="red" style="display:block">
<div style="height:` + strconv.Itoa(tall) + `px"></div></body></html>`
	broken := `<!DOCTYPE html><html><head><title>broken</title></head><body>
<img src="missing.png" alt="missing"><script>console.error("deliberate"); undefinedFunction();</script></body></html>`
	for name, text := range map[string]string{"good.html": good, "broken.html": broken} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b, err := Start(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	p, err := b.Open(filepath.Join(dir, "broken.html"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Images != 1 || p.Loaded != 0 {
		t.Errorf("broken page: %d of %d images loaded, want 0 of 1", p.Loaded, p.Images)
	}
	t.Logf("the broken page's problems, as they should be: %q", p.Problems)
	all := strings.Join(p.Problems, "\n")
	for _, want := range []string{`console.error("deliberate")`, "exception: ", "undefinedFunction", "missing.png"} {
		if !strings.Contains(all, want) {
			t.Errorf("broken page: problems %q lack %q", p.Problems, want)
		}
	}

	p, err = b.Open(filepath.Join(dir, "good.html"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Images != 1 || p.Loaded != 1 || len(p.Problems) != 0 {
		t.Errorf("good page: %d of %d images loaded, problems %q; want 1 of 1 and none", p.Loaded, p.Images, p.Problems)
	}
	shot, err := png.Decode(bytes.NewReader(p.Screenshot))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	size := shot.Bounds().Size()
	if size.X != WindowWidth || size.Y < tall+100 {
		t.Errorf("screenshot of %v pixels, want %d wide and the whole page, at least %d tall", size, WindowWidth, tall+100)
	}
	rgba := func(x, y int) color.NRGBA { return color.NRGBAModel.Convert(shot.At(x, y)).(color.NRGBA) }
	for _, pt := range []struct {
		x, y int
		want color.NRGBA
	}{
		{0, 0, color.NRGBA{255, 0, 0, 255}},
		{50, 50, color.NRGBA{255, 0, 0, 255}},
		{99, 99, color.NRGBA{255, 0, 0, 255}},
		{100, 50, color.NRGBA{255, 255, 255, 255}},
		{50, 100, color.NRGBA{255, 255, 255, 255}},
		{WindowWidth / 2, tall, color.NRGBA{255, 255, 255, 255}},
	} {
		if got := rgba(pt.x, pt.y); got != pt.want {
			t.Errorf("screenshot pixel (%d, %d) = %v, want %v", pt.x, pt.y, got, pt.want)
		}
	}

	for _, bad := range []string{filepath.Join(dir, "absent.html"), dir} {
		if _, err := b.Open(bad); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("Open(%s) = %v, want an error naming the path", bad, err)
		}
	}
}

// Open, the one-page shortcut, starts and stops its own browser.
func TestBrowserOpenOnce(t *testing.T) {
	path := Require(t)
	html := filepath.Join(t.TempDir(), "page.html")
	if err := os.WriteFile(html, []byte(`<!DOCTYPE html><html><head><title>t</title></head><body><p>text</p></body></html>`), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p, err := Open(ctx, path, html)
	if err != nil {
		t.Fatal(err)
	}
	if p.Images != 0 || p.Loaded != 0 || len(p.Problems) != 0 || len(p.Screenshot) == 0 {
		t.Errorf("page: %d of %d images, problems %q, %d screenshot bytes; want 0 of 0, none, a screenshot", p.Loaded, p.Images, p.Problems, len(p.Screenshot))
	}
	if _, err := Open(ctx, "", html); err == nil {
		t.Error("Open with no browser path: no error")
	}
}
