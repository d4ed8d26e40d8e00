package trees

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
)

// leaves reads XGBoost's legacy binary model format only, so a JSON model is rewritten
// in that format in memory and handed to leaves.XGEnsembleFromReader. These mirror the
// structures leaves reads (its internal/xgbin, after XGBoost's C++ structs),
// field for field: encoding/binary neither pads nor reorders.
type (
	xgbinLearnerParam struct {
		BaseScore          float32
		NumFeatures        uint32
		NumClass           int32
		ContainExtraAttrs  int32
		ContainEvalMetrics int32
		Reserved           [29]int32
	}
	xgbinGBTreeParam struct {
		NumTrees             int32
		NumRoots             int32
		NumFeature           int32
		Pad32bit             int32
		NumPbufferDeprecated int64
		NumOutputGroup       int32
		SizeLeafVector       int32
		Reserved             [32]int32
	}
	xgbinTreeParam struct {
		NumRoots       int32
		NumNodes       int32
		NumDeleted     int32
		MaxDepth       int32
		NumFeature     int32
		SizeLeafVector int32
		Reserved       [31]int32
	}
	xgbinNode struct {
		Parent int32
		CLeft  int32 // -1: a leaf
		CRight int32
		SIndex uint32 // split feature; the top bit is default_left
		Info   float32
	}
	xgbinNodeStat struct {
		LossChg      float32
		SumHess      float32
		BaseWeight   float32
		LeafChildCnt int32
	}
)

// xgbBinary writes the trees, in the given order, as a legacy binary model. The base
// score is left at 0: Model adds it (per output group) after leaves.
func xgbBinary(trees []xgbTree, order []int, weights []float64, features, groups int, objective string) ([]byte, error) {
	var buf bytes.Buffer
	put := func(v any) { _ = binary.Write(&buf, binary.LittleEndian, v) } // a bytes.Buffer does not fail
	putString := func(s string) {
		put(uint64(len(s)))
		buf.WriteString(s)
	}
	gbm := "gbtree"
	if weights != nil {
		gbm = "dart"
	}
	put(xgbinLearnerParam{NumFeatures: uint32(features), NumClass: int32(groups)})
	putString(objective)
	putString(gbm)
	put(xgbinGBTreeParam{NumTrees: int32(len(order)), NumRoots: 1, NumFeature: int32(features), NumOutputGroup: int32(groups)})
	for _, i := range order {
		nodes, err := xgbNodes(&trees[i], features)
		if err != nil {
			return nil, fmt.Errorf("tree %d: %w", i, err)
		}
		put(xgbinTreeParam{NumRoots: 1, NumNodes: int32(len(nodes)), NumFeature: int32(features)})
		put(nodes)
		put(make([]xgbinNodeStat, len(nodes)))
	}
	info := make([]int32, len(order))
	for i := range info {
		info[i] = int32(i % groups)
	}
	put(info)
	if weights != nil {
		w := make([]float32, len(order))
		for i, t := range order {
			w[i] = float32(weights[t])
		}
		put(uint64(len(w)))
		put(w)
	}
	return buf.Bytes(), nil
}

// xgbNodes checks one tree and converts its nodes. XGBoost sends a row left when
// x < split_condition (x and the condition both float32); leaves tests x <= threshold.
// For float32 x, x < c is x <= the next float32 below c, so that is the threshold
// written; inputs are rounded to float32 before prediction (see Model.float32Features).
func xgbNodes(t *xgbTree, features int) ([]xgbinNode, error) {
	n, err := strconv.Atoi(t.Param.NumNodes)
	if err != nil || n < 1 {
		return nil, fmt.Errorf("tree_param.num_nodes: want an integer ≥ 1, got %q", t.Param.NumNodes)
	}
	if s := t.Param.SizeLeafVector; s != "" && s != "0" && s != "1" {
		return nil, fmt.Errorf("tree_param.size_leaf_vector %s: vector leaves (multi-target trees) are not supported", s)
	}
	for _, a := range []struct {
		name string
		len  int
	}{{"left_children", len(t.Left)}, {"right_children", len(t.Right)}, {"split_indices", len(t.SplitIndex)},
		{"split_conditions", len(t.SplitCond)}, {"default_left", len(t.DefaultLeft)}} {
		if a.len != n {
			return nil, fmt.Errorf("%s has %d entries for %d nodes", a.name, a.len, n)
		}
	}
	if len(t.SplitType) != 0 && len(t.SplitType) != n {
		return nil, fmt.Errorf("split_type has %d entries for %d nodes", len(t.SplitType), n)
	}
	nodes := make([]xgbinNode, n)
	parents := make([]int, n)
	for i := range nodes {
		l, r := t.Left[i], t.Right[i]
		nd := &nodes[i]
		nd.Parent, nd.CLeft, nd.CRight = -1, l, r
		if l == -1 {
			if r != -1 {
				return nil, fmt.Errorf("node %d: left child -1 (a leaf) but right child %d", i, r)
			}
			nd.Info = float32(t.SplitCond[i]) // a leaf's value
			continue
		}
		if l <= 0 || r <= 0 || int(l) >= n || int(r) >= n || l == r {
			return nil, fmt.Errorf("node %d: children %d and %d are not two other nodes of %d", i, l, r, n)
		}
		if len(t.SplitType) > 0 && t.SplitType[i] != 0 {
			return nil, fmt.Errorf("node %d: categorical splits are not supported", i)
		}
		f := t.SplitIndex[i]
		if f < 0 || f >= int64(features) {
			return nil, fmt.Errorf("node %d: split feature %d, the model has %d features", i, f, features)
		}
		cond := float32(t.SplitCond[i])
		if math.IsNaN(float64(cond)) {
			return nil, fmt.Errorf("node %d: split condition is NaN", i)
		}
		nd.Info = math.Nextafter32(cond, float32(math.Inf(-1)))
		nd.SIndex = uint32(f)
		if t.DefaultLeft[i] {
			nd.SIndex |= 1 << 31
		}
		parents[l]++
		parents[r]++
	}
	return nodes, checkTree(nodes, parents)
}

// checkTree makes sure the nodes form one tree rooted at node 0 (leaves walks them
// without bounds or cycle checks): every other node has exactly one parent and is
// reachable from the root.
func checkTree(nodes []xgbinNode, parents []int) error {
	for i, p := range parents {
		if i > 0 && p != 1 {
			return fmt.Errorf("node %d has %d parents; a tree node has one", i, p)
		}
	}
	if parents[0] != 0 {
		return fmt.Errorf("node 0, the root, is a child of another node")
	}
	seen, stack := 0, []int32{0}
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		seen++
		if nd := nodes[i]; nd.CLeft != -1 {
			stack = append(stack, nd.CLeft, nd.CRight)
		}
	}
	if seen != len(nodes) {
		return fmt.Errorf("%d of %d nodes are not reachable from the root", len(nodes)-seen, len(nodes))
	}
	return nil
}
