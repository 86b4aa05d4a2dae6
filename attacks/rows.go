package attacks

import "context"

// rowsKey is the context key of a batch's row identities.
type rowsKey struct{}

// WithRows tells the attacks run with the returned context that row i of their
// batch is the sample ids[i] (its index in the data file). An attack draws row i's
// randomness from RowRand(seed, Row(ctx, i)), so a sample is attacked with the same
// random stream whichever batch it sits in and at whatever position: a run split
// into shards, or into chunks for progress, attacks every sample as the whole run
// does. Without WithRows, row i is sample i.
func WithRows(ctx context.Context, ids []int) context.Context {
	return context.WithValue(ctx, rowsKey{}, append([]int(nil), ids...))
}

// Row is the identity of row i of the batch attacked with ctx: the id WithRows gave
// it, or i itself.
func Row(ctx context.Context, i int) int {
	if ids, ok := ctx.Value(rowsKey{}).([]int); ok && i >= 0 && i < len(ids) {
		return ids[i]
	}
	return i
}

// SubRows is the context for a sub-batch made of the rows idx of the batch attacked
// with ctx (an attack that re-runs another on its unbroken rows, say): row k of the
// sub-batch keeps the identity of row idx[k].
func SubRows(ctx context.Context, idx []int) context.Context {
	ids := make([]int, len(idx))
	for k, i := range idx {
		ids[k] = Row(ctx, i)
	}
	return context.WithValue(ctx, rowsKey{}, ids)
}
