package verify

import (
	"testing"
	"time"

	"github.com/certify-dev/certify/bounds"
	"github.com/certify-dev/certify/nets"
)

func TestZZSizes(t *testing.T) {
	for _, model := range []string{"mnist_mlp", "mnist_cnn"} {
		g, err := nets.ReadONNX("../testdata/" + model + ".onnx")
		if err != nil {
			t.Fatal(err)
		}
		xs, _ := nets.ReadNPY("../testdata/mnist-test-1k.npy")
		ys, _ := nets.ReadNPY("../testdata/mnist-test-1k-labels.npy")
		for _, radius := range []float64{0.02, 0.1} {
			x := nets.FromData(append([]float64(nil), xs.Data[:784]...), 1, 1, 28, 28)
			r := LinfRegion(x, radius, 0, 1)
			s, _ := bounds.RobustnessSpec(10, int(ys.Data[0]))
			start := time.Now()
			net, lo, hi := alphaBounds(t, g, r, []bounds.Spec{s})
			ab := time.Since(start)
			var sizes []int
			for k := range net.affine {
				sizes = append(sizes, len(net.affine[k].b), net.affine[k].nnz)
			}
			sz := relaxSize(net, 784, lo, hi, len(net.pre), false)
			start = time.Now()
			res, err := LP{}.Verify(t.Context(), g, r, s)
			t.Logf("%s r=%v: layers(m,nnz) %v; LP %+v; alpha-crown %v; LP verify %v %v %v", model, radius, sizes, sz, ab, time.Since(start), res.Verdict, err)
			start = time.Now()
			_, err = CROWN{}.Verify(t.Context(), g, r, s)
			t.Logf("crown %v", time.Since(start))
		}
	}
}
