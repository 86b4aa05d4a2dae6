package pipeline

import (
	"context"
	"errors"
	"fmt"

	"github.com/certify-dev/certify/nets"
)

// BatchMethod is a Method whose cost is per batch of samples rather than per
// sample: CROWN's backward pass, say, is one product of matrices for all samples at
// once. The pipeline then hands it the correctly classified samples MethodBatch at a
// time instead of one by one.
//
// CertifyBatch must be safe for concurrent use (several batches run at once), and
// a sample's certificate must not depend on the other samples of its batch (beyond
// rounding in the last bits of the margin): which samples share a batch depends on
// the clean pass, their indices and Config.MethodBatch (see Block), never on
// timing or the number of workers, so the same run gives the same report bit for
// bit, sharded or not.
type BatchMethod interface {
	Method
	// CertifyBatch returns one certificate per query, in order.
	CertifyBatch(ctx context.Context, model nets.Classifier, qs []Query) ([]Certificate, error)
}

// DefaultMethodBatch is the batch size of a BatchMethod when Config.MethodBatch is 0.
const DefaultMethodBatch = Block

// Block is how the pipeline groups samples into calls: a BatchMethod's batches
// (at the default MethodBatch) and an attack's chunks are the samples whose
// data-file indices lie in one block [k·Block, (k+1)·Block) (those the stage runs
// on). Which samples share a call depends on nothing else, so a shard made of
// whole blocks (certify --shard) makes every call exactly as the whole run does:
// a batch's bounds are products of matrices whose rounding may depend on the
// batch's other rows, and a shard's report must equal the whole run's bit for bit.
// (A Config.MethodBatch that does not divide Block breaks this: its batches
// straddle the shards' blocks.)
const Block = 32

// blocks groups the rows todo into calls of at most size samples whose indices
// share a block of size consecutive indices, in the order of todo's first row of
// each block.
func blocks(samples []Sample, todo []int, size int) [][]int {
	var out [][]int
	at := map[int]int{}
	for _, row := range todo {
		k := samples[row].Index / size
		b, ok := at[k]
		if !ok {
			b = len(out)
			at[k] = b
			out = append(out, nil)
		}
		out[b] = append(out[b], row)
	}
	return out
}

// certifyBatches certifies the rows todo with m in batches of at most
// cfg.MethodBatch rows (the rows of one block of that many indices, see Block),
// Workers batches at once, and returns the certificates in the order of todo. The
// batches are fixed by the samples' indices and MethodBatch alone, never by timing,
// the number of workers or the other samples of the run. A batch whose time runs out (cfg.SampleTimeout
// per sample of it, or the run's deadline ending work) has unknown certificates.
func certifyBatches(ctx, work context.Context, cfg Config, m BatchMethod, samples []Sample, todo []int, pr *progress) ([]Certificate, error) {
	name := m.Name()
	size := cfg.MethodBatch
	if size <= 0 {
		size = DefaultMethodBatch
	}
	batches := blocks(samples, todo, size)
	pos := make(map[int]int, len(todo)) // row -> its place in todo
	for t, row := range todo {
		pos[row] = t
	}
	certs := make([]Certificate, len(todo))
	errs := inParallel(work, len(batches), cfg.workers(), func(work context.Context, b int) error {
		rows := batches[b]
		defer pr.add(len(rows))
		qs := make([]Query, len(rows))
		for i, row := range rows {
			qs[i] = query(cfg, samples, row)
		}
		var got []Certificate
		one, err := bounded(ctx, work, cfg.SampleTimeout, len(qs), func(c context.Context) (Certificate, error) {
			var err error
			got, err = m.CertifyBatch(c, cfg.Model, qs)
			if err == nil && len(got) != len(qs) {
				err = fmt.Errorf("%d certificates for %d samples", len(got), len(qs))
			}
			return Certificate{}, err
		})
		switch {
		case errors.Is(err, errSkipped):
			return err
		case err != nil:
			which := fmt.Sprintf("samples %d..%d", qs[0].Index, qs[len(qs)-1].Index)
			if len(qs) == 1 {
				which = fmt.Sprintf("sample %d", qs[0].Index)
			}
			return fmt.Errorf("method %s: %s: %w", name, which, err)
		case one.Unknown != "":
			for _, row := range rows {
				certs[pos[row]] = one
			}
		default:
			for i, row := range rows {
				certs[pos[row]] = deadlined(ctx, work, got[i])
			}
		}
		return nil
	})
	// Report the error of the first failing batch, or the caller's cancellation.
	// A batch skipped or cancelled because another one failed is passed over in
	// favour of the error that caused it.
	var first error
	for _, err := range errs {
		if err == nil || errors.Is(err, errSkipped) {
			continue
		}
		if first == nil || errors.Is(first, context.Canceled) && !errors.Is(err, context.Canceled) {
			first = err
		}
	}
	if first != nil {
		return nil, first
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return certs, nil
}
