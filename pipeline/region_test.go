package pipeline

import (
	"math"
	"strings"
	"testing"

	"github.com/certify-dev/certify/nets"
)

func TestParseNorm(t *testing.T) {
	for in, want := range map[string]Norm{"linf": LInf, "LInf": LInf, "l2": L2, "L2": L2} {
		if got, err := ParseNorm(in); err != nil || got != want {
			t.Errorf("ParseNorm(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "l1", "inf", "linf "} {
		if _, err := ParseNorm(in); err == nil {
			t.Errorf("ParseNorm(%q) accepted", in)
		}
	}
}

func TestDomainValidate(t *testing.T) {
	for _, d := range []Domain{{0, 1}, {-1, 1}, {0, 255}} {
		if err := d.Validate(); err != nil {
			t.Errorf("%v: %v", d, err)
		}
	}
	for _, d := range []Domain{{1, 1}, {1, 0}, {math.NaN(), 1}, {0, math.Inf(1)}} {
		if err := d.Validate(); err == nil {
			t.Errorf("%v accepted", d)
		}
	}
}

func TestBox(t *testing.T) {
	c := nets.FromData([]float64{0, 0.05, 0.5, 0.97, 1}, 1, 5)
	for _, norm := range []Norm{LInf, L2} {
		lo, hi := Region{Center: c, Norm: norm, Radius: 0.1, Domain: Domain{0, 1}}.Box()
		wantLo := []float64{0, 0, 0.4, 0.87, 0.9}
		wantHi := []float64{0.1, 0.15, 0.6, 1, 1}
		for i := range wantLo {
			if math.Abs(lo.Data[i]-wantLo[i]) > 1e-15 || math.Abs(hi.Data[i]-wantHi[i]) > 1e-15 {
				t.Errorf("%s element %d: [%v,%v], want [%v,%v]", norm, i, lo.Data[i], hi.Data[i], wantLo[i], wantHi[i])
			}
		}
		if !nets.SameShape(lo.Shape, c.Shape) || !nets.SameShape(hi.Shape, c.Shape) {
			t.Errorf("box shapes %v %v, want %v", lo.Shape, hi.Shape, c.Shape)
		}
	}
}

func TestDistance(t *testing.T) {
	x, c := []float64{3, 0, -4}, []float64{0, 0, 0}
	if d := Distance(LInf, x, c); d != 4 {
		t.Errorf("linf %v, want 4", d)
	}
	if d := Distance(L2, x, c); d != 5 {
		t.Errorf("l2 %v, want 5", d)
	}
}

func TestRegionCheck(t *testing.T) {
	c := nets.FromData([]float64{0.5, 0.5}, 1, 2)
	tests := []struct {
		norm Norm
		x    []float64
		want string // "" for inside
	}{
		{LInf, []float64{0.6, 0.4}, ""},
		{LInf, []float64{0.6 + 1e-12, 0.4}, ""}, // rounding slack
		{LInf, []float64{0.61, 0.5}, "linf distance"},
		{L2, []float64{0.6, 0.5}, ""},
		{L2, []float64{0.5 + 0.1/math.Sqrt2, 0.5 + 0.1/math.Sqrt2}, ""},
		{L2, []float64{0.6, 0.4}, "l2 distance"},
		{LInf, []float64{0.5, math.NaN()}, "outside the domain"},
		{LInf, []float64{0.5}, "has 1 values"},
	}
	for _, tc := range tests {
		r := Region{Center: c, Norm: tc.norm, Radius: 0.1, Domain: Domain{0, 1}}
		err := r.check(tc.x)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s %v: error %v, want %q", tc.norm, tc.x, err, tc.want)
		}
	}
	// Domain clipping: a point at radius but outside [0,1].
	r := Region{Center: nets.FromData([]float64{0.95}, 1, 1), Norm: LInf, Radius: 0.1, Domain: Domain{0, 1}}
	if err := r.check([]float64{1.05}); err == nil || !strings.Contains(err.Error(), "domain") {
		t.Errorf("point outside the domain: %v", err)
	}
}

func TestSampleSeed(t *testing.T) {
	seen := map[int64]bool{}
	for seed := int64(0); seed < 3; seed++ {
		for i := 0; i < 100; i++ {
			s := SampleSeed(seed, i)
			if s != SampleSeed(seed, i) {
				t.Fatal("not deterministic")
			}
			if seen[s] {
				t.Errorf("seed %d index %d: repeated %d", seed, i, s)
			}
			seen[s] = true
		}
	}
}
