package progress

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNewNotTerminal: New gives Lines with DefaultInterval on writers that are not
// terminals: a buffer, a regular file, a pipe, nil.
func TestNewNotTerminal(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	var nilFile *os.File
	for name, out := range map[string]interface{ Write([]byte) (int, error) }{
		"buffer": &bytes.Buffer{}, "file": f, "pipe": w, "nil file": nilFile,
	} {
		d := New(out)
		l, ok := d.(*Lines)
		if !ok {
			t.Errorf("%s: New gave %T, want *Lines", name, d)
			continue
		}
		if l.interval != DefaultInterval {
			t.Errorf("%s: interval %v, want %v", name, l.interval, DefaultInterval)
		}
	}
	if _, ok := New(nil).(*Lines); !ok {
		t.Error("New(nil) is not *Lines")
	}
}

// TestNewFile: through New, a regular file gets the summary lines and no bar.
func TestNewFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	d := New(f)
	d.Start("pgd", 3)
	d.Add(3)
	d.Done("pgd: 1/3 adversarial examples found (0.01s)")
	d.Start("clean", 0)
	d.Done("clean: 3/3 correct")
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// The stage lasts far less than DefaultInterval: only the summaries.
	want := "pgd: 1/3 adversarial examples found (0.01s)\nclean: 3/3 correct\n"
	if string(got) != want || strings.Contains(string(got), "\r") {
		t.Errorf("file holds %q, want %q", got, want)
	}
}
