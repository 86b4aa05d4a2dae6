package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// browserPath finds a Chromium-based browser: Debian's chromium package, or
// another distribution's name for it, or Google Chrome.
func browserPath() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "/usr/bin/chromium"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// consoleProblems records, from the events of a tab, what a reader opening the
// page in DevTools would see as a problem: any call of the console API (the page
// has no script, so any is unexpected), an uncaught exception, and the browser
// log's warnings and errors (a failed image load is one).
type consoleProblems struct {
	mu   sync.Mutex
	list []string
}

func (c *consoleProblems) listen(ev any) {
	var msg string
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		var args []string
		for _, a := range ev.Args {
			args = append(args, string(a.Value))
		}
		msg = fmt.Sprintf("console.%s(%s)", ev.Type, strings.Join(args, ", "))
	case *runtime.EventExceptionThrown:
		msg = "exception: " + ev.ExceptionDetails.Text
		if e := ev.ExceptionDetails.Exception; e != nil {
			msg += " " + e.Description
		}
	case *log.EventEntryAdded:
		if ev.Entry.Level == log.EntryLevelWarning || ev.Entry.Level == log.EntryLevelError {
			msg = fmt.Sprintf("log %s (%s): %s %s", ev.Entry.Level, ev.Entry.Source, ev.Entry.Text, ev.Entry.URL)
		}
	}
	if msg != "" {
		c.mu.Lock()
		c.list = append(c.list, msg)
		c.mu.Unlock()
	}
}

// take returns the problems recorded so far and forgets them.
func (c *consoleProblems) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.list
	c.list = nil
	return out
}

// imageLoad is what the page's <img> elements report: how many there are, and
// how many loaded (complete with a natural width).
type imageLoad struct {
	Total  int `json:"total"`
	Loaded int `json:"loaded"`
}

const imageLoadJS = `(() => {
	const im = Array.from(document.images);
	return {total: im.length, loaded: im.filter(i => i.complete && i.naturalWidth > 0).length};
})()`

// The HTML report renders in a real browser: headless Chromium opens the page of
// a sweep with a gallery, every image loads, the console stays silent, and a
// full-page screenshot shows a page (not a blank one). A broken page is checked
// first to show that the checks catch what they look for.
func TestHTMLInBrowser(t *testing.T) {
	browser := browserPath()
	if browser == "" {
		if os.Getenv("CERTIFY_REQUIRE_BROWSER") == "1" {
			t.Fatal("no chromium, chromium-browser or google-chrome on PATH, and CERTIFY_REQUIRE_BROWSER=1 (apt-get install chromium)")
		}
		t.Skip("no chromium, chromium-browser or google-chrome on PATH (set CERTIFY_REQUIRE_BROWSER=1 to fail instead)")
	}
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
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.WindowSize(1280, 900))
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()

	var problems consoleProblems
	if err := chromedp.Listen(bctx, problems.listen); err != nil {
		t.Fatalf("start %s: %v", browser, err)
	}
	open := func(path string) imageLoad {
		t.Helper()
		if err := chromedp.Do(bctx, chromedp.Navigate("file://"+path), chromedp.WaitReady("body")); err != nil {
			t.Fatalf("open %s: %v", path, err)
		}
		load, err := chromedp.Run(bctx, chromedp.Evaluate[imageLoad](imageLoadJS))
		if err != nil {
			t.Fatalf("%s: images: %v", path, err)
		}
		return load
	}

	// The checks catch a broken page: a missing image, a console error and an
	// exception.
	load := open(bad)
	got := problems.take()
	if load.Total != 1 || load.Loaded != 0 || len(got) < 2 {
		t.Fatalf("broken page: %d of %d images loaded, problems %q: the checks would miss a broken report", load.Loaded, load.Total, got)
	}
	t.Logf("the broken page's problems, as they should be: %q", got)

	load = open(good)
	if load.Total != wantImages || load.Loaded != wantImages {
		t.Errorf("%d of %d images loaded, want %d of %d", load.Loaded, load.Total, wantImages, wantImages)
	}
	shot, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if got := problems.take(); len(got) > 0 {
		t.Errorf("console of the report: %q", got)
	}
	shotPath := filepath.Join(dir, "report.png")
	if err := os.WriteFile(shotPath, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("screenshot %s: %v", shotPath, err)
	}
	size := img.Bounds().Size()
	// The page is longer than the 900-pixel window: the full-page shot has it all.
	if size.X == 0 || size.Y <= 900 {
		t.Errorf("screenshot of %v pixels, want the whole page, taller than the window", size)
	}
	if c := distinctColors(img, 50); c < 50 {
		t.Errorf("screenshot has %d colours: a blank or uniform page", c)
	}
	// CERTIFY_KEEP_HTML=DIR keeps the page and its screenshot, to look at.
	if keep := os.Getenv("CERTIFY_KEEP_HTML"); keep != "" {
		for name, data := range map[string][]byte{"report.html": b.Bytes(), "report.png": shot} {
			if err := os.WriteFile(filepath.Join(keep, name), data, 0o644); err != nil {
				t.Error(err)
			}
		}
	}
}
