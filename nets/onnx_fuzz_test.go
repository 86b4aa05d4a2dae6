package nets

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/advancedclimatesystems/gonnx/onnx"
)

// FuzzDecodeONNX feeds arbitrary bytes to the reader, seeded with real networks
// (the small VNN-COMP ones and PyTorch exports, when at hand), the ONNX node test
// models of the conformance pass list, and small generated models. The reader
// must never panic; a constructor panic, which the reader turns into an error, is
// reported as a bug of that op. What the reader accepts, the writer must write and
// the reader read back.
func FuzzDecodeONNX(f *testing.F) {
	vdir := os.Getenv("CERTIFY_VNNCOMP")
	if vdir == "" {
		vdir = "/work/shared/benchmarks/vnncomp"
	}
	// Small networks only: the fuzzer mutates and minimizes whole inputs, and a
	// megabyte seed slows it to a crawl. convNet stands in for the large CNNs.
	for _, rel := range []string{
		"2021/test/test_nano.onnx", "2021/test/test_small.onnx", "2021/test/test_tiny.onnx",
		"2022/reach_prob_density/onnx/vdp.onnx", "2022/reach_prob_density/onnx/gcas.onnx",
		"2022/rl_benchmarks/onnx/cartpole.onnx", "2021/acasxu/ACASXU_run2a_1_1_batch_2000.onnx",
	} {
		if data, err := os.ReadFile(filepath.Join(vdir, rel)); err == nil {
			f.Add(data)
		}
	}
	for _, p := range []string{"../testdata/pytorch/cnn_bn_op11.onnx", "../testdata/pytorch/cnn_fused_op13.onnx",
		"../testdata/pytorch/cnn_bn_op17.onnx"} {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	// The ONNX node tests that pass: one small model per op and attribute set.
	if listed, err := readPassList(conformancePassFile); err == nil {
		dir := os.Getenv("CERTIFY_ONNX_TESTDATA")
		if dir == "" {
			dir = conformanceDefaultDir
		}
		for name := range listed {
			if data, err := os.ReadFile(filepath.Join(dir, name, "model.onnx")); err == nil {
				f.Add(data)
			}
		}
	}
	for _, g := range []*Graph{convNet(f), spyGraph()} {
		if data, err := EncodeONNX(g); err == nil {
			f.Add(data)
		}
	}
	f.Add(pmodel(f, &onnx.GraphProto{
		Input:       []*onnx.ValueInfoProto{pvi("x", "N", 2, 3)},
		Output:      []*onnx.ValueInfoProto{pvi("y", "N", 6)},
		Initializer: []*onnx.TensorProto{pints("s", []int64{2}, 0, -1), pfloats("b", []int64{6}, 1, 2, 3, 4, 5, 6)},
		Node: []*onnx.NodeProto{
			pnode("add", "Add", []string{"r", "b"}, []string{"y"}),
			pnode("r", "Reshape", []string{"x", "c"}, []string{"r"}),
			pnode("c", "Constant", nil, []string{"c"}, pattrT("value", pints("", []int64{2}, 0, 6))),
		},
	}, 13))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := DecodeONNX(data, "fuzz.onnx")
		if err != nil {
			if strings.Contains(err.Error(), "op constructor panicked") {
				t.Errorf("%v", err)
			}
			return
		}
		out, err := EncodeONNX(g)
		if err != nil {
			return // e.g. a Reshape shape of 1.5, which ONNX cannot type as int64
		}
		if _, err := DecodeONNX(out, "fuzz re-export"); err != nil {
			t.Errorf("read accepted the model, but not its re-export: %v", err)
		}
	})
}
