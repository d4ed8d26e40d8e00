package trees

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/ferryml/ferry/internal/explain"
)

// The node-level structure of a model, for exact explanations (TreeSHAP), read from
// the model file here because leaves, which predicts, keeps its nodes to itself and
// drops the node covers TreeSHAP weighs branches by: XGBoost's sum_hessian, LightGBM's
// internal_count and leaf_count (or the _weight lines when the counts are missing).
// The splits follow each format's rules exactly as prediction does (XGBoost: float32
// x < threshold; LightGBM: x ≤ threshold, its three missing-value types), and a test
// checks that the structure's margins equal the backend's on every testdata model.

// xgbShapTree is the part of an XGBoost JSON tree that the structure needs.
type xgbShapTree struct {
	Left        []int32    `json:"left_children"`
	Right       []int32    `json:"right_children"`
	SplitIndex  []int64    `json:"split_indices"`
	SplitCond   []float64  `json:"split_conditions"`
	DefaultLeft []flexBool `json:"default_left"`
	SplitType   []int      `json:"split_type"`
	SumHessian  []float64  `json:"sum_hessian"`
}

type xgbShapBooster struct {
	Name   string          `json:"name"`
	GBTree *xgbShapBooster `json:"gbtree"`
	Weight []float64       `json:"weight_drop"`
	Model  *struct {
		Trees    []xgbShapTree `json:"trees"`
		TreeInfo []int         `json:"tree_info"`
	} `json:"model"`
}

// structure reads the ensemble of m's model file (data) for TreeSHAP; it is
// validated, with m's widths and bias.
func structure(data []byte, m *Model) (*explain.Ensemble, error) {
	e := &explain.Ensemble{Features: m.features, Outputs: m.outputs, Bias: m.bias}
	var err error
	if m.format == XGBoostJSON {
		e.Trees, err = xgbStructure(data)
	} else {
		e.Trees, err = lgbStructure(data, m.outputs)
	}
	if err != nil {
		return nil, err
	}
	if err := e.Validate(); err != nil {
		return nil, err
	}
	return e, nil
}

func xgbStructure(data []byte) ([]explain.Tree, error) {
	var doc struct {
		Learner struct {
			Booster xgbShapBooster `json:"gradient_booster"`
		} `json:"learner"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("XGBoost JSON: %w", err)
	}
	b := doc.Learner.Booster
	weights := []float64(nil)
	if b.Name == "dart" && b.GBTree != nil {
		weights, b = b.Weight, *b.GBTree
	}
	if b.Model == nil || len(b.Model.TreeInfo) != len(b.Model.Trees) {
		return nil, errors.New("XGBoost JSON: trees and tree_info do not match")
	}
	out := make([]explain.Tree, len(b.Model.Trees))
	for i := range b.Model.Trees {
		w := 1.0
		if weights != nil {
			w = weights[i]
		}
		nodes, err := xgbShapNodes(&b.Model.Trees[i], w)
		if err != nil {
			return nil, fmt.Errorf("tree %d: %w", i, err)
		}
		out[i] = explain.Tree{Nodes: nodes, Output: b.Model.TreeInfo[i]}
	}
	return out, nil
}

// xgbShapNodes converts one tree; its shape was checked when the model loaded.
func xgbShapNodes(t *xgbShapTree, weight float64) ([]explain.Node, error) {
	n := len(t.Left)
	if len(t.SumHessian) != n {
		return nil, fmt.Errorf("sum_hessian has %d entries for %d nodes: TreeSHAP needs the node covers", len(t.SumHessian), n)
	}
	nodes := make([]explain.Node, n)
	for i := range nodes {
		nd := explain.Node{Feature: -1, Cover: t.SumHessian[i], Strict: true, Missing: explain.MissingNaN}
		if t.Left[i] == -1 {
			nd.Value = float64(float32(t.SplitCond[i])) * weight
		} else {
			if len(t.SplitType) > 0 && t.SplitType[i] != 0 {
				return nil, fmt.Errorf("node %d: categorical splits are not supported", i)
			}
			nd.Feature, nd.Left, nd.Right = int(t.SplitIndex[i]), int(t.Left[i]), int(t.Right[i])
			nd.Threshold = float64(float32(t.SplitCond[i]))
			nd.DefaultLeft = bool(t.DefaultLeft[i])
		}
		nodes[i] = nd
	}
	return nodes, nil
}

func lgbStructure(data []byte, classes int) ([]explain.Tree, error) {
	header, blocks := lgbSections(data)
	if _, ok := header["average_output"]; ok {
		return nil, errors.New("average_output (random forest mode) is not supported")
	}
	out := make([]explain.Tree, len(blocks))
	for i, b := range blocks {
		nodes, err := lgbShapNodes(b)
		if err != nil {
			return nil, fmt.Errorf("Tree=%d: %w", i, err)
		}
		out[i] = explain.Tree{Nodes: nodes, Output: i % classes}
	}
	return out, nil
}

// lgbShapNodes converts one tree section: internal node i becomes node i, leaf l
// (child ~l) node L−1+l. Its shape was checked when the model loaded.
func lgbShapNodes(b lgbBlock) ([]explain.Node, error) {
	leaves, err := b.int("num_leaves", 1)
	if err != nil {
		return nil, err
	}
	inner := leaves - 1
	values, err := b.floats("leaf_value", leaves)
	if err != nil {
		return nil, err
	}
	nodes := make([]explain.Node, inner+leaves)
	if inner == 0 { // a constant tree: its cover does not matter
		nodes[0] = explain.Node{Feature: -1, Cover: 1, Value: values[0]}
		return nodes, nil
	}
	leafCover, err := b.covers("leaf", leaves)
	if err != nil {
		return nil, err
	}
	innerCover, err := b.covers("internal", inner)
	if err != nil {
		return nil, err
	}
	for l := range leaves {
		nodes[inner+l] = explain.Node{Feature: -1, Cover: leafCover[l], Value: values[l]}
	}
	return nodes, lgbInner(b, nodes, inner, innerCover)
}

// lgbInner fills in the internal nodes.
func lgbInner(b lgbBlock, nodes []explain.Node, inner int, cover []float64) error {
	col := map[string][]int{}
	for _, key := range []string{"split_feature", "decision_type", "left_child", "right_child"} {
		v, err := b.ints(key, inner)
		if err != nil {
			return err
		}
		col[key] = v
	}
	thresholds, err := b.floats("threshold", inner)
	if err != nil {
		return err
	}
	child := func(c int) int {
		if c < 0 {
			return inner + ^c
		}
		return c
	}
	missing := [...]explain.Missing{explain.MissingNone, explain.MissingZero, explain.MissingNaN, explain.MissingNaN}
	for i := range inner {
		kind := col["decision_type"][i]
		if kind&1 != 0 {
			return fmt.Errorf("node %d: categorical splits are not supported", i)
		}
		nodes[i] = explain.Node{Feature: col["split_feature"][i], Threshold: thresholds[i],
			Left: child(col["left_child"][i]), Right: child(col["right_child"][i]),
			DefaultLeft: kind&2 != 0, Missing: missing[(kind>>2)&3], Cover: cover[i]}
	}
	return nil
}

// covers reads the leaf_ or internal_ counts, else the weights.
func (b lgbBlock) covers(prefix string, n int) ([]float64, error) {
	if _, ok := b[prefix+"_count"]; ok {
		return b.floats(prefix+"_count", n)
	}
	if _, ok := b[prefix+"_weight"]; ok {
		return b.floats(prefix+"_weight", n)
	}
	return nil, fmt.Errorf("neither %s_count nor %s_weight: TreeSHAP needs the node covers", prefix, prefix)
}

func (b lgbBlock) floats(key string, n int) ([]float64, error) {
	f := strings.Fields(b[key])
	if len(f) != n {
		return nil, fmt.Errorf("%s has %d values, want %d", key, len(f), n)
	}
	out := make([]float64, n)
	for i, s := range f {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsInf(v, 0) && key != "threshold" {
			return nil, fmt.Errorf("%s[%d]: %q is not a finite number", key, i, s)
		}
		out[i] = v
	}
	return out, nil
}
