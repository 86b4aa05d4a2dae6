package browser

import (
	"os"
	"testing"
)

// Require returns the path of the browser (see Find) for a test that needs one,
// and skips the test when there is none, or fails it when the environment sets
// CERTIFY_REQUIRE_BROWSER=1 (CI, where a skipped browser test would hide a
// broken report).
func Require(t testing.TB) string {
	t.Helper()
	p := Find()
	if p != "" {
		return p
	}
	if os.Getenv("CERTIFY_REQUIRE_BROWSER") == "1" {
		t.Fatal("no chromium, chromium-browser or google-chrome on PATH, and CERTIFY_REQUIRE_BROWSER=1 (apt-get install chromium)")
	}
	t.Skip("no chromium, chromium-browser or google-chrome on PATH (set CERTIFY_REQUIRE_BROWSER=1 to fail instead)")
	return ""
}
