package nets

import "fmt"

// SGD is stochastic gradient descent with momentum and L2 weight decay, in the
// form of Sutskever et al., "On the importance of initialization and momentum in
// deep learning", ICML 2013 (as PyTorch's torch.optim.SGD implements it):
//
//	g ← ∇L(w) + λ·w
//	v ← μ·v + g                 (v = g on the first step)
//	w ← w − η·v                 or, with Nesterov, w ← w − η·(g + μ·v)
//
// Momentum μ lies in [0,1) and WeightDecay λ ≥ 0; the zero value is plain SGD.
type SGD struct {
	Momentum    float64
	WeightDecay float64
	Nesterov    bool
	velocity    [][]float64
}

// Step implements Optimizer.
func (o *SGD) Step(params, grads []*Tensor, lr float64) error {
	if err := checkStep("sgd", params, grads, len(o.velocity)); err != nil {
		return err
	}
	if o.Momentum < 0 || o.Momentum >= 1 || o.WeightDecay < 0 {
		return fmt.Errorf("sgd: momentum %g outside [0,1) or weight decay %g negative", o.Momentum, o.WeightDecay)
	}
	first := o.velocity == nil
	if first && o.Momentum != 0 {
		o.velocity = make([][]float64, len(params))
		for i, p := range params {
			o.velocity[i] = make([]float64, p.Len())
		}
	}
	for i, p := range params {
		for k, gk := range grads[i].Data {
			gk += o.WeightDecay * p.Data[k]
			if o.Momentum == 0 {
				p.Data[k] -= lr * gk
				continue
			}
			v := &o.velocity[i][k]
			if first {
				*v = gk
			} else {
				*v = o.Momentum**v + gk
			}
			if o.Nesterov {
				p.Data[k] -= lr * (gk + o.Momentum**v)
			} else {
				p.Data[k] -= lr * *v
			}
		}
	}
	return nil
}

// checkStep checks that params and grads pair up and, once the optimizer has state
// for nState params, that the same number comes back.
func checkStep(name string, params, grads []*Tensor, nState int) error {
	if len(params) != len(grads) {
		return fmt.Errorf("%s: %d params, %d gradients", name, len(params), len(grads))
	}
	if nState != 0 && nState != len(params) {
		return fmt.Errorf("%s: state for %d params, given %d", name, nState, len(params))
	}
	for i := range params {
		if grads[i] == nil || params[i].Len() != grads[i].Len() {
			return fmt.Errorf("%s: param %d of shape %v has gradient %v", name, i, params[i].Shape, grads[i])
		}
	}
	return nil
}
