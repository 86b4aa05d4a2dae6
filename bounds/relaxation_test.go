package bounds

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/certify-dev/certify/nets"
)

// intervals returns test intervals [l, u]: random ones of every width and sign,
// plus the edge cases (points, touching 0, huge, tiny).
func intervals(r *rand.Rand) [][2]float64 {
	out := [][2]float64{{-1, 1}, {0, 1}, {-1, 0}, {0, 0}, {2, 2}, {-3, -3}, {-1e-12, 1e-12},
		{-50, 60}, {-800, 700}, {30, 40}, {-40, -30}, {-1e-9, 3}, {-3, 1e-9}, {-0.1, 20}, {-20, 0.1}}
	for i := 0; i < 3000; i++ {
		scale := math.Pow(10, 3*r.Float64()-2)
		a, b := scale*r.NormFloat64(), scale*r.NormFloat64()
		out = append(out, [2]float64{min(a, b), max(a, b)})
	}
	return out
}

// TestSCurveRelaxation: the lines relaxS returns bound sigmoid and tanh on the
// whole interval (checked on a fine grid and the ends), and each line touches or
// nearly touches the curve: no line is looser than the constant bounds f(l),
// f(u) at both ends.
func TestSCurveRelaxation(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, c := range []sCurve{sigmoidCurve{}, tanhCurve{}} {
		for _, iv := range intervals(r) {
			lo, hi := iv[0], iv[1]
			al, tl, au, tu := relaxS(c, lo, hi)
			for k := 0; k <= 400; k++ {
				x := lo + (hi-lo)*float64(k)/400
				if k == 400 {
					x = hi
				}
				f := c.f(x)
				tol := 1e-12 * (1 + math.Abs(x))
				if l := al*x + tl; l > f+tol {
					t.Fatalf("%s on [%v, %v]: lower line %v·x + %v = %v above f(%v) = %v", c.name(), lo, hi, al, tl, l, x, f)
				}
				if u := au*x + tu; u < f-tol {
					t.Fatalf("%s on [%v, %v]: upper line %v·x + %v = %v below f(%v) = %v", c.name(), lo, hi, au, tu, u, x, f)
				}
			}
			// Not looser than the trivial constant bounds at both ends at once.
			if al*lo+tl < c.f(lo)-1e-9 && al*hi+tl < c.f(lo)-1e-9 {
				t.Errorf("%s on [%v, %v]: lower line below f(l) on the whole interval", c.name(), lo, hi)
			}
			if au*lo+tu > c.f(hi)+1e-9 && au*hi+tu > c.f(hi)+1e-9 {
				t.Errorf("%s on [%v, %v]: upper line above f(u) on the whole interval", c.name(), lo, hi)
			}
		}
	}
}

// TestSCurveDerivative checks df against central differences and the tails.
func TestSCurveDerivative(t *testing.T) {
	for _, c := range []sCurve{sigmoidCurve{}, tanhCurve{}} {
		for _, x := range []float64{-30, -5, -1, -0.3, 0, 0.2, 0.7, 3, 12} {
			h := 1e-6
			fd := (c.f(x+h) - c.f(x-h)) / (2 * h)
			if d := c.df(x); math.Abs(d-fd) > 1e-8 {
				t.Errorf("%s'(%v) = %v, central difference %v", c.name(), x, d, fd)
			}
		}
		if d := c.df(800); d != 0 && !(d > 0 && d < 1e-300) {
			t.Errorf("%s'(800) = %v", c.name(), d)
		}
	}
}

// layerFor builds the engine of a one-node graph x → op → y over the box and
// returns the node's layer, linearized.
func layerFor(t *testing.T, op nets.Op, box Box, opt Options) (*engine, layer) {
	t.Helper()
	g := &nets.Graph{Inputs: []nets.ValueInfo{{Name: "x"}}, Outputs: []nets.ValueInfo{{Name: "y"}},
		Nodes: []*nets.Node{{Name: "y", Op: op, Inputs: []string{"x"}, Outputs: []string{"y"}}}}
	e, err := newEngine(g, box, opt, true)
	if err != nil {
		t.Fatal(err)
	}
	return e, e.layers[0]
}

// TestActivationLines: the per-neuron lines that the ReLU, sigmoid and tanh
// layers use (after SoundFP's widening too) bound the network's own float64
// evaluation on a grid of every interval, with no tolerance when SoundFP is set.
func TestActivationLines(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	ivs := intervals(r)
	box := Box{Lo: nets.NewTensor(1, len(ivs)), Hi: nets.NewTensor(1, len(ivs))}
	for i, iv := range ivs {
		box.Lo.Data[i], box.Hi.Data[i] = iv[0], iv[1]
	}
	for _, op := range []nets.Op{nets.Relu{}, nets.Sigmoid{}, nets.Tanh{}} {
		for _, sound := range []bool{false, true} {
			_, l := layerFor(t, op, box, Options{SoundFP: sound})
			lines := func(g int) (al, tl, au, tu float64) {
				switch l := l.(type) {
				case *reluLayer:
					return l.lsl[g], 0, l.usl[g], l.icpt[g]
				case *sShapedLayer:
					return l.al[g], l.tl[g], l.au[g], l.tu[g]
				}
				t.Fatalf("layer %T", l)
				return
			}
			pts := nets.NewTensor(401, len(ivs))
			for k := 0; k <= 400; k++ {
				for i, iv := range ivs {
					x := iv[0] + (iv[1]-iv[0])*float64(k)/400
					if k == 400 {
						x = iv[1]
					}
					pts.Data[k*len(ivs)+i] = x
				}
			}
			ys, err := op.Forward([]*nets.Tensor{pts})
			if err != nil {
				t.Fatal(err)
			}
			for k := 0; k <= 400; k++ {
				for i := range ivs {
					q := k*len(ivs) + i
					x, y := pts.Data[q], ys[0].Data[q]
					al, tl, au, tu := lines(i)
					tol := 0.0
					if !sound {
						tol = 1e-12 * (1 + math.Abs(x))
					}
					lo, hi := al*x+tl, au*x+tu
					if sound {
						// The lines must hold in exact arithmetic: compare exactly.
						if exactLine(al, x, tl).Cmp(new(big.Float).SetFloat64(y)) > 0 ||
							exactLine(au, x, tu).Cmp(new(big.Float).SetFloat64(y)) < 0 {
							t.Fatalf("%s SoundFP on [%v, %v]: at %v the value %v is outside [%v, %v] in exact arithmetic", op.OpType(), ivs[i][0], ivs[i][1], x, y, lo, hi)
						}
					}
					if lo > y+tol || hi < y-tol {
						t.Fatalf("%s sound=%v on [%v, %v]: at %v the value %v is outside [%v, %v]", op.OpType(), sound, ivs[i][0], ivs[i][1], x, y, lo, hi)
					}
				}
			}
		}
	}
}

// TestReluAdaptiveSlope: CROWN's lower slope is 1 where u ≥ −l, else 0, stable
// neurons are exact, and the chord passes through (l, 0) and (u, u).
func TestReluAdaptiveSlope(t *testing.T) {
	box := Box{Lo: nets.FromData([]float64{-1, -3, 0.5, -2, -1}, 1, 5), Hi: nets.FromData([]float64{2, 1, 4, -0.5, 1}, 1, 5)}
	_, l := layerFor(t, nets.Relu{}, box, Options{})
	rl := l.(*reluLayer)
	want := []struct{ lsl, usl, icpt float64 }{{1, 2.0 / 3, 2.0 / 3}, {0, 0.25, 0.75}, {1, 1, 0}, {0, 0, 0}, {1, 0.5, 0.5}}
	for g, w := range want {
		if rl.lsl[g] != w.lsl || math.Abs(rl.usl[g]-w.usl) > 1e-15 || math.Abs(rl.icpt[g]-w.icpt) > 1e-15 {
			t.Errorf("neuron %d on [%v, %v]: lines (%v; %v, %v), want (%v; %v, %v)", g, box.Lo.Data[g], box.Hi.Data[g],
				rl.lsl[g], rl.usl[g], rl.icpt[g], w.lsl, w.usl, w.icpt)
		}
	}
}

// exactLine returns a·x + t in exact arithmetic.
func exactLine(a, x, t float64) *big.Float {
	const prec = 2200 // exact for products and sums of float64
	p := new(big.Float).SetPrec(prec).SetFloat64(a)
	p.Mul(p, new(big.Float).SetPrec(prec).SetFloat64(x))
	return p.Add(p, new(big.Float).SetPrec(prec).SetFloat64(t))
}
