package explain

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// randomTree grows a random binary tree of at most depth levels over feats features
// (features repeat along paths, which exercises UNWIND), with random covers.
func randomTree(rng *rand.Rand, feats, depth, output int) Tree {
	t := Tree{Output: output}
	var grow func(d int) int
	grow = func(d int) int {
		i := len(t.Nodes)
		t.Nodes = append(t.Nodes, Node{Feature: -1, Cover: 1 + rng.Float64()*10, Value: rng.NormFloat64()})
		if d == depth || (d > 0 && rng.IntN(4) == 0) {
			return i
		}
		n := Node{Feature: rng.IntN(feats), Threshold: rng.NormFloat64(), Strict: rng.IntN(2) == 0,
			DefaultLeft: rng.IntN(2) == 0, Missing: Missing(rng.IntN(3)), Cover: t.Nodes[i].Cover}
		n.Left = grow(d + 1)
		n.Right = grow(d + 1)
		t.Nodes[i] = n
		return i
	}
	grow(0)
	return t
}

func randomRow(rng *rand.Rand, feats int) []float64 {
	x := make([]float64, feats)
	for j := range x {
		switch rng.IntN(8) {
		case 0:
			x[j] = math.NaN()
		case 1:
			x[j] = 0
		default:
			x[j] = rng.NormFloat64()
		}
	}
	return x
}

// TestTreeSHAPMatchesBruteForceShapley: on random small ensembles, TreeSHAP equals the
// Shapley values of the path-dependent conditional expectation, computed by
// enumerating every coalition, and the attributions add up to margin − expected value.
func TestTreeSHAPMatchesBruteForceShapley(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 200 {
		feats, outputs := 1+rng.IntN(6), 1+rng.IntN(3)
		e := &Ensemble{Features: feats, Outputs: outputs, Bias: make([]float64, outputs)}
		for k := range outputs {
			e.Bias[k] = rng.NormFloat64()
		}
		for range 1 + rng.IntN(4) {
			e.Trees = append(e.Trees, randomTree(rng, feats, 1+rng.IntN(5), rng.IntN(outputs)))
		}
		if err := e.Validate(); err != nil {
			t.Fatalf("trial %d: Validate: %v", trial, err)
		}
		x := randomRow(rng, feats)
		phi := make([]float64, outputs*feats)
		pred, err := e.SHAP(x, phi)
		if err != nil {
			t.Fatal(err)
		}
		expected := e.ExpectedValue()
		for k := range outputs {
			want := shapley(feats, func(mask uint64) float64 {
				v := e.Bias[k]
				for i := range e.Trees {
					if tr := &e.Trees[i]; tr.Output == k {
						v += tr.condExpect(0, x, mask)
					}
				}
				return v
			})
			sum := expected[k]
			for j := range feats {
				got := phi[k*feats+j]
				if math.Abs(got-want[j]) > 1e-9 {
					t.Fatalf("trial %d, x %v, output %d feature %d: TreeSHAP %v, brute force %v", trial, x, k, j, got, want[j])
				}
				sum += got
			}
			if math.Abs(sum-pred[k]) > 1e-9 {
				t.Fatalf("trial %d output %d: expected + Σφ = %v, margin %v", trial, k, sum, pred[k])
			}
		}
	}
}

// TestExplainRowsAndPredict: Explain fills one block per row, and its Pred is the
// margin Predict gives.
func TestExplainRowsAndPredict(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	e := &Ensemble{Features: 3, Outputs: 2, Bias: []float64{0.5, -0.5},
		Trees: []Tree{randomTree(rng, 3, 3, 0), randomTree(rng, 3, 3, 1), randomTree(rng, 3, 2, 1)}}
	if err := e.Validate(); err != nil {
		t.Fatal(err)
	}
	rows := [][]float64{randomRow(rng, 3), randomRow(rng, 3)}
	r, err := e.Explain(rows)
	if err != nil {
		t.Fatal(err)
	}
	for i, row := range rows {
		pred := e.Predict(row)
		for k := range 2 {
			sum := r.Expected[k]
			for j := range 3 {
				sum += r.Phi[(i*2+k)*3+j]
			}
			if math.Abs(sum-pred[k]) > 1e-9 || r.Pred[i*2+k] != pred[k] {
				t.Errorf("row %d output %d: Σ = %v, Pred %v, Predict %v", i, k, sum, r.Pred[i*2+k], pred[k])
			}
		}
	}
}

func TestValidateRefusesMalformedTrees(t *testing.T) {
	leaf := func(c float64) Node { return Node{Feature: -1, Cover: c} }
	split := func(f, l, r int) Node { return Node{Feature: f, Left: l, Right: r, Cover: 2} }
	for _, tc := range []struct {
		name  string
		nodes []Node
		want  string
	}{
		{"no nodes", nil, "no nodes"},
		{"child out of range", []Node{split(0, 1, 5), leaf(1)}, "child 5 is not a node"},
		{"child is the root", []Node{split(0, 1, 0), leaf(1)}, "child 0 is not a node"},
		{"node reached twice", []Node{split(0, 1, 1), leaf(1)}, "reached twice"},
		{"zero cover", []Node{split(0, 1, 2), leaf(1), leaf(0)}, "cover 0"},
		{"NaN cover", []Node{split(0, 1, 2), leaf(1), leaf(math.NaN())}, "cover NaN"},
		{"feature out of range", []Node{split(7, 1, 2), leaf(1), leaf(1)}, "feature 7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := &Ensemble{Features: 2, Outputs: 1, Trees: []Tree{{Nodes: tc.nodes}}}
			err := e.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestValidateRefusesTooDeepTrees(t *testing.T) {
	var nodes []Node
	for i := range MaxDepth + 1 {
		nodes = append(nodes, Node{Feature: 0, Left: 2*i + 1, Right: 2*i + 2, Cover: 2}, Node{Feature: -1, Cover: 1})
	}
	nodes = append(nodes, Node{Feature: -1, Cover: 1})
	// node 2i is the split, 2i+1 its leaf, 2i+2 the next split
	e := &Ensemble{Features: 1, Outputs: 1, Trees: []Tree{{Nodes: nodes}}}
	if err := e.Validate(); err == nil || !strings.Contains(err.Error(), "deeper than") {
		t.Fatalf("Validate() = %v, want a depth error", err)
	}
}
