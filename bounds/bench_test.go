package bounds

import (
	"testing"

	"github.com/certify-dev/certify/nets"
)

// benchCase loads a shipped model and a batch of 32 test samples with radius 0.01
// and their robustness specs.
func benchCase(b *testing.B, model string) (*nets.Graph, Box, []Spec) {
	b.Helper()
	g, x, labels := loadMNIST(b, "../testdata/"+model+".onnx", 32)
	return g, LinfBox(x, 0.01, 0, 1), robustnessSpecs(b, labels)
}

// benchmark runs f on both shipped models and reports the time per sample.
func benchmark(b *testing.B, f func(g *nets.Graph, box Box, specs []Spec, opt Options) error) {
	for _, model := range []string{"mnist_mlp", "mnist_cnn"} {
		for _, sound := range []bool{false, true} {
			name := model
			if sound {
				name += "-soundfp"
			}
			b.Run(name, func(b *testing.B) {
				g, box, specs := benchCase(b, model)
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if err := f(g, box, specs, Options{SoundFP: sound}); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Microseconds())/1e3/float64(b.N*len(specs)), "ms/sample")
			})
		}
	}
}

func BenchmarkIBP(b *testing.B) {
	benchmark(b, func(g *nets.Graph, box Box, specs []Spec, opt Options) error {
		_, err := SpecIBP(g, box, specs, opt)
		return err
	})
}

func BenchmarkCROWN(b *testing.B) {
	benchmark(b, func(g *nets.Graph, box Box, specs []Spec, opt Options) error {
		_, err := CROWN(g, box, specs, opt)
		return err
	})
}

func BenchmarkAlphaCROWN(b *testing.B) {
	benchmark(b, func(g *nets.Graph, box Box, specs []Spec, opt Options) error {
		_, err := AlphaCROWN(g, box, specs, AlphaOptions{Options: opt})
		return err
	})
}
