package explain

import (
	"errors"
	"fmt"
	"math"
)

// Missing says which input values take a split's default direction.
type Missing uint8

// The missing-value rules of the tree formats Ferry serves.
const (
	// MissingNaN: NaN takes the default direction (XGBoost, LightGBM missing_type NaN).
	MissingNaN Missing = iota
	// MissingZero: NaN and zero (|x| ≤ 1e-35) take the default direction (LightGBM
	// missing_type Zero).
	MissingZero
	// MissingNone: NaN counts as 0 and is compared with the threshold (LightGBM
	// missing_type None).
	MissingNone
)

// zeroThreshold is LightGBM's kZeroThreshold: values this close to 0 are zero.
const zeroThreshold = 1e-35

// Node is one node of a Tree. A leaf has Feature -1 and a Value; an internal node
// splits on Feature at Threshold into Left and Right (indexes into Tree.Nodes).
type Node struct {
	Feature     int
	Threshold   float64
	Left, Right int
	// Strict sends x < Threshold left (XGBoost); otherwise x ≤ Threshold goes left
	// (LightGBM).
	Strict      bool
	DefaultLeft bool
	Missing     Missing
	// Cover is how much training data reached the node (XGBoost's sum_hessian,
	// LightGBM's counts): TreeSHAP weighs a branch by its share of its parent's cover.
	Cover float64
	Value float64 // a leaf's output, already scaled (learning rate, dart weight)
}

// Leaf reports whether the node is a leaf.
func (n *Node) Leaf() bool { return n.Feature < 0 }

// goesLeft is the split's decision for feature value x.
func (n *Node) goesLeft(x float64) bool {
	switch n.Missing {
	case MissingNone:
		if math.IsNaN(x) {
			x = 0
		}
	case MissingZero:
		if math.IsNaN(x) || math.Abs(x) <= zeroThreshold {
			return n.DefaultLeft
		}
	default:
		if math.IsNaN(x) {
			return n.DefaultLeft
		}
	}
	if n.Strict {
		return x < n.Threshold
	}
	return x <= n.Threshold
}

// Tree is one tree of an Ensemble; Nodes[0] is its root. Output is the output (class)
// its leaves add to.
type Tree struct {
	Nodes  []Node
	Output int
}

// MaxDepth bounds the trees TreeSHAP accepts: its path buffer grows with the square of
// the depth, and real boosted trees are far shallower (XGBoost's default is 6).
const MaxDepth = 256

// Ensemble is a sum of trees per output plus a bias per output: the raw margin of a
// gradient-boosted model. It is immutable once validated and safe for concurrent use.
type Ensemble struct {
	Trees    []Tree
	Features int
	Outputs  int
	Bias     []float64 // per output; nil: none
	depth    int       // the deepest tree's depth, set by Validate
}

// Validate checks that every tree is a well-formed tree over the ensemble's features
// with positive covers, and readies the ensemble for SHAP. Call it once, before use.
func (e *Ensemble) Validate() error {
	if e.Features < 1 || e.Outputs < 1 {
		return fmt.Errorf("ensemble: %d features and %d outputs, want at least 1 of each", e.Features, e.Outputs)
	}
	if e.Bias != nil && len(e.Bias) != e.Outputs {
		return fmt.Errorf("ensemble: %d bias values for %d outputs", len(e.Bias), e.Outputs)
	}
	if len(e.Trees) == 0 {
		return errors.New("ensemble: no trees")
	}
	e.depth = 0
	for i := range e.Trees {
		d, err := e.checkTree(&e.Trees[i])
		if err != nil {
			return fmt.Errorf("tree %d: %w", i, err)
		}
		e.depth = max(e.depth, d)
	}
	return nil
}

// checkTree checks one tree and returns its depth (a lone leaf has depth 0).
func (e *Ensemble) checkTree(t *Tree) (int, error) {
	if t.Output < 0 || t.Output >= e.Outputs {
		return 0, fmt.Errorf("output %d, the ensemble has %d", t.Output, e.Outputs)
	}
	if len(t.Nodes) == 0 {
		return 0, errors.New("no nodes")
	}
	seen := make([]bool, len(t.Nodes))
	type item struct{ node, depth int }
	stack := []item{{0, 0}}
	deepest := 0
	for len(stack) > 0 {
		it := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[it.node] {
			return 0, fmt.Errorf("node %d is reached twice", it.node)
		}
		seen[it.node] = true
		n := &t.Nodes[it.node]
		if !(n.Cover > 0) || math.IsInf(n.Cover, 0) {
			return 0, fmt.Errorf("node %d: cover %v, want a positive finite number", it.node, n.Cover)
		}
		deepest = max(deepest, it.depth)
		if deepest > MaxDepth {
			return 0, fmt.Errorf("deeper than %d levels", MaxDepth)
		}
		if n.Leaf() {
			continue
		}
		if n.Feature >= e.Features {
			return 0, fmt.Errorf("node %d splits on feature %d, the ensemble has %d", it.node, n.Feature, e.Features)
		}
		for _, c := range []int{n.Left, n.Right} {
			if c <= 0 || c >= len(t.Nodes) {
				return 0, fmt.Errorf("node %d: child %d is not a node of the tree", it.node, c)
			}
			stack = append(stack, item{c, it.depth + 1})
		}
	}
	return deepest, nil
}

// leafOf follows x from the root to its leaf.
func (t *Tree) leafOf(x []float64) *Node {
	n := &t.Nodes[0]
	for !n.Leaf() {
		if n.goesLeft(x[n.Feature]) {
			n = &t.Nodes[n.Left]
		} else {
			n = &t.Nodes[n.Right]
		}
	}
	return n
}

// Predict returns the ensemble's raw margins for one row of features.
func (e *Ensemble) Predict(x []float64) []float64 {
	out := make([]float64, e.Outputs)
	copy(out, e.Bias)
	for i := range e.Trees {
		t := &e.Trees[i]
		out[t.Output] += t.leafOf(x).Value
	}
	return out
}

// ExpectedValue is the ensemble's expected margin per output: each tree's leaves
// weighted by the product of the cover fractions on their paths, as TreeSHAP weighs
// them, plus the bias.
func (e *Ensemble) ExpectedValue() []float64 {
	out := make([]float64, e.Outputs)
	copy(out, e.Bias)
	for i := range e.Trees {
		t := &e.Trees[i]
		out[t.Output] += t.expected(0)
	}
	return out
}

func (t *Tree) expected(i int) float64 {
	n := &t.Nodes[i]
	if n.Leaf() {
		return n.Value
	}
	l, r := &t.Nodes[n.Left], &t.Nodes[n.Right]
	return (l.Cover*t.expected(n.Left) + r.Cover*t.expected(n.Right)) / (l.Cover + r.Cover)
}
