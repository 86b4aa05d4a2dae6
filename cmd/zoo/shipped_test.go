package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/certify-dev/certify/defenses"
	"github.com/certify-dev/certify/nets"
)

// The committed table belongs to the committed models: every row of
// testdata/zoo.json names a member of the zoo whose file loads, and the member's
// clean accuracy recomputed here (independently of the evaluator: a plain argmax
// per image, a rejection counting as wrong) equals the row's. Every member is in
// the table, none skipped.
func TestShippedZooTable(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(testdata, "zoo.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rows []Row
	if err := json.Unmarshal(raw, &rows); err != nil {
		t.Fatal(err)
	}
	x, labels := testImages(t, 1000)
	seen := map[string]bool{}
	checked := map[string]bool{}
	for _, r := range rows {
		seen[r.Defense] = true
		if r.N == 0 || r.Clean == nil {
			t.Errorf("%s ε=%g: not evaluated (%s)", r.Defense, r.Epsilon, r.Notes)
			continue
		}
		if checked[r.Defense] {
			continue
		}
		checked[r.Defense] = true
		m, err := defenses.Load(filepath.Join(testdata, r.Model))
		if err != nil {
			t.Fatalf("%s: %v", r.Defense, err)
		}
		xs := nets.FromData(x.Data[:r.N*784], r.N, 1, 28, 28)
		z, err := m.Logits(xs)
		if err != nil {
			t.Fatalf("%s: %v", r.Defense, err)
		}
		correct := 0
		for i, p := range z.Argmax() {
			if p == labels[i] {
				correct++
			}
		}
		if got := float64(correct) / float64(r.N); got != *r.Clean {
			t.Errorf("%s: clean accuracy %g on %d images, the table says %g", r.Defense, got, r.N, *r.Clean)
		}
	}
	for _, m := range zoo() {
		if !seen[m.Defense] {
			t.Errorf("member %s is not in testdata/zoo.json", m.Defense)
		}
	}
}
