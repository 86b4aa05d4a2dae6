package main

// Row is one line of the zoo's results: one member at one radius. It is an
// element of the JSON list written to --out-json.
//
// Accuracies are fractions of the N images (of CertifiedN[method] images where
// that differs). Under an attack, an image counts as robust when the model
// classifies it correctly and the attack's point is not an adversarial success;
// for a rejecting model (a detector) a success is a point classified as another
// class, neither the label nor the reject column, so a detected attack counts as
// defended, and Rejected says how often that happened. Attacks["all"] is the
// per-image worst case over every attack that ran on the row.
type Row struct {
	Defense string  `json:"defense"`
	Model   string  `json:"model"`
	Norm    string  `json:"norm"`
	Epsilon float64 `json:"epsilon"`
	// N is the number of images evaluated; 0 for a skipped member.
	N int `json:"n"`
	// Clean is the clean accuracy; null for a skipped member.
	Clean *float64 `json:"clean"`
	// Attacks maps an attack ("fgsm", "pgd", "pgd-cw", "square", "adaptive",
	// "all") to the accuracy under it. Attacks that do not apply (gradients of a
	// model without them) are absent.
	Attacks map[string]float64 `json:"attacks"`
	// Adaptive names the adaptive attack of Attacks["adaptive"] ("bpda", "eot",
	// ...: defenses.AdaptiveTarget.Name).
	Adaptive string `json:"adaptive,omitempty"`
	// Certified maps a certification method ("ibp", "crown", "lp", "smoothing")
	// to the certified accuracy.
	Certified map[string]float64 `json:"certified"`
	// CertifiedN gives the number of images of the methods run on fewer than N.
	CertifiedN map[string]int `json:"certified_n,omitempty"`
	// Rejected is, for a rejecting model, the fraction of images whose clean
	// input ("clean") or attack point (per attack) the model rejects.
	Rejected map[string]float64 `json:"rejected,omitempty"`
	Notes    string             `json:"notes,omitempty"`
}

// Attack keys of Row.Attacks, in table order.
const (
	attackFGSM     = "fgsm"
	attackPGD      = "pgd"
	attackPGDCW    = "pgd-cw"
	attackSquare   = "square"
	attackAdaptive = "adaptive"
	attackAll      = "all"
)
