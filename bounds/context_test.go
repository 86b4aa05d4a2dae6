package bounds

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
)

// Options.Context: an ended context stops CROWN and alpha-CROWN with its error;
// one that does not end changes no bound.
func TestContext(t *testing.T) {
	for _, tn := range testNets(9) {
		if tn.name != "mlp-relu" && tn.name != "cnn-bn-maxpool" {
			continue
		}
		r := rand.New(rand.NewPCG(9, 10))
		box, _ := randomBoxes(r, 4, tn.in)
		y, err := IBP(tn.g, box, Options{})
		if err != nil {
			t.Fatal(err)
		}
		out := y[tn.g.Outputs[0].Name]
		specs := randomSpecs(r, 4, 3, out.Lo.Len()/out.Lo.Batch())
		done, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := CROWN(tn.g, box, specs, Options{Context: done}); !errors.Is(err, context.Canceled) {
			t.Errorf("%s: CROWN with an ended context: %v", tn.name, err)
		}
		if _, err := AlphaCROWN(tn.g, box, specs, AlphaOptions{Options: Options{Context: done, IntermediateAlpha: 3}}); !errors.Is(err, context.Canceled) {
			t.Errorf("%s: alpha-CROWN with an ended context: %v", tn.name, err)
		}
		plain, err := AlphaCROWN(tn.g, box, specs, AlphaOptions{Iterations: 5})
		if err != nil {
			t.Fatal(err)
		}
		live, err := AlphaCROWN(tn.g, box, specs, AlphaOptions{Options: Options{Context: context.Background()}, Iterations: 5})
		if err != nil {
			t.Fatal(err)
		}
		for i := range plain.Lower {
			if !slices.Equal(plain.Lower[i], live.Lower[i]) {
				t.Errorf("%s: a live context changed sample %d's bounds", tn.name, i)
			}
		}
	}
}
