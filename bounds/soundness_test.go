package bounds

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/certify-dev/certify/nets"
)

// tolerance is how far a float evaluation may pass a bound: nothing with SoundFP
// (the bound covers the network's own rounding), rounding noise without it.
func tolerance(sound bool, v float64) float64 {
	if sound {
		return 0
	}
	return 1e-9 * (1 + math.Abs(v))
}

// reporter is what the checks need of a *testing.T (a counter can stand in).
type reporter interface {
	Helper()
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
}

// counter is a reporter that only counts the errors.
type counter struct{ errors int }

func (c *counter) Helper()                      {}
func (c *counter) Errorf(string, ...any)        { c.errors++ }
func (c *counter) Fatalf(f string, args ...any) { c.errors++ }

// checkBoxes checks that every value of the forward pass on the points (p per
// sample) lies in its box.
func checkBoxes(t reporter, what string, boxes map[string]Box, vals nets.Values, n, p int, sound bool) {
	t.Helper()
	for name, b := range boxes {
		v, ok := vals[name]
		if !ok || b.Lo.Len()%n != 0 || v.Len() != b.Lo.Len()*p {
			continue // constants and params (not batched)
		}
		per := b.Lo.Len() / n
		bad := 0
		for q := 0; q < n*p; q++ {
			i := q / p
			for j := 0; j < per; j++ {
				x, lo, hi := v.Data[q*per+j], b.Lo.Data[i*per+j], b.Hi.Data[i*per+j]
				if math.IsNaN(lo) || math.IsNaN(hi) || x < lo-tolerance(sound, x) || x > hi+tolerance(sound, x) {
					if bad++; bad <= 3 {
						t.Errorf("%s: value %q sample %d element %d: %v outside [%v, %v]", what, name, i, j, x, lo, hi)
					}
				}
			}
		}
	}
}

// specValues evaluates C·y + D for every point (p per sample).
func specValues(specs []Spec, y *nets.Tensor, p int) [][][]float64 {
	k := y.Len() / y.Batch()
	out := make([][][]float64, len(specs))
	for i, s := range specs {
		for q := 0; q < p; q++ {
			row := y.Data[(i*p+q)*k : (i*p+q+1)*k]
			vals := make([]float64, len(s.C))
			for r, c := range s.C {
				v := s.D[r]
				for j, w := range c {
					v += w * row[j]
				}
				vals[r] = v
			}
			out[i] = append(out[i], vals)
		}
	}
	return out
}

// checkLower checks that every spec value is at least its proven lower bound.
func checkLower(t reporter, what string, lower [][]float64, vals [][][]float64, sound bool) {
	t.Helper()
	for i := range vals {
		if len(lower[i]) != len(vals[i][0]) {
			t.Fatalf("%s sample %d: %d bounds for %d rows", what, i, len(lower[i]), len(vals[i][0]))
		}
		for _, pt := range vals[i] {
			for r, v := range pt {
				if b := lower[i][r]; math.IsNaN(b) || b > v+tolerance(sound, v) {
					t.Errorf("%s sample %d row %d: bound %v above the value %v: UNSOUND", what, i, r, b, v)
				}
			}
		}
	}
}

// TestSoundness: on random networks of every supported op (testNets), for boxes
// of several radii with degenerate coordinates, every value of the network at
// sampled points (centre, corners, uniform) lies in its IBP box and in the boxes
// CROWN used, and every spec value is at least the IBP, CROWN and alpha-CROWN
// bounds; with SoundFP exactly, without up to rounding noise. Per row, CROWN ≥
// IBP and alpha-CROWN ≥ CROWN. IBP-only ops make CROWN fail with ErrUnsupported,
// naming the node.
func TestSoundness(t *testing.T) {
	const n, p = 6, 40
	for seed := uint64(1); seed <= 3; seed++ {
		for _, tn := range testNets(seed) {
			r := rand.New(rand.NewPCG(seed, 99))
			box, _ := randomBoxes(r, n, tn.in)
			pts := samplePoints(r, box, p)
			vals, err := tn.g.Forward(map[string]*nets.Tensor{"x": pts})
			if err != nil {
				t.Fatalf("%s: forward: %v", tn.name, err)
			}
			y := vals[tn.g.Outputs[0].Name]
			specs := randomSpecs(r, n, 3, y.Len()/y.Batch())
			sv := specValues(specs, y, p)
			for _, sound := range []bool{false, true} {
				what := fmt.Sprintf("seed %d %s sound=%v", seed, tn.name, sound)
				opt := Options{SoundFP: sound}
				boxes, err := IBP(tn.g, box, opt)
				if err != nil {
					t.Fatalf("%s: IBP: %v", what, err)
				}
				checkBoxes(t, what+" IBP", boxes, vals, n, p, sound)
				ibp, err := SpecIBP(tn.g, box, specs, opt)
				if err != nil {
					t.Fatalf("%s: SpecIBP: %v", what, err)
				}
				checkLower(t, what+" SpecIBP", ibp.Lower, sv, sound)
				crown, err := CROWN(tn.g, box, specs, opt)
				if !tn.crown {
					if !errors.Is(err, ErrUnsupported) || !errors.Is(err, nets.ErrUnsupported) {
						t.Errorf("%s: CROWN error %v, want ErrUnsupported", what, err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("%s: CROWN: %v", what, err)
				}
				checkBoxes(t, what+" CROWN", crown.Nodes, vals, n, p, sound)
				checkLower(t, what+" CROWN", crown.Lower, sv, sound)
				alpha, err := AlphaCROWN(tn.g, box, specs, AlphaOptions{Options: opt, Iterations: 10})
				if err != nil {
					t.Fatalf("%s: AlphaCROWN: %v", what, err)
				}
				checkLower(t, what+" AlphaCROWN", alpha.Lower, sv, sound)
				for i := range specs {
					for q := range specs[i].C {
						if crown.Lower[i][q] < ibp.Lower[i][q] {
							t.Errorf("%s sample %d row %d: CROWN %v < IBP %v", what, i, q, crown.Lower[i][q], ibp.Lower[i][q])
						}
						if alpha.Lower[i][q] < crown.Lower[i][q] {
							t.Errorf("%s sample %d row %d: alpha-CROWN %v < CROWN %v", what, i, q, alpha.Lower[i][q], crown.Lower[i][q])
						}
					}
				}
			}
		}
	}
}
