package pipeline

import (
	"context"

	"github.com/certify-dev/certify/nets"
)

// Attack searches the region around each sample for an input the model
// misclassifies. It is the contract of package attacks (design.md), so an attack
// from there plugs in as is. The attack is built with its budget (norm, radius,
// steps, seed); the pipeline gives it samples and labels.
//
// The pipeline trusts no returned point: every row of adv is re-checked to lie in the
// region (Config.Norm, Config.Radius, Config.Domain; a point outside is an error,
// an attack bug) and counts as adversarial only if the model misclassifies it.
type Attack interface {
	// Name is the key of this attack in the report (attacks.<name>,
	// summary.seconds.<name>), e.g. "pgd".
	Name() string
	// Run returns one point per row of x ([batch, ...input shape]), the best
	// adversarial candidate found, or the row of x itself when none was found.
	Run(ctx context.Context, model nets.Classifier, x *nets.Tensor, labels []int) (adv *nets.Tensor, err error)
}
