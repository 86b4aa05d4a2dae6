package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certify-dev/certify/internal/cli"
	"github.com/certify-dev/certify/nets"
	"github.com/certify-dev/certify/pipeline"
	"github.com/certify-dev/certify/smoothing"
	"gonum.org/v1/gonum/stat/distuv"
)

const (
	mnistX     = "../../testdata/mnist-test-1k.npy"
	mnistY     = "../../testdata/mnist-test-1k-labels.npy"
	smoothN0   = 50
	smoothN    = 500
	smoothSeed = 4
)

// mnist returns the first n MNIST test samples and labels, as the command reads them.
func mnist(t *testing.T, n int) (*nets.Tensor, []int) {
	t.Helper()
	xs, err := nets.ReadNPY(mnistX)
	if err != nil {
		t.Fatal(err)
	}
	ys, err := nets.ReadNPY(mnistY)
	if err != nil {
		t.Fatal(err)
	}
	x := nets.FromData(append([]float64(nil), xs.Data[:n*784]...), n, 1, 28, 28)
	labels := make([]int, n)
	for i := range labels {
		labels[i] = int(ys.Data[i])
	}
	return x, labels
}

// runSmoothing runs the command on the shipped MLP with small n and returns the
// report, the raw JSON, and stdout.
func runSmoothing(t *testing.T, args ...string) (pipeline.Report, []byte, string) {
	t.Helper()
	rep, raw, stdout, _ := okReport(t, append(append([]string{"-q", "--data", mnistX, "--labels", mnistY, "--methods", "smoothing",
		"--n0", strconv.Itoa(smoothN0), "--n", strconv.Itoa(smoothN), "--seed", strconv.Itoa(smoothSeed)}, args...), shippedMLP)...)
	return rep, raw, stdout
}

// TestSmoothingMLP checks the smoothing report on 12 MNIST samples against an
// independent run of smoothing.Certify with the same noise, the curve against a
// count of the per-sample radii, and the CSV and PNG files.
func TestSmoothingMLP(t *testing.T) {
	if testing.Short() {
		t.Skip("MNIST model")
	}
	const n = 12
	tests := []struct {
		name   string
		sigma  float64
		radius float64
		norm   string
	}{
		{"l2", 0.25, 0.25, "l2"},
		{"linf radius read as l2", 0.5, 0.3, "linf"},
	}
	g, err := nets.ReadONNX(shippedMLP)
	if err != nil {
		t.Fatal(err)
	}
	x, labels := mnist(t, n)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			csvPath, pngPath := filepath.Join(dir, "c.csv"), filepath.Join(dir, "c.png")
			rep, raw, _ := runSmoothing(t, "-n", strconv.Itoa(n), "--sigma", strconv.FormatFloat(tc.sigma, 'g', -1, 64),
				"--radius", strconv.FormatFloat(tc.radius, 'g', -1, 64), "--norm", tc.norm, "--curve-csv", csvPath, "--plot", pngPath)

			for _, s := range []string{`"smoothing": {`, `"prediction":`, `"abstain":`, `"radius":`, `"smoothing_curve": [`, `"smoothing_audit": {`} {
				if !bytes.Contains(raw, []byte(s)) {
					t.Errorf("JSON lacks %s", s)
				}
			}
			if want := (pipeline.SmoothingParams{Method: "smoothing", Sigma: tc.sigma, N0: smoothN0, N: smoothN, Alpha: 0.001}); rep.Smoothing == nil || *rep.Smoothing != want {
				t.Errorf("report smoothing %+v, want %+v", rep.Smoothing, want)
			}
			// The largest radius n samples can certify: every one correct, p̲A = α^(1/n).
			maxR := tc.sigma * distuv.UnitNormal.Quantile(math.Pow(0.001, 1.0/smoothN))
			s := smoothing.Smoothed{Base: g, Sigma: tc.sigma, Batch: smoothing.DefaultBatch}
			certified, attacked := 0, 0
			for i, smp := range rep.Samples {
				sm := smp.Smoothing
				if sm == nil {
					t.Fatalf("sample %d: no smoothing record", i)
				}
				seed := uint64(pipeline.SampleSeed(smoothSeed, i))
				want, err := s.Certify(x.Row(i), smoothN0, smoothN, 0.001, smoothing.SampleRand(seed, streamCertify))
				if err != nil {
					t.Fatal(err)
				}
				if sm.Prediction != want.Class || sm.Abstain != want.Abstain || sm.Radius != want.Radius {
					t.Errorf("sample %d: %+v, smoothing.Certify %+v", i, *sm, want)
				}
				if sm.Abstain != (sm.Prediction == -1) || sm.Abstain && sm.Radius != 0 || !sm.Abstain && !(sm.Radius > 0 && sm.Radius <= maxR*(1+1e-12)) {
					t.Errorf("sample %d: %+v inconsistent (max radius %g)", i, *sm, maxR)
				}
				ok := sm.Prediction == labels[i] && !sm.Abstain && sm.Radius >= tc.radius
				if smp.Certified["smoothing"] != ok {
					t.Errorf("sample %d: certified.smoothing %v, want %v (%+v, label %d)", i, smp.Certified["smoothing"], ok, *sm, labels[i])
				}
				if ok {
					certified++
				}
				// The audit: on the certified samples only, within the radius.
				if a := sm.Attack; a != nil {
					attacked++
					if !ok || a.Distance > sm.Radius || a.Distance <= 0 || a.Changed != (!a.Abstain && a.Prediction != sm.Prediction) {
						t.Errorf("sample %d: attack %+v of %+v (certified %v)", i, *a, *sm, ok)
					}
				} else if ok {
					t.Errorf("sample %d: certified, not attacked", i)
				}
			}
			if certified == 0 || certified == n {
				t.Fatalf("test degenerate: %d/%d certified", certified, n)
			}
			if a := rep.Summary.SmoothingAudit; a == nil || a.Attacked != attacked || a.Alpha != 0.001 {
				t.Errorf("audit summary %+v, want %d attacked", a, attacked)
			}
			if got := rep.Summary.CertifiedAccuracy["smoothing"]; got != float64(certified)/n {
				t.Errorf("certified accuracy %v, want %d/%d", got, certified, n)
			}

			// The curve: 0, 0.25, ... past the largest radius, each point counted anew.
			curve := rep.Summary.SmoothingCurve
			if len(curve) < 7 || curve[len(curve)-1].Accuracy != 0 {
				t.Fatalf("curve %v", curve)
			}
			for k, p := range curve {
				c := 0
				for _, smp := range rep.Samples {
					if smp.Smoothing.Prediction == smp.Label && !smp.Smoothing.Abstain && smp.Smoothing.Radius >= float64(k)*0.25 {
						c++
					}
				}
				if p.Radius != float64(k)*0.25 || p.Accuracy != float64(c)/n {
					t.Errorf("curve point %d: %+v, want {%v %d/%d}", k, p, float64(k)*0.25, c, n)
				}
			}

			f, err := os.Open(csvPath)
			if err != nil {
				t.Fatal(err)
			}
			rows, err := csv.NewReader(f).ReadAll()
			f.Close()
			if err != nil || len(rows) != len(curve)+1 || rows[0][0] != "radius" || rows[0][1] != "certified_accuracy" {
				t.Fatalf("CSV %v, %v", rows, err)
			}
			for k, p := range curve {
				r, err1 := strconv.ParseFloat(rows[k+1][0], 64)
				a, err2 := strconv.ParseFloat(rows[k+1][1], 64)
				if err1 != nil || err2 != nil || r != p.Radius || a != p.Accuracy {
					t.Errorf("CSV row %v, want %+v", rows[k+1], p)
				}
			}
			f, err = os.Open(pngPath)
			if err != nil {
				t.Fatal(err)
			}
			img, err := png.Decode(f)
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			if sz := img.Bounds().Size(); sz.X != 576 || sz.Y != 384 {
				t.Errorf("PNG %v pixels, want 576x384", sz)
			}
		})
	}
}

// TestSmoothingTables checks the text output: the smoothing column, the audit rows
// and the curve table.
func TestSmoothingTables(t *testing.T) {
	if testing.Short() {
		t.Skip("MNIST model")
	}
	code, stdout, stderr := runCmd("--data", mnistX, "--labels", mnistY, "-n", "5", "--methods", "smoothing,ibp", "--n0", "20", "--n", "200",
		"--radius", "0.01", shippedMLP)
	if code != cli.ExitOK {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	for _, s := range []string{"SMOOTHING", "IBP", "certified accuracy: smoothing", "smoothing audit: prediction changed", "L2 RADIUS",
		"CERTIFIED ACCURACY", "(σ = 0.25, n0 = 20, n = 200, α = 0.001)"} {
		if !strings.Contains(stdout, s) {
			t.Errorf("output lacks %q:\n%s", s, stdout)
		}
	}
	if !strings.Contains(stderr, "note: smoothing certifies L2 radii") {
		t.Errorf("no note on --norm linf:\n%s", stderr)
	}
}

// TestSmoothingDeterminism: the report does not depend on GOMAXPROCS (command
// line) nor on the pipeline's workers.
func TestSmoothingDeterminism(t *testing.T) {
	if testing.Short() {
		t.Skip("MNIST model")
	}
	encode := func(rep pipeline.Report) string {
		rep = resultsOnly(rep)
		b, err := json.Marshal(rep)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	var reps []string
	for _, procs := range []int{1, 2} {
		old := runtime.GOMAXPROCS(procs)
		rep, _, _ := runSmoothing(t, "-n", "6", "--radius", "0.2", "--norm", "l2", "--batch", strconv.Itoa(100*procs+7))
		runtime.GOMAXPROCS(old)
		reps = append(reps, encode(rep))
	}
	if reps[0] != reps[1] {
		t.Errorf("GOMAXPROCS 1 and 2 (batches 107, 207) differ:\n%s\n%s", reps[0], reps[1])
	}

	g, err := nets.ReadONNX(shippedMLP)
	if err != nil {
		t.Fatal(err)
	}
	x, labels := mnist(t, 6)
	so := stageOptions{Domain: pipeline.Domain{Lo: 0, Hi: 1}, Smoothing: smoothingOptions{Sigma: defaultSigma, N0: smoothN0, N: smoothN,
		Alpha: 0.001, Batch: 1000, AttackSteps: defaultSmoothAttackSteps, AttackNoise: defaultSmoothAttackNoise}}
	var viaPipeline []string
	for _, workers := range []int{1, 3} {
		rep, err := pipeline.Run(context.Background(), pipeline.Config{Model: g, X: x, Labels: labels, Radius: 0.2, Norm: pipeline.L2,
			Domain: so.Domain, Seed: smoothSeed, Methods: []pipeline.Method{methods()[smoothingName](so)}, Workers: workers})
		if err != nil {
			t.Fatal(err)
		}
		var recs []string
		for _, s := range rep.Samples {
			b, _ := json.Marshal(s)
			recs = append(recs, string(b))
		}
		viaPipeline = append(viaPipeline, strings.Join(recs, "\n"))
	}
	if viaPipeline[0] != viaPipeline[1] {
		t.Errorf("workers 1 and 3 differ:\n%s\n%s", viaPipeline[0], viaPipeline[1])
	}
	// And the command's samples are the pipeline's.
	var cmdRep pipeline.Report
	if err := json.Unmarshal([]byte(reps[0]), &cmdRep); err != nil {
		t.Fatal(err)
	}
	var recs []string
	for _, s := range cmdRep.Samples {
		b, _ := json.Marshal(s)
		recs = append(recs, string(b))
	}
	if got := strings.Join(recs, "\n"); got != viaPipeline[0] {
		t.Errorf("command and pipeline differ:\n%s\n%s", got, viaPipeline[0])
	}
}

// TestSmoothingMisclassified: on the fixture, whose labels are wrong for every
// fourth sample, smoothing runs on every sample and certifies where g is right.
func TestSmoothingMisclassified(t *testing.T) {
	f := newFixture(t, 16)
	rep, _, _ := f.report(t, "-q", "--methods", "smoothing", "--sigma", "0.1", "--n0", "20", "--n", "300", "--radius", "0", "--norm", "l2")
	wrong := 0
	for _, s := range rep.Samples {
		if s.Smoothing == nil {
			t.Fatalf("sample %d (correct %v): no smoothing record", s.Index, s.Correct())
		}
		ok := !s.Smoothing.Abstain && s.Smoothing.Prediction == s.Label
		if s.Certified["smoothing"] != ok {
			t.Errorf("sample %d: certified %v, record %+v, label %d", s.Index, s.Certified["smoothing"], *s.Smoothing, s.Label)
		}
		if !s.Correct() {
			wrong++
		}
	}
	if wrong == 0 {
		t.Fatal("fixture degenerate: every sample correct")
	}
}

// TestSmoothAdv checks the attack on the smoothed classifier: it stays in the
// ball and the domain, and lowers the smoothed probability of the label, measured
// on fresh noise.
func TestSmoothAdv(t *testing.T) {
	if testing.Short() {
		t.Skip("MNIST model")
	}
	g, err := nets.ReadONNX(shippedMLP)
	if err != nil {
		t.Fatal(err)
	}
	x, labels := mnist(t, 3)
	const sigma, draws = 0.25, 400
	// prob estimates G_y(x) = P(softmax(f(x+δ)))_y with its own noise.
	prob := func(x *nets.Tensor, y int) float64 {
		r := rand.New(rand.NewPCG(99, 7))
		batch := nets.NewTensor(draws, 1, 28, 28)
		for s := 0; s < draws; s++ {
			for i, v := range x.Data {
				batch.Data[s*784+i] = v + sigma*r.NormFloat64()
			}
		}
		p, _, err := softmaxProb{}.Eval(mustLogits(t, g, batch), repeat(y, draws))
		if err != nil {
			t.Fatal(err)
		}
		sum := 0.0
		for _, v := range p {
			sum += v
		}
		return sum / draws
	}
	for _, eps := range []float64{0.25, 0.5} {
		for i := range labels {
			a := smoothAdv{Sigma: sigma, Eps: eps, Steps: 20, Noise: 32, Lo: 0, Hi: 1}
			adv, err := a.run(context.Background(), g, x.Row(i), labels[i], rand.New(rand.NewPCG(1, uint64(i))))
			if err != nil {
				t.Fatal(err)
			}
			d := 0.0
			for j, v := range adv.Data {
				if v < 0 || v > 1 {
					t.Fatalf("eps %g, sample %d: value %d is %g, outside [0,1]", eps, i, j, v)
				}
				d += (v - x.Data[i*784+j]) * (v - x.Data[i*784+j])
			}
			if math.Sqrt(d) > eps {
				t.Errorf("eps %g, sample %d: distance %v", eps, i, math.Sqrt(d))
			}
			before, after := prob(x.Row(i), labels[i]), prob(adv, labels[i])
			t.Logf("eps %g, sample %d: G_y %.4f at x, %.4f at the attack point (distance %.4f)", eps, i, before, after, math.Sqrt(d))
			if !(after < before-0.01) {
				t.Errorf("eps %g, sample %d: G_y %v at x, %v at the attack point: not lower", eps, i, before, after)
			}
		}
	}
}

func mustLogits(t *testing.T, g nets.Classifier, x *nets.Tensor) *nets.Tensor {
	t.Helper()
	z, err := g.Logits(x)
	if err != nil {
		t.Fatal(err)
	}
	return z
}

func repeat(y, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = y
	}
	return out
}

// TestSoftmaxProbGrad compares the gradient of softmaxProb with central
// differences.
func TestSoftmaxProbGrad(t *testing.T) {
	tests := []struct {
		z []float64
		y int
	}{
		{[]float64{1, 2, 3}, 0},
		{[]float64{1, 2, 3}, 2},
		{[]float64{-4, 0.5, 0.5, 7}, 1},
		{[]float64{300, 299, -300}, 1}, // large logits: the stable softmax
	}
	for _, tc := range tests {
		k := len(tc.z)
		v, g, err := softmaxProb{}.Eval(nets.FromData(append([]float64(nil), tc.z...), 1, k), []int{tc.y})
		if err != nil {
			t.Fatal(err)
		}
		// Independent softmax via exp of shifted logits in log space.
		lse := math.Inf(-1)
		for _, x := range tc.z {
			lse = math.Max(lse, x) + math.Log1p(math.Exp(-math.Abs(lse-x)))
		}
		if want := math.Exp(tc.z[tc.y] - lse); math.Abs(v[0]-want) > 1e-12 {
			t.Errorf("%v, y %d: p_y %v, want %v", tc.z, tc.y, v[0], want)
		}
		for j := range tc.z {
			const h = 1e-6
			zp := append([]float64(nil), tc.z...)
			zm := append([]float64(nil), tc.z...)
			zp[j] += h
			zm[j] -= h
			vp, _, _ := softmaxProb{}.Eval(nets.FromData(zp, 1, k), []int{tc.y})
			vm, _, _ := softmaxProb{}.Eval(nets.FromData(zm, 1, k), []int{tc.y})
			if fd := (vp[0] - vm[0]) / (2 * h); math.Abs(fd-g.Data[j]) > 1e-7 {
				t.Errorf("%v, y %d: d/dz_%d %v, central difference %v", tc.z, tc.y, j, g.Data[j], fd)
			}
		}
	}
}

func TestSmoothingFlagErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--methods", "smoothing", "--sigma", "0"}, "--sigma 0: want a finite noise level > 0"},
		{[]string{"--methods", "smoothing", "--sigma", "-0.5"}, "--sigma -0.5"},
		{[]string{"--methods", "smoothing", "--sigma", "NaN"}, "--sigma NaN"},
		{[]string{"--methods", "smoothing", "--sigma", "+Inf"}, "--sigma +Inf"},
		{[]string{"--methods", "smoothing", "--n", "0"}, "--n 0: want at least 1 noise sample"},
		{[]string{"--methods", "smoothing", "--n0", "0"}, "--n0 0: want at least 1 noise sample"},
		{[]string{"--methods", "smoothing", "--n0", "-3"}, "--n0 -3"},
		{[]string{"--methods", "smoothing", "--alpha", "0"}, "--alpha 0: want 0 < α < 1"},
		{[]string{"--methods", "smoothing", "--alpha", "1"}, "--alpha 1: want 0 < α < 1"},
		{[]string{"--methods", "smoothing", "--alpha", "-0.1"}, "--alpha -0.1"},
		{[]string{"--methods", "smoothing", "--alpha", "NaN"}, "--alpha NaN"},
		{[]string{"--methods", "smoothing", "--batch", "0"}, "--batch 0: want at least 1"},
		{[]string{"--methods", "smoothing", "--smoothing-attack-steps", "-1"}, "--smoothing-attack-steps -1"},
		{[]string{"--methods", "smoothing", "--smoothing-attack-noise", "0"}, "--smoothing-attack-noise 0"},
		{[]string{"--curve-csv", "c.csv"}, "--curve-csv is a flag of randomized smoothing"},
		{[]string{"--n", "500"}, "--n is a flag of randomized smoothing"},
		{[]string{"--sigma", "0.5"}, "--sigma is a flag of randomized smoothing"},
	}
	for _, tc := range tests {
		code, stdout, stderr := runCmd(append(tc.args, "m.onnx")...)
		if code != cli.ExitUsage || !strings.Contains(stderr, tc.want) || stdout != "" {
			t.Errorf("%q: exit %d, stderr %q; want exit 2 and %q", tc.args, code, stderr, tc.want)
		}
	}
	// -n is still --count, --n the noise samples.
	o, err := parseArgs([]string{"-n", "7", "--methods", "smoothing", "--n", "300", "m.onnx"}, &bytes.Buffer{}, methods())
	if err != nil || o.count != 7 || o.smoothing.N != 300 {
		t.Errorf("-n 7 --n 300: count %d, n %d, %v", o.count, o.smoothing.N, err)
	}
	o, err = parseArgs([]string{"--methods", "smoothing", "m.onnx"}, &bytes.Buffer{}, methods())
	if err != nil || o.smoothing != (smoothingOptions{Sigma: 0.25, N0: 100, N: 100000, Alpha: 0.001, Batch: 1000, AttackSteps: 20, AttackNoise: 32}) {
		t.Errorf("defaults %+v, %v", o.smoothing, err)
	}
}

func TestSmoothingHelp(t *testing.T) {
	code, stdout, _ := runCmd("--help")
	if code != cli.ExitOK {
		t.Fatalf("exit %d", code)
	}
	for _, s := range []string{"--sigma σ", "(default 0.25)", "--n0", "--n int", "--alpha α", "--batch", "--curve-csv", "--plot FILE.png",
		"--smoothing-attack-steps", "smoothed classifier", "always in the L2 norm, whatever --norm", "The defaults are the paper's: --n0 100 --n 100000 --alpha 0.001"} {
		if !strings.Contains(stdout, s) {
			t.Errorf("usage lacks %q", s)
		}
	}
}

// TestSmoothingAuditCatchesWrongRadius: the audit of a certificate whose radius is
// far too large (a bug it exists to catch) finds a point where the smoothed
// classifier predicts another class; the summary counts it and the command warns.
func TestSmoothingAuditCatchesWrongRadius(t *testing.T) {
	if testing.Short() {
		t.Skip("MNIST model")
	}
	g, err := nets.ReadONNX(shippedMLP)
	if err != nil {
		t.Fatal(err)
	}
	x, labels := mnist(t, 3)
	m := smoothingMethod{o: smoothingOptions{Sigma: 0.25, N0: smoothN0, N: smoothN, Alpha: 0.001, Batch: 1000, AttackSteps: 20, AttackNoise: 32},
		domain: pipeline.Domain{Lo: 0, Hi: 1}}
	s := smoothing.Smoothed{Base: g, Sigma: 0.25}
	tests := []struct {
		radius  float64
		changed bool
	}{
		{0.05, false}, // well inside the radius n = 500 certifies (0.15 and more)
		{3, true},     // far beyond
	}
	for _, tc := range tests {
		rep := &pipeline.Report{Samples: []pipeline.Sample{}, Summary: pipeline.Summary{SmoothingAudit: &pipeline.SmoothingAuditSummary{Alpha: 0.001}}}
		for i, y := range labels {
			q := pipeline.Query{Index: i, X: x.Row(i), Label: y, Seed: pipeline.SampleSeed(1, i)}
			a, err := m.audit(context.Background(), s, q, smoothing.Certificate{Class: y, Radius: tc.radius})
			if err != nil {
				t.Fatal(err)
			}
			if a.Changed != tc.changed || math.Abs(a.Distance-tc.radius) > 1e-9*tc.radius && tc.changed {
				t.Errorf("radius %g, sample %d: %+v, want changed %v", tc.radius, i, *a, tc.changed)
			}
			rep.Summary.SmoothingAudit.Attacked++
			if a.Changed {
				rep.Summary.SmoothingAudit.Changed++
			}
		}
		ws := smoothingWarnings(rep)
		if tc.changed != (len(ws) == 1) || tc.changed && !strings.Contains(ws[0], "predicts another class on 3 of 3 certified samples") {
			t.Errorf("radius %g: warnings %q", tc.radius, ws)
		}
	}
}

// A sweep with smoothing runs CERTIFY and the audit once per sample (the cache),
// and gives at each radius what a separate run at that radius gives.
func TestSmoothingSweep(t *testing.T) {
	if testing.Short() {
		t.Skip("MNIST model")
	}
	args := []string{"-n", "8", "--norm", "l2", "--smoothing-attack-steps", "2", "--smoothing-attack-noise", "2"}
	start := time.Now()
	rep, _, _ := runSmoothing(t, append(args, "--radius", "0.1,0.3,0.6")...)
	sweep := time.Since(start)
	if len(rep.Sweep) != 3 {
		t.Fatalf("%d radii", len(rep.Sweep))
	}
	var single time.Duration
	for _, run := range rep.Sweep {
		start := time.Now()
		one, _, _ := runSmoothing(t, append(args, "--radius", strconv.FormatFloat(run.Radius, 'g', -1, 64))...)
		single += time.Since(start)
		run.Summary.Seconds, one.Summary.Seconds = nil, nil
		run.Summary.Warnings = one.Summary.Warnings
		if !reflect.DeepEqual(run.Samples, one.Samples) || !reflect.DeepEqual(run.Summary, one.Summary) {
			t.Errorf("radius %g: the sweep's run differs from the single run", run.Radius)
		}
	}
	t.Logf("sweep of 3 radii %v, the 3 single runs %v", sweep, single)
}

// countingModel counts the forward passes of its classifier.
type countingModel struct {
	nets.Classifier
	calls *atomic.Int64
}

func (c countingModel) Logits(x *nets.Tensor) (*nets.Tensor, error) {
	c.calls.Add(1)
	return c.Classifier.Logits(x)
}

// With a cache, the second radius asks the model nothing: CERTIFY's answer is
// reused, and only the certified flag follows the radius.
func TestSmoothingCache(t *testing.T) {
	g, err := nets.ReadONNX(shippedMLP)
	if err != nil {
		t.Fatal(err)
	}
	x, labels := mnist(t, 1)
	var calls atomic.Int64
	model := countingModel{g, &calls}
	m := smoothingMethod{o: smoothingOptions{Sigma: 0.25, N0: 20, N: 200, Alpha: 0.001, Batch: 100, cache: newSmoothingCache()}}
	q := pipeline.Query{Index: 0, X: x, Label: labels[0], Seed: 5, Region: pipeline.Region{Center: x, Norm: pipeline.L2, Radius: 0.01}}
	first, err := m.Certify(context.Background(), model, q)
	if err != nil {
		t.Fatal(err)
	}
	n := calls.Load()
	if n == 0 || !first.Certified {
		t.Fatalf("%d forward passes, certified %v at L2 0.01", n, first.Certified)
	}
	q.Region.Radius = first.Smoothing.Radius * 2
	second, err := m.Certify(context.Background(), model, q)
	if err != nil {
		t.Fatal(err)
	}
	if calls.Load() != n || second.Certified || *second.Smoothing != *first.Smoothing {
		t.Errorf("second radius: %d more forward passes, certified %v, record %+v (first %+v); want 0, false, the same",
			calls.Load()-n, second.Certified, *second.Smoothing, *first.Smoothing)
	}
}
