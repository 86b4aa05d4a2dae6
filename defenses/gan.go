package defenses

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/certify-dev/certify/nets"
)

// GANConfig sets up TrainGAN: an MLP generator Latent→Hidden→D (D the number of
// pixels) and an MLP discriminator D→Hidden→1, trained for Epochs passes over the
// data in minibatches of Batch real images, each network by its own Adam at
// learning rate LR. Seed fixes the initial weights, the shuffles and the latent
// draws. Hidden, Latent, Epochs and Batch must be positive, LR positive and finite.
type GANConfig struct {
	Hidden, Latent, Epochs, Batch int
	LR                            float64
	Seed                          uint64
}

// Value names of the GAN's graphs.
const (
	ganLatentIn = "z"
	ganImageOut = "image"
	ganLogitOut = "logit"
)

// TrainGAN fits the generative adversarial network of Goodfellow et al.,
// "Generative Adversarial Nets", NeurIPS 2014, to the images d.X in [0,1] (labels
// are not used) and returns the generator, z [B, Latent] ↦ x [B, ...image shape]:
//
//	G(z) = sigmoid(W₂ ReLU(W₁z + b₁) + b₂),   D(x) = V₂ ReLU(V₁x + c₁) + c₂ (a logit).
//
// Each minibatch of real images x makes one discriminator step on
//
//	L_D = E_x softplus(−D(x)) + E_z softplus(D(G(z)))   (= −log σ(D(x)) − log(1 − σ(D(G(z)))))
//
// (its mean over real and fake rows together), then one generator step on the
// non-saturating loss of their Section 3, L_G = E_z softplus(−D(G(z))) = −log σ(D(G(z))),
// with fresh z ~ N(0, I). Both use Adam with β₁ = 0.5, as Radford, Metz & Chintala
// (DCGAN, ICLR 2016) recommend for GANs. Every draw comes from one stream seeded by
// Seed, in row order, and gradients are summed over fixed chunks in order, so a
// seed gives the same generator on any number of cores.
func TrainGAN(d Data, cfg GANConfig) (*nets.Graph, error) {
	if err := checkGenerativeConfig("gan", cfg.Hidden, cfg.Latent, cfg.Epochs, cfg.Batch, cfg.LR); err != nil {
		return nil, err
	}
	if err := checkImages("gan", d); err != nil {
		return nil, err
	}
	r := rand.New(rand.NewPCG(cfg.Seed, 0x67616e0a)) // "gan"
	gen, disc, err := newGAN(r, d.X.Shape[1:], cfg.Hidden, cfg.Latent)
	if err != nil {
		return nil, err
	}
	genParams, discParams := genTrainables(gen), genTrainables(disc)
	optG, optD := nets.NewAdam(), nets.NewAdam()
	optG.Beta1, optD.Beta1 = 0.5, 0.5
	n := d.X.Shape[0]
	for epoch := 0; epoch < cfg.Epochs; epoch++ {
		perm := r.Perm(n)
		for lo := 0; lo < n; lo += cfg.Batch {
			xr := gatherRows(d.X, perm[lo:min(lo+cfg.Batch, n)])
			b := xr.Shape[0]
			fake, err := gen.Logits(genNormal(r, b, cfg.Latent))
			if err != nil {
				return nil, fmt.Errorf("gan: epoch %d: generator: %w", epoch+1, err)
			}
			both, err := genStack(xr, fake)
			if err != nil {
				return nil, fmt.Errorf("gan: epoch %d: %w", epoch+1, err)
			}
			labels := make([]int, 2*b)
			for i := range b {
				labels[i] = 1
			}
			lossD, _, gradD, err := nets.ParamGrad(disc, both, labels, ganLoss{}, gradChunk)
			if err != nil {
				return nil, fmt.Errorf("gan: epoch %d: discriminator: %w", epoch+1, err)
			}
			if err := optD.Step(discParams, gradD, cfg.LR); err != nil {
				return nil, fmt.Errorf("gan: epoch %d: %w", epoch+1, err)
			}
			lossG, gradG, err := generatorGrad(gen, disc, genNormal(r, b, cfg.Latent))
			if err != nil {
				return nil, fmt.Errorf("gan: epoch %d: generator: %w", epoch+1, err)
			}
			if ganDiverged(lossD) || ganDiverged(lossG) {
				return nil, fmt.Errorf("gan: epoch %d: losses %v (D), %v (G): diverged; lower the learning rate", epoch+1, lossD, lossG)
			}
			if err := optG.Step(genParams, gradG, cfg.LR); err != nil {
				return nil, fmt.Errorf("gan: epoch %d: %w", epoch+1, err)
			}
		}
	}
	return gen, nil
}

func ganDiverged(v float64) bool { return math.IsNaN(v) || math.IsInf(v, 0) }

// newGAN builds the generator (z → "image") and the discriminator (image → "logit").
func newGAN(r *rand.Rand, shape []int, hidden, latent int) (gen, disc *nets.Graph, err error) {
	pixels := nets.NumElements(shape)
	w := genWeights{}
	w.dense(r, "gen.fc1", latent, hidden)
	w.dense(r, "gen.fc2", hidden, pixels)
	w.dense(r, "disc.fc1", pixels, hidden)
	w.dense(r, "disc.fc2", hidden, 1)

	g := newGenChain("gan_generator", ganLatentIn, []int{-1, latent}, w)
	g.gemm("gen.fc1")
	g.node("Relu", "gen.relu1", nets.NewAttrs())
	g.gemm("gen.fc2")
	g.node("Sigmoid", "gen.sigmoid", nets.NewAttrs())
	g.reshape(ganImageOut, shape)
	if gen, err = g.finish(append([]int{-1}, shape...), ganImageOut); err != nil {
		return nil, nil, err
	}

	c := newGenChain("gan_discriminator", "input", append([]int{-1}, shape...), w)
	c.node("Flatten", "flatten", genIntAttr("axis", 1))
	c.gemm("disc.fc1")
	c.node("Relu", "disc.relu1", nets.NewAttrs())
	c.gemm("disc.fc2")
	c.rename(ganLogitOut)
	if disc, err = c.finish([]int{-1, 1}, ganLogitOut); err != nil {
		return nil, nil, err
	}
	return gen, disc, nil
}

// generatorGrad returns the mean non-saturating generator loss softplus(−D(G(z)))
// over the rows of z and its gradient with respect to gen.Trainable, through the
// discriminator (whose weights are left alone).
func generatorGrad(gen, disc *nets.Graph, z *nets.Tensor) (float64, []*nets.Tensor, error) {
	b := z.Shape[0]
	inv := 1 / float64(b)
	loss, grads, err := sumChunks(b, gradChunk, len(gen.Trainable), func(lo, hi int) (float64, []*nets.Tensor, error) {
		gv, err := gen.Forward(map[string]*nets.Tensor{ganLatentIn: rowsOf(z, lo, hi)})
		if err != nil {
			return 0, nil, err
		}
		dv, err := disc.Forward(map[string]*nets.Tensor{"input": gv[ganImageOut]})
		if err != nil {
			return 0, nil, err
		}
		ones := make([]int, hi-lo)
		for i := range ones {
			ones[i] = 1
		}
		vals, dlogit, err := ganLoss{}.Eval(dv[ganLogitOut], ones)
		if err != nil {
			return 0, nil, err
		}
		var sum float64
		for _, v := range vals {
			sum += v
		}
		for i := range dlogit.Data {
			dlogit.Data[i] *= inv
		}
		dg, err := disc.Backward(dv, map[string]*nets.Tensor{ganLogitOut: dlogit}, false)
		if err != nil {
			return 0, nil, err
		}
		gg, err := gen.Backward(gv, map[string]*nets.Tensor{ganImageOut: dg["input"]}, true)
		if err != nil {
			return 0, nil, err
		}
		out := make([]*nets.Tensor, len(gen.Trainable))
		for i, name := range gen.Trainable {
			if out[i] = gg[name]; out[i] == nil {
				return 0, nil, fmt.Errorf("weight %q does not reach the loss", name)
			}
		}
		return sum * inv, out, nil
	})
	return loss, grads, err
}

// ganLoss is the logistic loss of a GAN discriminator's logit a = D(x) [B, 1]
// against label y ∈ {1 (real), 0 (fake)} (Goodfellow et al. 2014, eq. 1):
//
//	ℓ(a, 1) = −log σ(a) = softplus(−a),   ℓ(a, 0) = −log(1 − σ(a)) = softplus(a),
//
// with dℓ/da = σ(a) − y. The discriminator minimises it on real (y = 1) and
// generated (y = 0) images; the generator's non-saturating loss is ℓ(D(G(z)), 1).
type ganLoss struct{}

// Eval implements nets.Loss.
func (ganLoss) Eval(logits *nets.Tensor, labels []int) ([]float64, *nets.Tensor, error) {
	if logits.Rank() != 2 || logits.Shape[1] != 1 || logits.Shape[0] != len(labels) {
		return nil, nil, fmt.Errorf("gan loss: logits of shape %v for %d labels; want [%d, 1]", logits.Shape, len(labels), len(labels))
	}
	vals := make([]float64, len(labels))
	grad := nets.NewTensor(logits.Shape...)
	for i, y := range labels {
		a := logits.Data[i]
		switch y {
		case 1:
			vals[i] = genSoftplus(-a)
		case 0:
			vals[i] = genSoftplus(a)
		default:
			return nil, nil, fmt.Errorf("gan loss: label %d; want 1 (real) or 0 (fake)", y)
		}
		grad.Data[i] = genSigmoid(a) - float64(y)
	}
	return vals, grad, nil
}

// genTrainables returns g's trainable tensors in order.
func genTrainables(g *nets.Graph) []*nets.Tensor {
	out := make([]*nets.Tensor, len(g.Trainable))
	for i, name := range g.Trainable {
		out[i] = g.Params[name]
	}
	return out
}

// genNormal draws a [rows, cols] batch of N(0, 1) entries from r in row order.
func genNormal(r *rand.Rand, rows, cols int) *nets.Tensor {
	z := nets.NewTensor(rows, cols)
	for i := range z.Data {
		z.Data[i] = r.NormFloat64()
	}
	return z
}

// genStack concatenates two batches of the same per-row shape.
func genStack(a, b *nets.Tensor) (*nets.Tensor, error) {
	if !nets.SameShape(a.Shape[1:], b.Shape[1:]) {
		return nil, fmt.Errorf("cannot stack batches of shapes %v and %v", a.Shape, b.Shape)
	}
	out := nets.NewTensor(append([]int{a.Shape[0] + b.Shape[0]}, a.Shape[1:]...)...)
	copy(out.Data, a.Data)
	copy(out.Data[a.Len():], b.Data)
	return out, nil
}
