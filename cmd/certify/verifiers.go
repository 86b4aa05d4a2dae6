package main

import (
	"context"
	"fmt"

	"github.com/certify-dev/certify/bounds"
	"github.com/certify-dev/certify/nets"
	"github.com/certify-dev/certify/pipeline"
	"github.com/certify-dev/certify/verify"
)

// verifierMethod runs a verify.BatchVerifier as a certification method of the
// pipeline, a batch of samples per call. The property of a sample is "its label
// wins" (bounds.RobustnessSpec) over the box of its region: for L∞ the region
// itself, for L2 the smallest box containing the ball (pipeline.Region.Box), which
// is sound — a proof over the box covers the ball — but loose.
type verifierMethod struct {
	v verify.BatchVerifier
}

func (m verifierMethod) Name() string { return m.v.Name() }

// Certify certifies one sample: CertifyBatch on a batch of one.
func (m verifierMethod) Certify(ctx context.Context, model nets.Classifier, q pipeline.Query) (pipeline.Certificate, error) {
	cs, err := m.CertifyBatch(ctx, model, []pipeline.Query{q})
	if err != nil {
		return pipeline.Certificate{}, err
	}
	return cs[0], nil
}

// CertifyBatch certifies the queries in one call of the verifier.
func (m verifierMethod) CertifyBatch(ctx context.Context, model nets.Classifier, qs []pipeline.Query) ([]pipeline.Certificate, error) {
	g, ok := model.(*nets.Graph)
	if !ok {
		return nil, fmt.Errorf("%s bounds the network's layers and needs its graph (a model loaded from ONNX); this model is a %T", m.v.Name(), model)
	}
	if len(qs) == 0 {
		return nil, nil
	}
	// The number of classes, from the network itself.
	probe, err := g.Logits(qs[0].X)
	if err != nil {
		return nil, err
	}
	classes := probe.Len() / probe.Batch()
	per := qs[0].X.Len()
	shape := append([]int{len(qs)}, qs[0].X.Shape[1:]...)
	r := verify.Region{Lo: nets.NewTensor(shape...), Hi: nets.NewTensor(shape...)}
	specs := make([]bounds.Spec, len(qs))
	for i, q := range qs {
		if q.X.Len() != per {
			return nil, fmt.Errorf("sample %d has %d values, sample %d has %d", q.Index, q.X.Len(), qs[0].Index, per)
		}
		lo, hi := q.Region.Box()
		copy(r.Lo.Data[i*per:(i+1)*per], lo.Data)
		copy(r.Hi.Data[i*per:(i+1)*per], hi.Data)
		if specs[i], err = bounds.RobustnessSpec(classes, q.Label); err != nil {
			return nil, fmt.Errorf("sample %d: %w", q.Index, err)
		}
	}
	res, err := m.v.VerifyBatch(ctx, g, r, specs)
	if err != nil {
		return nil, err
	}
	out := make([]pipeline.Certificate, len(qs))
	for i, rs := range res {
		out[i] = pipeline.Certificate{Certified: rs.Verdict == verify.Verified, Margin: rs.Margin}
		if rs.Verdict == verify.Unknown {
			// A budget that ran out ("lp size", "bab domains", "timeout", ...):
			// the sample is reported unknown for this method.
			out[i].Unknown = rs.Reason
		}
		if rs.Verdict == verify.Falsified {
			cex, err := misclassified(g, qs[i], rs.Counterexample)
			if err != nil {
				return nil, fmt.Errorf("sample %d: %w", qs[i].Index, err)
			}
			out[i].Counterexample = cex
		}
	}
	return out, nil
}

// misclassified returns x when it is a counterexample of q as the report
// understands it, else nil. A verifier falsifies the spec over the box, which
// for L2 holds points outside the ball, and "label wins" fails on a tie that
// the report's argmax (lowest index first) may still resolve to the label.
func misclassified(g *nets.Graph, q pipeline.Query, x *nets.Tensor) (*nets.Tensor, error) {
	if x == nil || q.Region.Norm != pipeline.LInf {
		return nil, nil
	}
	y, err := g.Logits(nets.FromData(append([]float64(nil), x.Data...), q.X.Shape...))
	if err != nil {
		return nil, err
	}
	if y.Argmax()[0] == q.Label {
		return nil, nil
	}
	return x, nil
}
