package bounds

import (
	"fmt"

	"github.com/certify-dev/certify/nets"
)

// newGlobalAveragePool relaxes GlobalAveragePool, the mean over all spatial
// positions: a linear pool with weights 1/area (poolLayer, averagepool.go).
func newGlobalAveragePool(b base, op nets.GlobalAveragePool) (layer, error) {
	return newPool(b, op, func(x *nets.Tensor) (int, error) {
		if x.Rank() < 3 {
			return 0, fmt.Errorf("input of shape %v: want (N,C,D1,…)", x.Shape)
		}
		return nets.NumElements(x.Shape[2:]), nil
	})
}
