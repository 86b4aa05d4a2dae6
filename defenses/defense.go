package defenses

import (
	"context"
	"encoding/binary"
	"hash/fnv"
	"math"
	"math/rand/v2"

	"github.com/certify-dev/certify/attacks"
	"github.com/certify-dev/certify/nets"
)

// Data is a labelled training set: X [n, ...input shape], one label per row.
type Data struct {
	X      *nets.Tensor
	Labels []int
}

// Recipe is a training defense. Train fits g's Trainable params in place on d,
// starting from cfg (epochs, batch size, optimizer, schedule and the seeded Rand),
// to which the recipe adds what it needs (a Prepare hook that attacks each
// minibatch, its own loss). A recipe that trains other networks on the way (a
// teacher, a generator) gives them their own optimizers; its randomness (attack
// starts, a generator's initialisation) comes from its own Seed field or from
// cfg.Rand, so the same seeds give the same bytes on any number of cores.
type Recipe interface {
	// Name is the recipe's short name, e.g. "pgd-at".
	Name() string
	Train(g *nets.Graph, d Data, cfg nets.TrainConfig) ([]nets.EpochStats, error)
}

// Model is a defended model as certify sees it: a classifier with a known input
// shape. A *nets.Graph is one; so is every wrapper.
type Model interface {
	nets.Classifier
	// InputShape is the shape of one input, the batch dimension excluded (-1 for a
	// dynamic dimension), as nets.Graph.InputShape.
	InputShape() ([]int, error)
}

// Adaptive is implemented by a defended model whose own gradients are the wrong
// thing for a white-box attack to follow (Athalye, Carlini & Wagner, "Obfuscated
// Gradients Give a False Sense of Security", ICML 2018).
type Adaptive interface {
	// AdaptiveTarget returns what an adaptive attack differentiates. Its
	// adversarial examples are judged on the defended model itself.
	AdaptiveTarget() (AdaptiveTarget, error)
}

// AdaptiveTarget is the model (and loss) an adaptive attack ascends in place of a
// defended model.
type AdaptiveTarget struct {
	// Name is the adaptive attack's name in reports: "bpda", "eot", "bpda+eot",
	// "detector-aware", ...
	Name string
	// Model is what is differentiated: attacks.BPDA around a non-differentiable
	// transformation, attacks.EOT around a random one, a detector and its
	// classifier together.
	Model nets.Differentiable
	// Loss is the loss ascended; nil means cross-entropy.
	Loss nets.Loss
	// Refine, when set, is a second stage run from the first stage's points adv
	// (one per row of x, inside budget b around x), returning points inside b: for
	// defenses no single loss evades (the squeeze detector: fool the squeezed
	// branch first, then make the plain branch agree).
	Refine func(ctx context.Context, b attacks.Budget, x, adv *nets.Tensor, labels []int) (*nets.Tensor, error)
}

// Rejecting is a model with a reject option: a detector in front of a classifier.
// Its Logits have one column per class and one more, Reject(); an input is rejected
// when that column wins the argmax, and classified by the others when it does not.
// A rejected clean input is not correct; a rejected adversarial input is not an
// adversarial success. Reports keep rejections apart from both.
type Rejecting interface {
	Model
	// Reject is the index of the reject column (the number of classes).
	Reject() int
}

// InputRand returns a random stream determined by seed and the bits of one input
// row. Randomised wrappers draw from it, so that a model call is reproducible, does
// not depend on the rest of the batch or on the cores, and every new point an
// attack visits gets fresh randomness (as attacks.EOT draws).
func InputRand(seed uint64, row []float64) *rand.Rand {
	h := fnv.New64a()
	var buf [8]byte
	for _, v := range row {
		binary.LittleEndian.PutUint64(buf[:], math.Float64bits(v))
		h.Write(buf[:])
	}
	return rand.New(rand.NewPCG(seed, h.Sum64()))
}

// Randomised is implemented by wrappers whose answer to an input is a random draw
// (seeded, so reproducible). An attack that visits many points sees many draws and
// may stop on a lucky one; judging its result with the same draw would count that
// luck as a success. Reseeded returns the same defense with independent draws, so
// an evaluation can judge adversarial examples on fresh draws.
type Randomised interface {
	Model
	Reseeded(seed uint64) Model
}
