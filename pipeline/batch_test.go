package pipeline

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/certify-dev/certify/nets"
)

// batchExact is exactMethod as a BatchMethod; it records the size of every batch.
type batchExact struct {
	exactMethod
	mu    sync.Mutex
	sizes []int
	fail  func(ctx context.Context, qs []Query) error // when set, an error for some batches
	short bool                                        // return one certificate too few
}

func (b *batchExact) CertifyBatch(ctx context.Context, model nets.Classifier, qs []Query) ([]Certificate, error) {
	b.mu.Lock()
	b.sizes = append(b.sizes, len(qs))
	b.mu.Unlock()
	if b.fail != nil {
		if err := b.fail(ctx, qs); err != nil {
			return nil, err
		}
	}
	out := make([]Certificate, len(qs))
	for i, q := range qs {
		c, err := b.Certify(ctx, model, q)
		if err != nil {
			return nil, err
		}
		out[i] = c
	}
	if b.short {
		out = out[1:]
	}
	return out, nil
}

// TestRunBatchMethod: a BatchMethod gets the correctly classified samples in
// batches of at most MethodBatch, one per block of MethodBatch indices, and the report is the one of the same method run
// per sample, for any batch size and number of workers.
func TestRunBatchMethod(t *testing.T) {
	m, x, y := setup(3)
	base := Config{Model: m, X: x, Labels: y, Radius: 0.08, Norm: LInf, Domain: Domain{0, 1}}
	cfg := base
	cfg.Methods = []Method{exactMethod{"exact"}}
	want, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	correct := 0
	for _, s := range want.Samples {
		if s.Correct() {
			correct++
		}
	}
	// blocksOf counts the blocks of limit indices holding a correct sample.
	blocksOf := func(limit int) int {
		seen := map[int]bool{}
		for _, s := range want.Samples {
			if s.Correct() {
				seen[s.Index/limit] = true
			}
		}
		return len(seen)
	}
	for _, batch := range []int{0, 1, 3, 7, 1000} {
		for _, workers := range []int{1, 4} {
			bm := &batchExact{exactMethod: exactMethod{"exact"}}
			cfg := base
			cfg.Methods, cfg.MethodBatch, cfg.Workers = []Method{bm}, batch, workers
			got, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatalf("batch %d, workers %d: %v", batch, workers, err)
			}
			if !reflect.DeepEqual(got.Samples, want.Samples) || !reflect.DeepEqual(got.Summary.CertifiedAccuracy, want.Summary.CertifiedAccuracy) {
				t.Errorf("batch %d, workers %d: report differs from the per-sample run", batch, workers)
			}
			limit := batch
			if limit == 0 {
				limit = DefaultMethodBatch
			}
			total := 0
			for _, s := range bm.sizes {
				if s < 1 || s > limit {
					t.Errorf("batch %d: a batch of %d samples", batch, s)
				}
				total += s
			}
			if total != correct || len(bm.sizes) != blocksOf(limit) {
				t.Errorf("batch %d: batches %v for %d correct samples", batch, bm.sizes, correct)
			}
		}
	}
}

// TestRunBatchMethodErrors: an error of a batch, or a wrong number of
// certificates, ends the run naming the method and the samples; the cancellation
// it causes in other batches does not hide it.
func TestRunBatchMethodErrors(t *testing.T) {
	m, x, y := setup(3)
	boom := errors.New("boom")
	tests := []struct {
		name string
		bm   *batchExact
		want string
	}{
		{"error", &batchExact{exactMethod: exactMethod{"exact"}, fail: func(_ context.Context, qs []Query) error {
			for _, q := range qs {
				if q.Index == 9 {
					return boom
				}
			}
			return nil
		}}, "method exact: samples"},
		// The first batch waits for the second one's error to cancel it.
		{"cancelled others", &batchExact{exactMethod: exactMethod{"exact"}, fail: func(ctx context.Context, qs []Query) error {
			if qs[0].Index == 0 {
				<-ctx.Done()
				return fmt.Errorf("wrapped: %w", ctx.Err())
			}
			return boom
		}}, "boom"},
		{"short", &batchExact{exactMethod: exactMethod{"exact"}, short: true}, "certificates for"},
	}
	for _, tc := range tests {
		cfg := Config{Model: m, X: x, Labels: y, Radius: 0.08, Norm: LInf, Domain: Domain{0, 1},
			Methods: []Method{tc.bm}, MethodBatch: 4, Workers: 2}
		_, err := Run(context.Background(), cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want it to contain %q", tc.name, err, tc.want)
		}
		if tc.name == "error" && !errors.Is(err, boom) {
			t.Errorf("%s: error %v does not wrap the method's", tc.name, err)
		}
	}
}
