package treegen

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
)

// Tree is one regression tree in XGBoost's array form: node i is a leaf when
// Left[i] == -1, and then Value[i] is its output.
type Tree struct {
	Left, Right []int
	Feature     []int
	Cond        []float32 // split threshold (internal nodes)
	DefaultLeft []bool
	Value       []float32 // leaf value (leaves)
}

// Forest is a regression ensemble (objective reg:squarederror).
type Forest struct {
	Features  int
	BaseScore float32
	Trees     []Tree
}

// Random builds trees full binary trees of the given depth over features
// features, with thresholds in [-1, 1) and leaf values in [-0.1, 0.1).
func Random(seed uint64, trees, depth, features int) *Forest {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	f := &Forest{Features: features, BaseScore: 0.5}
	for range trees {
		f.Trees = append(f.Trees, randomTree(r, depth, features))
	}
	return f
}

// randomTree numbers nodes breadth first, as XGBoost does.
func randomTree(r *rand.Rand, depth, features int) Tree {
	n := 1<<(depth+1) - 1
	t := Tree{Left: make([]int, n), Right: make([]int, n), Feature: make([]int, n),
		Cond: make([]float32, n), DefaultLeft: make([]bool, n), Value: make([]float32, n)}
	for i := range n {
		if i >= n/2 { // the last level: leaves
			t.Left[i], t.Right[i] = -1, -1
			t.Value[i] = float32(r.Float64()*0.2 - 0.1)
			continue
		}
		t.Left[i], t.Right[i] = 2*i+1, 2*i+2
		t.Feature[i] = r.IntN(features)
		t.Cond[i] = float32(r.Float64()*2 - 1)
		t.DefaultLeft[i] = r.IntN(2) == 0
	}
	return t
}

// Predict walks every tree for one row, as XGBoost does.
func (f *Forest) Predict(x []float32) float64 {
	sum := float64(f.BaseScore)
	for _, t := range f.Trees {
		i := 0
		for t.Left[i] != -1 {
			v := x[t.Feature[i]]
			left := t.DefaultLeft[i]
			if !math.IsNaN(float64(v)) {
				left = v < t.Cond[i]
			}
			if left {
				i = t.Left[i]
			} else {
				i = t.Right[i]
			}
		}
		sum += float64(t.Value[i])
	}
	return sum
}

// XGBoostJSON is the forest as XGBoost 2.0 saves it with Booster.save_model("model.json").
func (f *Forest) XGBoostJSON() []byte {
	trees := make([]map[string]any, len(f.Trees))
	info := make([]int, len(f.Trees))
	indptr := make([]int, len(f.Trees)+1)
	for k, t := range f.Trees {
		n := len(t.Left)
		cond := make([]float32, n)
		parents := make([]int, n)
		parents[0] = math.MaxInt32
		defaultLeft := make([]int, n)
		for i := range n {
			if t.Left[i] == -1 {
				cond[i] = t.Value[i] // XGBoost keeps a leaf's value in split_conditions
				continue
			}
			cond[i] = t.Cond[i]
			parents[t.Left[i]], parents[t.Right[i]] = i, i
			if t.DefaultLeft[i] {
				defaultLeft[i] = 1
			}
		}
		zeros := make([]int, n)
		trees[k] = map[string]any{
			"base_weights": cond, "categories": []int{}, "categories_nodes": []int{},
			"categories_segments": []int{}, "categories_sizes": []int{},
			"default_left": defaultLeft, "id": k, "left_children": t.Left, "right_children": t.Right,
			"loss_changes": make([]float32, n), "parents": parents, "split_conditions": cond,
			"split_indices": t.Feature, "split_type": zeros, "sum_hessian": make([]float32, n),
			"tree_param": map[string]string{"num_deleted": "0", "num_feature": strconv.Itoa(f.Features),
				"num_nodes": strconv.Itoa(n), "size_leaf_vector": "1"},
		}
		indptr[k+1] = k + 1
	}
	doc := map[string]any{
		"learner": map[string]any{
			"attributes": map[string]any{}, "feature_names": []string{}, "feature_types": []string{},
			"gradient_booster": map[string]any{
				"name": "gbtree",
				"model": map[string]any{
					"gbtree_model_param": map[string]string{"num_parallel_tree": "1", "num_trees": strconv.Itoa(len(f.Trees))},
					"iteration_indptr":   indptr, "tree_info": info, "trees": trees,
				},
			},
			"learner_model_param": map[string]string{"base_score": fmt.Sprint(f.BaseScore), "boost_from_average": "1",
				"num_class": "0", "num_feature": strconv.Itoa(f.Features), "num_target": "1"},
			"objective": map[string]any{"name": "reg:squarederror", "reg_loss_param": map[string]string{"scale_pos_weight": "1"}},
		},
		"version": []int{2, 0, 3},
	}
	out, err := json.Marshal(doc)
	if err != nil {
		panic(err) // maps of plain values always marshal
	}
	return out
}
