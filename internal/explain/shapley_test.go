package explain

import (
	"math"
	"math/bits"
)

// shapley computes exact Shapley values by enumerating every coalition of f features
// with the value function v (a coalition is a bit mask), using the textbook formula
// φ_i = Σ_{S ∌ i} |S|!(F−|S|−1)!/F! · (v(S ∪ {i}) − v(S)). It is the reference the
// fast methods are checked against.
func shapley(f int, v func(mask uint64) float64) []float64 {
	vals := make([]float64, 1<<f)
	for m := range vals {
		vals[m] = v(uint64(m))
	}
	fact := func(n int) float64 { g, _ := math.Lgamma(float64(n + 1)); return math.Exp(g) }
	phi := make([]float64, f)
	for i := range f {
		for m := range uint64(1) << f {
			if m>>i&1 == 1 {
				continue
			}
			s := bits.OnesCount64(m)
			w := fact(s) * fact(f-s-1) / fact(f)
			phi[i] += w * (vals[m|1<<i] - vals[m])
		}
	}
	return phi
}

// condExpect is the tree's path-dependent conditional expectation given the features
// in mask: those follow x, the others take both branches weighted by cover.
func (t *Tree) condExpect(i int, x []float64, mask uint64) float64 {
	n := &t.Nodes[i]
	if n.Leaf() {
		return n.Value
	}
	if mask>>n.Feature&1 == 1 {
		if n.goesLeft(x[n.Feature]) {
			return t.condExpect(n.Left, x, mask)
		}
		return t.condExpect(n.Right, x, mask)
	}
	l, r := t.Nodes[n.Left].Cover, t.Nodes[n.Right].Cover
	return (l*t.condExpect(n.Left, x, mask) + r*t.condExpect(n.Right, x, mask)) / (l + r)
}
