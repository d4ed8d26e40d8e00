package explain

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
)

// fullTree is a complete tree of the given depth with random splits and covers.
func fullTree(rng *rand.Rand, feats, depth int) Tree {
	t := Tree{}
	var grow func(d int, cover float64) int
	grow = func(d int, cover float64) int {
		i := len(t.Nodes)
		t.Nodes = append(t.Nodes, Node{Feature: -1, Cover: cover, Value: rng.NormFloat64() * 0.1})
		if d == depth {
			return i
		}
		share := 0.2 + 0.6*rng.Float64()
		n := Node{Feature: rng.IntN(feats), Threshold: rng.NormFloat64(), Strict: true, Cover: cover}
		n.Left = grow(d+1, cover*share)
		n.Right = grow(d+1, cover*(1-share))
		t.Nodes[i] = n
		return i
	}
	grow(0, 1000)
	return t
}

// BenchmarkTreeSHAP: one row through 100 trees of depth 6 over 32 features (the trees
// backend's benchmark model's size).
func BenchmarkTreeSHAP(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	e := &Ensemble{Features: 32, Outputs: 1}
	for range 100 {
		e.Trees = append(e.Trees, fullTree(rng, 32, 6))
	}
	if err := e.Validate(); err != nil {
		b.Fatal(err)
	}
	x := randomRow(rng, 32)
	phi := make([]float64, 32)
	for b.Loop() {
		if _, err := e.SHAP(x, phi); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkKernel: KernelSHAP's own cost per explained row (the model is a dot
// product), exact at 6 and 12 features, sampled at 20, with 10 background rows.
func BenchmarkKernel(b *testing.B) {
	for _, feats := range []int{6, 12, 20} {
		b.Run(fmt.Sprintf("features=%d", feats), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(2, 2))
			m := &model{f: func(x []float64) []float64 {
				s := 0.0
				for _, v := range x {
					s += v
				}
				return []float64{s}
			}}
			x, bg := randomRows(rng, 1, feats), randomRows(rng, 10, feats)
			for b.Loop() {
				if _, err := Kernel(context.Background(), m.eval, x, bg, KernelOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
