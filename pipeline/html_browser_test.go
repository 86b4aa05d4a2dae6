package pipeline

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certify-dev/certify/internal/browser"
)

// The HTML report renders in a real browser: headless Chromium opens the page of
// a sweep with a gallery, every image loads, the console stays silent, and a
// full-page screenshot shows a page (not a blank one). A broken page is checked
// first to show that the checks catch what they look for.
func TestHTMLInBrowser(t *testing.T) {
	path := browser.Require(t)
	dir := t.TempDir()
	r, inputs := htmlReport(6)
	var b bytes.Buffer
	if err := r.WriteHTML(&b, HTMLOptions{Inputs: inputs, Shape: []int{1, htmlSide, htmlSide}, Gallery: 4}); err != nil {
		t.Fatal(err)
	}
	// The figure, and per gallery card (3, 1, 2, 0) original, adversarial and
	// perturbation when there is an adversarial example, else the original.
	const wantImages = 1 + 3 + 3 + 1 + 1
	if n := strings.Count(b.String(), "<img "); n != wantImages {
		t.Fatalf("the page has %d <img>, want %d", n, wantImages)
	}
	good := filepath.Join(dir, "report.html")
	bad := filepath.Join(dir, "broken.html")
	if err := os.WriteFile(good, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	broken := `<!DOCTYPE html><html><head><title>broken</title></head><body>
<img src="missing.png" alt="missing"><script>console.error("deliberate"); undefinedFunction();</script></body></html>`
	if err := os.WriteFile(bad, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	br, err := browser.Start(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer br.Close()

	// The checks catch a broken page: a missing image, a console error and an
	// exception.
	page, err := br.Open(bad)
	if err != nil {
		t.Fatal(err)
	}
	if page.Images != 1 || page.Loaded != 0 || len(page.Problems) < 2 {
		t.Fatalf("broken page: %d of %d images loaded, problems %q: the checks would miss a broken report", page.Loaded, page.Images, page.Problems)
	}
	t.Logf("the broken page's problems, as they should be: %q", page.Problems)

	page, err = br.Open(good)
	if err != nil {
		t.Fatal(err)
	}
	if page.Images != wantImages || page.Loaded != wantImages {
		t.Errorf("%d of %d images loaded, want %d of %d", page.Loaded, page.Images, wantImages, wantImages)
	}
	if len(page.Problems) > 0 {
		t.Errorf("console of the report: %q", page.Problems)
	}
	img, err := png.Decode(bytes.NewReader(page.Screenshot))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	size := img.Bounds().Size()
	// The page is longer than the window: the full-page shot has it all.
	if size.X == 0 || size.Y <= browser.WindowHeight {
		t.Errorf("screenshot of %v pixels, want the whole page, taller than the %d-pixel window", size, browser.WindowHeight)
	}
	if c := distinctColors(img, 50); c < 50 {
		t.Errorf("screenshot has %d colours: a blank or uniform page", c)
	}
	// CERTIFY_KEEP_HTML=DIR keeps the page and its screenshot, to look at.
	if keep := os.Getenv("CERTIFY_KEEP_HTML"); keep != "" {
		for name, data := range map[string][]byte{"report.html": b.Bytes(), "report.png": page.Screenshot} {
			if err := os.WriteFile(filepath.Join(keep, name), data, 0o644); err != nil {
				t.Error(err)
			}
		}
	}
}
