package defenses

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/certify-dev/certify/nets"
)

// VAEConfig sets up TrainVAE: an MLP encoder D→Hidden→2·Latent and decoder
// Latent→Hidden→D (D the number of pixels), trained for Epochs passes over the data
// in minibatches of Batch rows by Adam at learning rate LR. Seed fixes the
// initial weights, the shuffles and the reparameterisation noise. Hidden, Latent,
// Epochs and Batch must be positive, LR positive and finite.
type VAEConfig struct {
	Hidden, Latent, Epochs, Batch int
	LR                            float64
	Seed                          uint64
}

// TrainVAE fits the variational autoencoder of Kingma & Welling, "Auto-Encoding
// Variational Bayes", ICLR 2014 (their Appendix C: MLP encoder and Bernoulli MLP
// decoder) to the images d.X in [0,1] (labels are not used), and returns its
// projection x ↦ decoder(μ(x)), the deterministic reconstruction a Defense-VAE
// classifies: a graph [B, ...image shape] → [B, ...image shape] that shares the
// trained weights and exports with nets.WriteONNX.
//
// The encoder is h = ReLU(W₁x + b₁), μ = W_μh + b_μ, log σ² = W_σh + b_σ; the
// decoder is x̂ = sigmoid(W₃ ReLU(W₂z + b₂) + b₃). Each minibatch minimises the
// negative evidence lower bound averaged over its rows (their eq. 10, one sample
// of z per image):
//
//	L(x) = Σ_j BCE(x_j, x̂_j) + KL(N(μ, σ²) ‖ N(0, I)),  z = μ + σ ⊙ ε,  ε ~ N(0, I),
//	KL = −½ Σ_k (1 + log σ_k² − μ_k² − σ_k²),
//
// with the reconstruction term computed on the decoder's pre-sigmoid output for
// numerical stability. The noise ε is drawn in row order before the minibatch's
// chunks run in parallel, and the chunks' gradients are summed in order, so a seed
// gives the same weights on any number of cores.
func TrainVAE(d Data, cfg VAEConfig) (*nets.Graph, error) {
	if err := checkGenerativeConfig("vae", cfg.Hidden, cfg.Latent, cfg.Epochs, cfg.Batch, cfg.LR); err != nil {
		return nil, err
	}
	if err := checkImages("vae", d); err != nil {
		return nil, err
	}
	r := rand.New(rand.NewPCG(cfg.Seed, 0x7661650a)) // "vae"
	v, err := newVAE(r, d.X.Shape[1:], cfg.Hidden, cfg.Latent)
	if err != nil {
		return nil, err
	}
	opt := nets.NewAdam()
	n := d.X.Shape[0]
	for epoch := 0; epoch < cfg.Epochs; epoch++ {
		perm := r.Perm(n)
		for lo := 0; lo < n; lo += cfg.Batch {
			xb := gatherRows(d.X, perm[lo:min(lo+cfg.Batch, n)])
			loss, grads, err := v.lossGrad(xb, genNormal(r, xb.Shape[0], cfg.Latent))
			if err != nil {
				return nil, fmt.Errorf("vae: epoch %d: %w", epoch+1, err)
			}
			if math.IsNaN(loss) || math.IsInf(loss, 0) {
				return nil, fmt.Errorf("vae: epoch %d: loss is %v (diverged; lower the learning rate)", epoch+1, loss)
			}
			if err := opt.Step(v.params, grads, cfg.LR); err != nil {
				return nil, fmt.Errorf("vae: epoch %d: %w", epoch+1, err)
			}
		}
	}
	return v.proj, nil
}

// vae holds the three graphs of one VAE over a shared set of weights: the encoder
// (image → "mu", "logvar"), the decoder (latent "z" → "reconstruction", with the
// pre-sigmoid value "dec.logits") and the projection (image → decoder(μ)).
type vae struct {
	enc, dec, proj *nets.Graph
	names          []string // trainable weights, encoder's then decoder's
	params         []*nets.Tensor
	latent         int
}

// Value names of the VAE's graphs.
const (
	vaeMu        = "mu"
	vaeLogVar    = "logvar"
	vaeDecLogits = "dec.logits"
	vaeOut       = "reconstruction"
)

func newVAE(r *rand.Rand, shape []int, hidden, latent int) (*vae, error) {
	pixels := nets.NumElements(shape)
	w := genWeights{}
	w.dense(r, "enc.fc1", pixels, hidden)
	w.dense(r, "enc.mu", hidden, latent)
	w.dense(r, "enc.logvar", hidden, latent)
	w.dense(r, "dec.fc1", latent, hidden)
	w.dense(r, "dec.fc2", hidden, pixels)

	enc := newGenChain("vae_encoder", "input", append([]int{-1}, shape...), w)
	enc.node("Flatten", "flatten", genIntAttr("axis", 1))
	enc.gemm("enc.fc1")
	enc.node("Relu", "enc.relu1", nets.NewAttrs())
	enc.gemm("enc.mu")
	enc.rename(vaeMu)
	enc.cur = "enc.relu1"
	enc.gemm("enc.logvar")
	enc.rename(vaeLogVar)
	encG, err := enc.finish([]int{-1, latent}, vaeMu, vaeLogVar)
	if err != nil {
		return nil, err
	}

	dec := newGenChain("vae_decoder", "z", []int{-1, latent}, w)
	genDecoder(dec, shape)
	decG, err := dec.finish(append([]int{-1}, shape...), vaeOut)
	if err != nil {
		return nil, err
	}

	proj := newGenChain("vae_projection", "input", append([]int{-1}, shape...), w)
	proj.node("Flatten", "flatten", genIntAttr("axis", 1))
	proj.gemm("enc.fc1")
	proj.node("Relu", "enc.relu1", nets.NewAttrs())
	proj.gemm("enc.mu")
	genDecoder(proj, shape)
	projG, err := proj.finish(append([]int{-1}, shape...), vaeOut)
	if err != nil {
		return nil, err
	}

	v := &vae{enc: encG, dec: decG, proj: projG, latent: latent}
	v.names = append(append([]string(nil), encG.Trainable...), decG.Trainable...)
	for _, name := range v.names {
		v.params = append(v.params, w[name])
	}
	return v, nil
}

// decoder appends Gemm → ReLU → Gemm ("dec.logits") → Sigmoid → Reshape to the
// image shape, named "reconstruction".
func genDecoder(c *genChain, shape []int) {
	c.gemm("dec.fc1")
	c.node("Relu", "dec.relu1", nets.NewAttrs())
	c.gemm("dec.fc2")
	c.rename(vaeDecLogits)
	c.node("Sigmoid", "dec.sigmoid", nets.NewAttrs())
	c.reshape(vaeOut, shape)
}

// lossGrad returns the mean negative ELBO of the batch x with reparameterisation
// noise eps [B, latent], and its gradient with respect to v.params.
func (v *vae) lossGrad(x, eps *nets.Tensor) (float64, []*nets.Tensor, error) {
	b := x.Shape[0]
	if eps.Rank() != 2 || eps.Shape[0] != b || eps.Shape[1] != v.latent {
		return 0, nil, fmt.Errorf("vae: noise of shape %v for a batch of %d and latent size %d", eps.Shape, b, v.latent)
	}
	inv := 1 / float64(b)
	return sumChunks(b, gradChunk, len(v.params), func(lo, hi int) (float64, []*nets.Tensor, error) {
		xc := rowsOf(x, lo, hi)
		ec := rowsOf(eps, lo, hi)
		ev, err := v.enc.Forward(map[string]*nets.Tensor{"input": xc})
		if err != nil {
			return 0, nil, fmt.Errorf("encoder: %w", err)
		}
		mu, lv := ev[vaeMu], ev[vaeLogVar]
		z := nets.NewTensor(hi-lo, v.latent)
		for i := range z.Data {
			z.Data[i] = mu.Data[i] + math.Exp(0.5*lv.Data[i])*ec.Data[i]
		}
		dv, err := v.dec.Forward(map[string]*nets.Tensor{"z": z})
		if err != nil {
			return 0, nil, fmt.Errorf("decoder: %w", err)
		}
		logits := dv[vaeDecLogits]
		loss, dlogits := bceWithLogits(logits.Data, xc.Data)
		for i := range dlogits {
			dlogits[i] *= inv
		}
		dg, err := v.dec.Backward(dv, map[string]*nets.Tensor{vaeDecLogits: nets.FromData(dlogits, logits.Shape...)}, true)
		if err != nil {
			return 0, nil, fmt.Errorf("decoder backward: %w", err)
		}
		dz := dg["z"]
		kl, dmu, dlv := gaussianKL(mu.Data, lv.Data)
		loss += kl
		for i := range dmu {
			// z = μ + e^{λ/2}ε: ∂z/∂μ = 1, ∂z/∂λ = ½ e^{λ/2} ε.
			dmu[i] = dmu[i]*inv + dz.Data[i]
			dlv[i] = dlv[i]*inv + dz.Data[i]*0.5*math.Exp(0.5*lv.Data[i])*ec.Data[i]
		}
		eg, err := v.enc.Backward(ev, map[string]*nets.Tensor{
			vaeMu:     nets.FromData(dmu, mu.Shape...),
			vaeLogVar: nets.FromData(dlv, lv.Shape...),
		}, true)
		if err != nil {
			return 0, nil, fmt.Errorf("encoder backward: %w", err)
		}
		grads := make([]*nets.Tensor, len(v.names))
		for i, name := range v.names {
			g, ok := eg[name]
			if !ok {
				g, ok = dg[name]
			}
			if !ok {
				return 0, nil, fmt.Errorf("weight %q does not reach the loss", name)
			}
			grads[i] = g
		}
		return loss * inv, grads, nil
	})
}

// bceWithLogits returns Σ_j BCE(x_j, sigmoid(a_j)) = Σ_j softplus(a_j) − x_j a_j
// and its gradient sigmoid(a_j) − x_j, stable for any a.
func bceWithLogits(a, x []float64) (float64, []float64) {
	var loss float64
	grad := make([]float64, len(a))
	for j, aj := range a {
		loss += genSoftplus(aj) - x[j]*aj
		grad[j] = genSigmoid(aj) - x[j]
	}
	return loss, grad
}

// gaussianKL returns KL(N(μ, diag e^λ) ‖ N(0, I)) = −½ Σ_k (1 + λ_k − μ_k² − e^{λ_k})
// summed over all entries (Kingma & Welling 2014, Appendix B), with its gradients
// μ_k and ½(e^{λ_k} − 1).
func gaussianKL(mu, logvar []float64) (float64, []float64, []float64) {
	var kl float64
	dmu := make([]float64, len(mu))
	dlv := make([]float64, len(mu))
	for k, m := range mu {
		e := math.Exp(logvar[k])
		kl -= 0.5 * (1 + logvar[k] - m*m - e)
		dmu[k] = m
		dlv[k] = 0.5 * (e - 1)
	}
	return kl, dmu, dlv
}

// softplus is log(1 + e^a) without overflow.
func genSoftplus(a float64) float64 {
	if a > 0 {
		return a + math.Log1p(math.Exp(-a))
	}
	return math.Log1p(math.Exp(a))
}

func genSigmoid(a float64) float64 {
	if a >= 0 {
		return 1 / (1 + math.Exp(-a))
	}
	e := math.Exp(a)
	return e / (1 + e)
}

// gradChunk is the number of rows one goroutine pushes through a graph in the
// generative models' training: the chunks, not the cores, fix the order in which
// gradients are summed.
const gradChunk = 16

// sumChunks splits n rows into chunks of size rows, runs f on each (on all cores)
// and sums the losses and the k gradients in chunk order, so the result does not
// depend on GOMAXPROCS.
func sumChunks(n, size, k int, f func(lo, hi int) (float64, []*nets.Tensor, error)) (float64, []*nets.Tensor, error) {
	nc := (n + size - 1) / size
	losses := make([]float64, nc)
	grads := make([][]*nets.Tensor, nc)
	errs := make([]error, nc)
	forEach(nc, func(c int) {
		losses[c], grads[c], errs[c] = f(c*size, min((c+1)*size, n))
	})
	if err := errors.Join(errs...); err != nil {
		return 0, nil, err
	}
	loss := losses[0]
	sum := make([]*nets.Tensor, k)
	for i, g := range grads[0] {
		sum[i] = g.Clone() // ours to add into, whatever Backward aliased
	}
	for c := 1; c < nc; c++ {
		loss += losses[c]
		for i, g := range grads[c] {
			for j, v := range g.Data {
				sum[i].Data[j] += v
			}
		}
	}
	return loss, sum, nil
}

func checkGenerativeConfig(what string, hidden, latent, epochs, batch int, lr float64) error {
	if hidden <= 0 || latent <= 0 || epochs <= 0 || batch <= 0 {
		return fmt.Errorf("%s: hidden %d, latent %d, epochs %d, batch %d: want positive", what, hidden, latent, epochs, batch)
	}
	if !(lr > 0) || math.IsInf(lr, 0) {
		return fmt.Errorf("%s: learning rate %v: want positive and finite", what, lr)
	}
	return nil
}

func checkImages(what string, d Data) error {
	if d.X == nil || d.X.Rank() < 2 || d.X.Shape[0] == 0 || d.X.Len() == 0 {
		return fmt.Errorf("%s: no training images", what)
	}
	for _, v := range d.X.Data {
		if !(v >= 0 && v <= 1) {
			return fmt.Errorf("%s: pixel value %v outside [0,1] (a sigmoid decoder models [0,1] images)", what, v)
		}
	}
	return nil
}

// genWeights is a store of named weight tensors that several graphs share.
type genWeights map[string]*nets.Tensor

// dense adds a fully connected layer's weight [out, in], He-initialised
// N(0, 2/in) (He et al., ICCV 2015), and its zero bias [out].
func (w genWeights) dense(r *rand.Rand, name string, in, out int) {
	t := nets.NewTensor(out, in)
	sd := math.Sqrt(2 / float64(in))
	for i := range t.Data {
		t.Data[i] = sd * r.NormFloat64()
	}
	w[name+".weight"] = t
	w[name+".bias"] = nets.NewTensor(out)
}

// genChain builds a graph node after node, each reading the previous one's output;
// the first error sticks.
type genChain struct {
	g   *nets.Graph
	w   genWeights
	cur string
	err error
}

func newGenChain(name, input string, shape []int, w genWeights) *genChain {
	g := &nets.Graph{Name: name, Inputs: []nets.ValueInfo{{Name: input, Shape: shape}},
		Params: map[string]*nets.Tensor{}, Opset: 13}
	return &genChain{g: g, w: w, cur: input}
}

// node appends opType reading the current value and the named constants, and
// producing value out.
func (c *genChain) node(opType, out string, attrs nets.Attrs, consts ...string) {
	if c.err != nil {
		return
	}
	op, err := nets.Constructors()[opType](nets.NodeSpec{Attrs: attrs, Opset: c.g.Opset, NumInputs: 1 + len(consts), NumOutputs: 1})
	if err != nil {
		c.err = fmt.Errorf("%s: node %s (%s): %w", c.g.Name, out, opType, err)
		return
	}
	c.g.Nodes = append(c.g.Nodes, &nets.Node{Name: out, Op: op, Inputs: append([]string{c.cur}, consts...), Outputs: []string{out}})
	c.cur = out
}

// gemm appends the dense layer name (x Wᵀ + b), its weights trainable.
func (c *genChain) gemm(name string) {
	w, b := name+".weight", name+".bias"
	for _, p := range []string{w, b} {
		if c.w[p] == nil {
			c.err = fmt.Errorf("%s: no weight %q", c.g.Name, p)
			return
		}
		c.g.Params[p] = c.w[p]
		c.g.Trainable = append(c.g.Trainable, p)
	}
	c.node("Gemm", name, genIntAttr("transB", 1), w, b)
}

// reshape appends a Reshape to [-1, shape...] producing value out.
func (c *genChain) reshape(out string, shape []int) {
	target := nets.NewTensor(len(shape) + 1)
	target.Data[0] = -1
	for i, d := range shape {
		target.Data[i+1] = float64(d)
	}
	c.g.Params[out+".shape"] = target
	c.node("Reshape", out, nets.NewAttrs(), out+".shape")
}

// rename gives the last node's output the name out.
func (c *genChain) rename(out string) {
	if c.err != nil {
		return
	}
	c.g.Nodes[len(c.g.Nodes)-1].Outputs[0] = out
	c.cur = out
}

// finish declares the outputs (all of the given shape) and validates the graph.
func (c *genChain) finish(shape []int, outputs ...string) (*nets.Graph, error) {
	if c.err != nil {
		return nil, c.err
	}
	for _, o := range outputs {
		c.g.Outputs = append(c.g.Outputs, nets.ValueInfo{Name: o, Shape: append([]int(nil), shape...)})
	}
	if err := c.g.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", c.g.Name, err)
	}
	return c.g, nil
}

func genIntAttr(name string, v int) nets.Attrs {
	a := nets.NewAttrs()
	a.SetInt(name, v)
	return a
}
