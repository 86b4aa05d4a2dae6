package main

// Member is one defense of the zoo: the model file that embodies it and the threat
// model it is evaluated under.
type Member struct {
	// Defense is the member's name in reports and in --members.
	Defense string
	// File is the model, relative to --dir: an ONNX graph or a wrapper spec (.json,
	// defenses.Load).
	File string
	// Norm is the perturbation norm of its rows, "linf" or "l2".
	Norm string
	// Epsilons are the radii of its rows (--eps-list or --l2-eps-list replace them).
	Epsilons []float64
	// Certified lists the certification methods that apply: "ibp", "crown", "lp"
	// (these three only when the file loads as a plain *nets.Graph; "lp" only on
	// networks without convolutions, where it is cheap enough) and "smoothing"
	// (randomized smoothing of the model at σ = --sigma, L2 rows).
	Certified []string
	// Square runs the black-box Square attack too: for members that may mask
	// gradients (input transformations, randomisation, detectors, distillation),
	// where a gradient attack failing proves little.
	Square bool
	// MaxImages, when positive, caps the images the member is evaluated on (a
	// defense whose every forward pass is an optimisation, Defense-GAN).
	MaxImages int
	// AdaptiveSteps and AdaptiveRestarts, when positive, replace the settings'
	// for this member's adaptive attack (for the same reason).
	AdaptiveSteps, AdaptiveRestarts int
}

// Certification method names: keys of Row.Certified.
const (
	methodIBP       = "ibp"
	methodCROWN     = "crown"
	methodLP        = "lp"
	methodSmoothing = "smoothing"
)

// Default radii: L∞ ε = 0.1 and 0.3 (0.3 is the MNIST challenge radius of Madry et
// al. 2018); L2 ε = 0.25, 0.5 and 0.75 for the smoothing rows (radii at which Cohen
// et al. 2019 report certified accuracy for σ = 0.25). Not 1.0: with n = 10,000
// noise samples and α = 0.001 the largest radius CERTIFY can return is
// σ·Φ⁻¹(α^{1/n}) ≈ 0.25·3.2 = 0.80 even when every sample agrees.
var (
	defaultLinfEps = []float64{0.1, 0.3}
	defaultL2Eps   = []float64{0.25, 0.5, 0.75}
)

// zoo returns the members in report order: undefended baselines, training
// defenses (plain graphs), wrapper defenses (spec files) and the noise-trained
// network under randomized smoothing.
func zoo() []Member {
	plain := func(name, file string, lp bool, square bool) Member {
		c := []string{methodIBP, methodCROWN}
		if lp {
			c = append(c, methodLP)
		}
		return Member{Defense: name, File: file, Norm: "linf", Epsilons: defaultLinfEps, Certified: c, Square: square}
	}
	wrapper := func(name, file string) Member {
		// A wrapper spec can still load as a plain graph in principle; IBP and
		// CROWN then apply, and are skipped (with a note) otherwise.
		return Member{Defense: name, File: file, Norm: "linf", Epsilons: defaultLinfEps, Certified: []string{methodIBP, methodCROWN}, Square: true}
	}
	return []Member{
		plain("undefended-cnn", "mnist_cnn.onnx", true, false),
		plain("undefended-mlp", "mnist_mlp.onnx", true, false),
		plain("fgsm-at", "zoo/fgsm_at.onnx", true, false),
		plain("pgd-at", "zoo/pgd_at.onnx", true, false),
		plain("ensemble-at", "zoo/ensemble_at.onnx", true, false),
		plain("generative-at", "zoo/generative_at.onnx", true, false),
		plain("distillation", "zoo/distillation.onnx", true, true),
		plain("alp", "zoo/alp.onnx", true, false),
		plain("ibp", "zoo/ibp.onnx", true, false),
		plain("crown-ibp", "zoo/crown_ibp.onnx", true, false),
		wrapper("blur", "zoo/blur.json"),
		wrapper("jpeg", "zoo/jpeg.json"),
		wrapper("bit-depth", "zoo/bit_depth.json"),
		wrapper("defense-vae", "zoo/defense_vae.json"),
		// Each Defense-GAN forward pass is 100 descent steps from 5 starts per
		// image (~13 images/s): 100 images, no Square, a 20-step BPDA.
		{Defense: "defense-gan", File: "zoo/defense_gan.json", Norm: "linf", Epsilons: defaultLinfEps,
			MaxImages: 100, AdaptiveSteps: 20, AdaptiveRestarts: 1},
		wrapper("activation-detector", "zoo/activation_detector.json"),
		wrapper("confidence-detector", "zoo/confidence_detector.json"),
		wrapper("squeeze-detector", "zoo/squeeze_detector.json"),
		wrapper("ensemble", "zoo/ensemble.json"),
		wrapper("rotation", "zoo/rotation.json"),
		wrapper("shattered", "zoo/shattered.json"),
		// 20 EOT draws per gradient: a 20-step adaptive attack costs 400 gradients.
		{Defense: "stochastic", File: "zoo/stochastic.json", Norm: "linf", Epsilons: defaultLinfEps,
			Certified: []string{methodIBP, methodCROWN}, Square: true, AdaptiveSteps: 20},
		wrapper("saturated", "zoo/saturated.json"),
		{Defense: "noise-0.25", File: "mnist_cnn_noise025.onnx", Norm: "l2", Epsilons: defaultL2Eps, Certified: []string{methodSmoothing}},
	}
}
