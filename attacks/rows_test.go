package attacks

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/certify-dev/certify/nets"
)

// Every randomised attack attacks a sample with the same random stream whatever
// batch it is in and at whatever position, once WithRows names the rows: the
// sub-batch (rows 5, 1, 3 in that order) gives those rows exactly what the whole
// batch gives them. This is what lets a sharded run, or a run attacked in chunks,
// equal the whole run.
func TestWithRowsBatchIndependent(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	g, err := nets.MLP(rng, []int{12}, 16, 3)
	if err != nil {
		t.Fatal(err)
	}
	const n = 6
	x := nets.NewTensor(n, 12)
	for i := range x.Data {
		x.Data[i] = rng.Float64()
	}
	pred, err := g.Logits(x)
	if err != nil {
		t.Fatal(err)
	}
	labels := pred.Argmax()
	ids := []int{100, 7, 42, 3, 58, 11} // the samples' indices in a data file
	sub := []int{5, 1, 3}
	b := Budget{Norm: LInf, Eps: 0.3, Lo: 0, Hi: 1}
	b2 := Budget{Norm: L2, Eps: 1, Lo: 0, Hi: 1}
	pgd := NewPGD(b, 9)
	pgd.EarlyStop = false
	for _, a := range []Attack{
		pgd, NewAPGD(b, 9), NewRFGSM(b, 9), Square{Budget: b, Queries: 60, Seed: 9},
		SimBA{Budget: b2, Queries: 60, Seed: 9}, NES{Budget: b, Queries: 60, Seed: 9},
		HopSkipJump{Budget: b2, Queries: 80, Seed: 9}, Genetic{Budget: b, Queries: 80, Seed: 9},
		NewAutoAttackRand(b, 9),
	} {
		t.Run(a.Name(), func(t *testing.T) {
			whole, err := a.Run(WithRows(context.Background(), ids), g, x.Clone(), slices.Clone(labels))
			if err != nil {
				t.Fatal(err)
			}
			xs := nets.NewTensor(len(sub), 12)
			var ls, sids []int
			for k, i := range sub {
				copy(xs.Data[k*12:(k+1)*12], x.Data[i*12:(i+1)*12])
				ls = append(ls, labels[i])
				sids = append(sids, ids[i])
			}
			part, err := a.Run(WithRows(context.Background(), sids), g, xs.Clone(), ls)
			if err != nil {
				t.Fatal(err)
			}
			moved := false
			for k, i := range sub {
				w, p := whole.Data[i*12:(i+1)*12], part.Data[k*12:(k+1)*12]
				if !slices.Equal(w, p) {
					t.Errorf("row %d (sample %d): the sub-batch's point differs from the whole batch's", i, ids[i])
				}
				moved = moved || !slices.Equal(w, x.Data[i*12:(i+1)*12])
			}
			if !moved {
				t.Logf("no row moved: the comparison is of clean points only")
			}
			if a.Name() != "pgd" {
				return
			}
			// Without the identities the sub-batch's rows draw other streams: the
			// comparison above can tell.
			blind, err := a.Run(context.Background(), g, xs.Clone(), ls)
			if err != nil {
				t.Fatal(err)
			}
			if slices.Equal(blind.Data, part.Data) {
				t.Error("pgd: positions instead of identities gave the same points; the test shows nothing")
			}
		})
	}
}

// Row and SubRows: identities default to positions, and a sub-batch keeps its
// rows' identities.
func TestRowIdentities(t *testing.T) {
	ctx := context.Background()
	if Row(ctx, 4) != 4 {
		t.Error("no rows: Row(4) != 4")
	}
	c := WithRows(ctx, []int{10, 20, 30})
	if Row(c, 2) != 30 || Row(c, 5) != 5 {
		t.Errorf("Row = %d, %d", Row(c, 2), Row(c, 5))
	}
	s := SubRows(c, []int{2, 0})
	if Row(s, 0) != 30 || Row(s, 1) != 10 {
		t.Errorf("SubRows: %d, %d", Row(s, 0), Row(s, 1))
	}
	if Row(SubRows(ctx, []int{3}), 0) != 3 {
		t.Error("SubRows without rows")
	}
}
