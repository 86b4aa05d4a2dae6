package main

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/certify-dev/certify/internal/cli"
	"github.com/certify-dev/certify/pipeline"
	"github.com/certify-dev/certify/verify"
)

// limitReport runs certify with args on the shipped MLP and returns its --json
// report, decoded both ways.
func limitReport(t *testing.T, args ...string) (pipeline.Report, map[string]any) {
	t.Helper()
	rep, raw, _, _ := okReport(t, append(append(args, "-q"), shippedMLP)...)
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return rep, m
}

// TestLPSizeLimitMNIST: the shipped MLP's LP has about 89,000 nonzeros (784
// inputs, 100 + 100 ReLUs: W1 78,400 and W2 10,000 of them), so with
// --max-lp-size 10 no LP is built: at the default radius 0.1, where α-CROWN
// proves nothing, every correctly classified sample is unknown "lp size" for
// lp and lp-all, and summary.unknown counts them; the run still exits 0.
func TestLPSizeLimitMNIST(t *testing.T) {
	if testing.Short() {
		t.Skip("MNIST model")
	}
	rep, m := limitReport(t, "--methods", "lp,lp-all", "--max-lp-size", "10", "--attacks", "none", "-n", "3")
	correct := 0
	for _, s := range rep.Samples {
		if !s.Correct() {
			if len(s.Unknown) != 0 {
				t.Errorf("sample %d (misclassified): unknown %v", s.Index, s.Unknown)
			}
			continue
		}
		correct++
		want := map[string]string{"lp": verify.ReasonLPSize, "lp-all": verify.ReasonLPSize}
		if !reflect.DeepEqual(s.Unknown, want) || s.Certified["lp"] || s.Certified["lp-all"] {
			t.Errorf("sample %d: unknown %v, certified %v; want unknown %v, not certified", s.Index, s.Unknown, s.Certified, want)
		}
	}
	if correct == 0 {
		t.Fatal("no correctly classified sample: the test checks nothing")
	}
	if got := rep.Summary.Unknown; got["lp"] != correct || got["lp-all"] != correct {
		t.Errorf("summary.unknown %v, want lp and lp-all %d", got, correct)
	}
	// The JSON spelling, as a reader of the report sees it.
	s0 := m["samples"].([]any)[0].(map[string]any)
	if u, _ := s0["unknown"].(map[string]any); u["lp"] != "lp size" {
		t.Errorf("samples[0].unknown %v, want lp: \"lp size\"", s0["unknown"])
	}
}

// TestBaBDomainLimitMNIST: at radius 0.02, samples 4, 5 and 7 of the shipped
// MLP need splitting: α-CROWN does not verify them and the unlimited BaB does
// (margins 0.0006, 0.028 and 1e-5, measured with certify --methods
// alpha-crown,bab --radius 0.02 -n 8, 85 s). With --max-domains 1 the root
// cannot be split: they are unknown "bab domains", the samples α-CROWN
// verifies stay certified, and summary.unknown.bab counts the unknown ones.
func TestBaBDomainLimitMNIST(t *testing.T) {
	if testing.Short() {
		t.Skip("MNIST model")
	}
	rep, _ := limitReport(t, "--methods", "alpha-crown,bab", "--max-domains", "1", "--attacks", "none", "--radius", "0.02", "-n", "8")
	unknown := 0
	for _, s := range rep.Samples {
		if !s.Correct() {
			continue
		}
		reason, isUnknown := s.Unknown["bab"]
		switch {
		case s.Certified["alpha-crown"] && !s.Certified["bab"]:
			t.Errorf("sample %d: α-CROWN verifies it, bab does not (%q)", s.Index, reason)
		case s.Certified["bab"] && isUnknown:
			t.Errorf("sample %d: bab certified and unknown %q", s.Index, reason)
		case isUnknown && reason != verify.ReasonBaBDomains:
			t.Errorf("sample %d: bab unknown %q, want %q", s.Index, reason, verify.ReasonBaBDomains)
		}
		if isUnknown {
			unknown++
		}
	}
	for _, i := range []int{4, 5, 7} {
		if s := rep.Samples[i]; s.Unknown["bab"] != verify.ReasonBaBDomains {
			t.Errorf("sample %d (needs splitting): certified %v, unknown %v; want bab unknown %q", i, s.Certified, s.Unknown, verify.ReasonBaBDomains)
		}
	}
	if rep.Summary.Unknown["bab"] != unknown {
		t.Errorf("summary.unknown.bab %d, want %d", rep.Summary.Unknown["bab"], unknown)
	}
}

// TestLimitFlagErrors: bad limit values are usage errors (exit 2) naming the
// flag.
func TestLimitFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--max-lp-size", "0"}, "--max-lp-size 0: want >= 1"},
		{[]string{"--max-lp-size", "-3"}, "--max-lp-size -3: want >= 1"},
		{[]string{"--max-lp-size", "many"}, `invalid argument "many" for "--max-lp-size"`},
		{[]string{"--max-domains", "-1"}, "--max-domains -1: want >= 0"},
		{[]string{"--max-domains", "1e6"}, `invalid argument "1e6" for "--max-domains"`},
		{[]string{"--total-timeout", "-1s"}, "--total-timeout -1s: want >= 0"},
	} {
		code, stdout, stderr := runCmd(append(tc.args, "m.onnx")...)
		if code != cli.ExitUsage || stdout != "" || !strings.Contains(stderr, tc.want) {
			t.Errorf("%q: exit %d, stderr %q, stdout %q; want exit 2 and %q", tc.args, code, stderr, stdout, tc.want)
		}
	}
}

// TestMethodsUseLimits: the lp, lp-all and bab constructors pass the limits on.
func TestMethodsUseLimits(t *testing.T) {
	o := stageOptions{SoundFP: true, Seed: 3, Limits: limitOptions{maxLPSize: 1234, maxDomains: 56}}
	ms := methods()
	for _, tc := range []struct {
		name string
		want verify.BatchVerifier
	}{
		{"lp", verify.LP{SoundFP: true, MaxNonzeros: 1234}},
		{"lp-all", verify.LP{SoundFP: true, All: true, MaxNonzeros: 1234}},
		{"bab", verify.BaB{SoundFP: true, Seed: 3, MaxDomains: 56, MaxLPNonzeros: 1234}},
	} {
		vm, ok := ms[tc.name](o).(verifierMethod)
		if !ok || !reflect.DeepEqual(vm.v, tc.want) {
			t.Errorf("%s: %#v, want %#v", tc.name, ms[tc.name](o), tc.want)
		}
	}
}
