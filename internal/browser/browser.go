// Package browser opens an HTML file in headless Chromium and reports what a
// reader would see: whether every image loaded, what the DevTools console said,
// and a full-page screenshot. The HTML report's tests use it to show that the
// page renders in a real browser, not only that its bytes look right.
package browser

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// The browser window's size in CSS pixels. A page longer than WindowHeight
// makes a full-page screenshot taller than the window.
const (
	WindowWidth  = 1280
	WindowHeight = 900
)

// Find returns the path of a Chromium-based browser: Debian's chromium package,
// another distribution's name for it, or Google Chrome; "" when there is none.
func Find() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "/usr/bin/chromium"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// Page is what the browser showed of an HTML file.
type Page struct {
	// Images is the number of <img> elements, Loaded the number that loaded
	// (complete, with a natural width: a missing file or a corrupt data: URI
	// is not loaded).
	Images, Loaded int
	// Problems is what a reader opening DevTools would see as a problem: every
	// call of the console API, every uncaught exception, and the browser log's
	// warnings and errors (a failed image load is one), in order.
	Problems []string
	// Screenshot is a PNG of the whole page, WindowWidth wide and at least
	// WindowHeight tall.
	Screenshot []byte
}

// Browser is a running headless browser. Each Open uses a new tab, so that
// one page's late events are not taken for another's.
type Browser struct {
	path   string
	ctx    context.Context // the browser's chromedp context
	cancel func()
}

// Start starts the browser at browserPath (see Find), headless, without
// sandbox (tests run as root in containers) or GPU, in a window of
// WindowWidth×WindowHeight. It lives until Close or the end of ctx, whose
// deadline bounds every Open.
func Start(ctx context.Context, browserPath string) (*Browser, error) {
	if browserPath == "" {
		return nil, fmt.Errorf("start browser: no path (no chromium, chromium-browser or google-chrome on PATH?)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browserPath), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.WindowSize(WindowWidth, WindowHeight))
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	b := &Browser{path: browserPath, ctx: bctx, cancel: func() { cancelBrowser(); cancelAlloc() }}
	if err := chromedp.Do(bctx); err != nil { // starts the browser
		b.cancel()
		return nil, fmt.Errorf("start %s: %w", browserPath, err)
	}
	return b, nil
}

// Close stops the browser.
func (b *Browser) Close() {
	b.cancel()
}

// imageLoadJS counts the page's images and those that loaded.
const imageLoadJS = `(() => {
	const im = Array.from(document.images);
	return {total: im.length, loaded: im.filter(i => i.complete && i.naturalWidth > 0).length};
})()`

type imageLoad struct {
	Total  int `json:"total"`
	Loaded int `json:"loaded"`
}

// Open loads the HTML file at htmlPath in a new tab, waits for the page to
// load, and returns what it showed. An error means the page could not be
// shown at all (no such file, the browser died, the deadline passed); a page
// that shows with problems is no error: its Page says what they are.
func (b *Browser) Open(htmlPath string) (Page, error) {
	abs, err := filepath.Abs(htmlPath)
	if err != nil {
		return Page{}, fmt.Errorf("open %s: %w", htmlPath, err)
	}
	// Chromium shows its own error page for a missing file, with no error
	// from the navigation: check first.
	if st, err := os.Stat(abs); err != nil {
		return Page{}, fmt.Errorf("open %s: %w", htmlPath, err)
	} else if st.IsDir() {
		return Page{}, fmt.Errorf("open %s: a directory, not an HTML file", htmlPath)
	}
	tctx, cancel := chromedp.NewContext(b.ctx)
	defer cancel()
	var problems consoleProblems
	if err := chromedp.Listen(tctx, problems.listen); err != nil { // opens the tab
		return Page{}, fmt.Errorf("open %s: new tab of %s: %w", htmlPath, b.path, err)
	}
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}
	if err := chromedp.Do(tctx, chromedp.Navigate(u.String()), chromedp.WaitReady("body")); err != nil {
		return Page{}, fmt.Errorf("open %s: %w", htmlPath, err)
	}
	load, err := chromedp.Run(tctx, chromedp.Evaluate[imageLoad](imageLoadJS))
	if err != nil {
		return Page{}, fmt.Errorf("open %s: count images: %w", htmlPath, err)
	}
	// Quality 100 makes the screenshot a PNG (less is JPEG).
	shot, err := chromedp.Run(tctx, chromedp.FullScreenshot(100))
	if err != nil {
		return Page{}, fmt.Errorf("open %s: screenshot: %w", htmlPath, err)
	}
	return Page{Images: load.Total, Loaded: load.Loaded, Problems: problems.take(), Screenshot: shot}, nil
}

// Open starts the browser at browserPath, opens the HTML file at htmlPath (see
// Browser.Open) and stops the browser: for a test that looks at one page.
func Open(ctx context.Context, browserPath, htmlPath string) (Page, error) {
	b, err := Start(ctx, browserPath)
	if err != nil {
		return Page{}, err
	}
	defer b.Close()
	return b.Open(htmlPath)
}

// consoleProblems records the problems of a tab from its events (see
// Page.Problems). listen runs on chromedp's reading goroutine, so it only
// formats and appends, under a lock.
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
			if len(a.Value) > 0 {
				args = append(args, string(a.Value))
			} else {
				args = append(args, a.Description)
			}
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
