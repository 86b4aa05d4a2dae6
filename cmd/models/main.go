// Command models re-creates the shipped models and sample data in testdata/:
//
//	mnist_mlp.onnx               784-100-100-10 ReLU MLP
//	mnist_cnn.onnx               the Wong & Kolter (2018) small MNIST CNN
//	mnist_cnn_noise025.onnx      that CNN trained on x + N(0, 0.25²I): a base classifier
//	mnist_cnn_noise050.onnx      that CNN trained on x + N(0, 0.5²I)   for randomized smoothing
//	mnist-test-1k.npy            float32 [1000,1,28,28]: first 1000 MNIST test images, pixel/255
//	mnist-test-1k-labels.npy     int64 [1000]: their labels
//	zoo/*.onnx, zoo/*.json       the defense zoo (zoo.go): networks trained by the
//	                             recipes of package defenses, and wrapper specs
//	                             around the CNN with the networks they need
//
// MNIST comes from the module cache (nets.FindMNIST). Training is seeded and its
// gradient sums run in a fixed order, so the same seed writes byte-identical files
// on any machine and core count. Each model is read back from its ONNX file (float32
// weights) and scored on the full 10000-image test set; a model below its required
// accuracy is an error. A model trained with Gaussian data augmentation at σ (Cohen,
// Rosenfeld & Kolter, "Certified Adversarial Robustness via Randomized Smoothing",
// ICML 2019) is also scored on the test set plus one fixed draw of N(0, σ²I) noise,
// unclipped: the accuracy of the base classifier under the noise it is smoothed with.
//
// --models picks the models to train (default all), so the noisy CNNs can be
// re-trained without the others: go run ./cmd/models --models mnist_cnn_noise025.
// The zoo reads the shipped models from --out (ensemble adversarial training's
// static models, the wrappers' base), so they come first.
//
// Usage: go run ./cmd/models [flags]   (make models)
package main

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/certify-dev/certify/defenses"
	"github.com/certify-dev/certify/internal/cli"
	"github.com/certify-dev/certify/nets"
	"github.com/spf13/pflag"
)

// recipe is how one model is built and trained.
type recipe struct {
	name   string // file stem under --out
	build  func(*rand.Rand) (*nets.Graph, error)
	epochs int
	batch  int
	lr     float64
	minAcc float64 // required test accuracy of the exported model
	// sigma > 0 trains with Gaussian data augmentation x + N(0, σ²I)
	// (nets.TrainConfig.NoiseSigma); minNoisyAcc is then the required accuracy on the
	// test set plus one fixed draw of that noise.
	sigma       float64
	minNoisyAcc float64
	stream      uint64 // PCG stream, so each model's randomness is independent
	summary     string
	// dir is the sub-folder of --out the model goes to ("" or "zoo").
	dir string
	// defense, when set, trains the model with a defense recipe instead of plain
	// training (the same optimizer, schedule and seeded Rand are handed to it).
	defense func(e zooEnv, r *rand.Rand) (defenses.Recipe, error)
}

func recipes() []recipe {
	return []recipe{
		{name: "mnist_mlp", summary: "MLP 784-100-100-10 (ReLU)",
			build:  func(r *rand.Rand) (*nets.Graph, error) { return nets.MLP(r, []int{1, 28, 28}, 100, 100, 10) },
			epochs: 12, batch: 128, lr: 2e-3, minAcc: 0.975, stream: 1},
		{name: "mnist_cnn", summary: "CNN conv16-conv32-fc100-fc10 (Wong & Kolter 2018)",
			build:  nets.MNISTCNN,
			epochs: 5, batch: 128, lr: 2e-3, minAcc: 0.985, stream: 2},
		{name: "mnist_cnn_noise025", summary: "CNN conv16-conv32-fc100-fc10, base classifier for randomized smoothing (Cohen et al. 2019)",
			build:  nets.MNISTCNN,
			epochs: 10, batch: 128, lr: 2e-3, minAcc: 0.985, sigma: 0.25, minNoisyAcc: 0.98, stream: 3},
		{name: "mnist_cnn_noise050", summary: "CNN conv16-conv32-fc100-fc10, base classifier for randomized smoothing (Cohen et al. 2019)",
			build:  nets.MNISTCNN,
			epochs: 10, batch: 128, lr: 2e-3, minAcc: 0.98, sigma: 0.5, minNoisyAcc: 0.965, stream: 4},
	}
}

// noiseStream offsets a recipe's PCG stream for the noise of its noisy test set, so
// that the evaluation noise is fixed by the seed and independent of training's.
const noiseStream = 1 << 32

type options struct {
	out        string
	mnist      string
	seed       uint64
	only       []string
	epochs     int
	trainLimit int
	// wrapperTest is the number of test images each wrapper spec is scored on.
	wrapperTest int
	check       bool
	data        bool
}

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "models:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	var o options
	fs := pflag.NewFlagSet("models", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.out, "out", "testdata", "folder to write the models and sample data into")
	fs.StringVar(&o.mnist, "mnist", "", "folder of the MNIST IDX files (default: $"+nets.MNISTDirEnv+" or the GoMNIST module)")
	fs.Uint64Var(&o.seed, "seed", 1, "random seed of initialisation and shuffling")
	var names []string
	for _, rc := range allRecipes() {
		names = append(names, rc.name)
	}
	names = append(names, wrappersName)
	fs.StringSliceVar(&o.only, "models", names, "models to train")
	fs.IntVar(&o.epochs, "epochs", 0, "override every model's number of epochs (0: the recipe's)")
	fs.IntVar(&o.trainLimit, "train-limit", 0, "train on only the first N training images (0: all 60000)")
	fs.IntVar(&o.wrapperTest, "wrapper-test", 1000, "score each zoo wrapper spec on the first N test images")
	fs.BoolVar(&o.check, "check", true, "fail when a model misses its required test accuracy")
	fs.BoolVar(&o.data, "data", true, "write the 1000-sample test set .npy files")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %v", fs.Args())
	}
	if o.epochs < 0 || o.trainLimit < 0 || o.wrapperTest < 1 {
		return errors.New("--epochs and --train-limit must not be negative, --wrapper-test must be positive")
	}
	var chosen []recipe
	for _, rc := range allRecipes() {
		if slices.Contains(o.only, rc.name) {
			chosen = append(chosen, rc)
		}
	}
	for _, m := range o.only {
		if !slices.Contains(names, m) {
			return fmt.Errorf("--models: unknown model %q (have %s)", m, strings.Join(names, ", "))
		}
	}
	dir := o.mnist
	if dir == "" {
		var err error
		if dir, err = nets.FindMNIST(); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	testX, testY, err := nets.LoadMNIST(dir, "test")
	if err != nil {
		return err
	}
	var written []string
	if o.data {
		files, err := writeSamples(o.out, testX, testY, 1000)
		if err != nil {
			return err
		}
		written = append(written, files...)
	}
	wrappers := slices.Contains(o.only, wrappersName)
	if len(chosen) > 0 || wrappers {
		trainX, trainY, err := nets.LoadMNIST(dir, "train")
		if err != nil {
			return err
		}
		if o.trainLimit > 0 && o.trainLimit < len(trainY) {
			trainX = &nets.Tensor{Shape: append([]int{o.trainLimit}, trainX.Shape[1:]...),
				Data: trainX.Data[:o.trainLimit*784]}
			trainY = trainY[:o.trainLimit]
		}
		for _, rc := range chosen {
			path, err := trainOne(rc, o, trainX, trainY, testX, testY, stdout)
			if err != nil {
				return fmt.Errorf("%s: %w", rc.name, err)
			}
			written = append(written, path)
		}
		if wrappers {
			files, err := buildWrappers(o, trainX, trainY, testX, testY, stdout)
			if err != nil {
				return fmt.Errorf("%s: %w", wrappersName, err)
			}
			written = append(written, files...)
		}
	}
	for _, p := range written {
		sum, err := cli.FileSHA256(p)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "sha256 %s  %s\n", sum, p)
	}
	return nil
}

// writeSamples writes the first n test images (float32, pixel/255) and labels (int64).
func writeSamples(out string, x *nets.Tensor, y []int, n int) ([]string, error) {
	per := x.Len() / x.Shape[0]
	xs := &nets.Tensor{Shape: append([]int{n}, x.Shape[1:]...), Data: x.Data[:n*per]}
	ys := nets.NewTensor(n)
	for i := range ys.Data {
		ys.Data[i] = float64(y[i])
	}
	xp := filepath.Join(out, "mnist-test-1k.npy")
	yp := filepath.Join(out, "mnist-test-1k-labels.npy")
	if err := nets.WriteNPY(xp, xs, nets.NPYFloat32); err != nil {
		return nil, err
	}
	if err := nets.WriteNPY(yp, ys, nets.NPYInt64); err != nil {
		return nil, err
	}
	return []string{xp, yp}, nil
}

// trainOne trains, exports and checks one model; it returns the ONNX path.
func trainOne(rc recipe, o options, trainX *nets.Tensor, trainY []int, testX *nets.Tensor, testY []int, w io.Writer) (string, error) {
	r := rand.New(rand.NewPCG(o.seed, rc.stream))
	g, err := rc.build(r)
	if err != nil {
		return "", err
	}
	epochs := rc.epochs
	if o.epochs > 0 {
		epochs = o.epochs
	}
	noise := ""
	var noisyX *nets.Tensor
	if rc.sigma > 0 {
		noise = fmt.Sprintf(", Gaussian augmentation σ %g", rc.sigma)
		noisyX = addNoise(testX, rc.sigma, rand.New(rand.NewPCG(o.seed, noiseStream+rc.stream)))
	}
	fmt.Fprintf(w, "%s: %s; %d training images, %d epochs, batch %d, Adam lr %g (cosine, 1 warm-up epoch)%s, seed %d\n",
		rc.name, rc.summary, len(trainY), epochs, rc.batch, rc.lr, noise, o.seed)
	start := time.Now()
	steps := (len(trainY) + rc.batch - 1) / rc.batch
	cfg := nets.TrainConfig{
		Epochs: epochs, BatchSize: rc.batch, Optimizer: nets.NewAdam(),
		Schedule: nets.CosineLR(rc.lr, steps), Rand: r, NoiseSigma: rc.sigma,
		OnEpoch: func(s nets.EpochStats) error {
			acc, err := nets.Accuracy(g, testX, testY, 1000)
			if err != nil {
				return err
			}
			noisy := ""
			if noisyX != nil {
				nacc, err := nets.Accuracy(g, noisyX, testY, 1000)
				if err != nil {
					return err
				}
				noisy = fmt.Sprintf("  noisy test acc %.2f%%", 100*nacc)
			}
			fmt.Fprintf(w, "  epoch %2d  loss %.4f  train acc %.2f%%  test acc %.2f%%%s  lr %.2e  %5.1fs\n",
				s.Epoch, s.Loss, 100*s.Accuracy, 100*acc, noisy, s.LR, s.Duration.Seconds())
			return nil
		},
	}
	if rc.defense != nil {
		def, err := rc.defense(zooEnv{out: o.out, seed: o.seed}, r)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(w, "%s: defense %s\n", rc.name, def.Name())
		_, err = def.Train(g, defenses.Data{X: trainX, Labels: trainY}, cfg)
		if err != nil {
			return "", err
		}
	} else if _, err = nets.Train(g, trainX, trainY, cfg); err != nil {
		return "", err
	}
	elapsed := time.Since(start)
	g.Name = rc.name
	if err := os.MkdirAll(filepath.Join(o.out, rc.dir), 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(o.out, rc.dir, rc.name+".onnx")
	if err := nets.WriteONNX(g, path); err != nil {
		return "", err
	}
	// Score what was shipped: the float32 weights read back from the file.
	back, err := nets.ReadONNX(path)
	if err != nil {
		return "", fmt.Errorf("reading back: %w", err)
	}
	acc, err := nets.Accuracy(back, testX, testY, 1000)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(w, "%s: test accuracy %.2f%% (%d images, from %s), trained in %s\n",
		rc.name, 100*acc, len(testY), path, elapsed.Round(time.Second))
	if o.check && acc < rc.minAcc {
		return "", fmt.Errorf("test accuracy %.2f%% below the required %.2f%%", 100*acc, 100*rc.minAcc)
	}
	if noisyX != nil {
		nacc, err := nets.Accuracy(back, noisyX, testY, 1000)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(w, "%s: accuracy under N(0, %g²I) noise %.2f%% (%d images, one fixed draw)\n",
			rc.name, rc.sigma, 100*nacc, len(testY))
		if o.check && nacc < rc.minNoisyAcc {
			return "", fmt.Errorf("noisy test accuracy %.2f%% below the required %.2f%%", 100*nacc, 100*rc.minNoisyAcc)
		}
	}
	return path, nil
}

// addNoise returns x + σ·z, z ~ N(0, I) drawn from r in row-major order, unclipped:
// the inputs the base classifier of randomized smoothing sees (Cohen et al. 2019).
func addNoise(x *nets.Tensor, sigma float64, r *rand.Rand) *nets.Tensor {
	y := x.Clone()
	for i := range y.Data {
		y.Data[i] += sigma * r.NormFloat64()
	}
	return y
}
