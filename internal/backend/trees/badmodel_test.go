package trees_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferryml/ferry/internal/backend/trees"
)

// TestBadModelsAreRefused: each case breaks a fixture in one place; Load must refuse
// it with an error naming what is wrong, never load it or panic.
func TestBadModelsAreRefused(t *testing.T) {
	for _, tc := range []struct {
		name, file, old, new, wantErr string
	}{
		{"not a model", "xgb_regression.json", "", "hello", "neither an XGBoost JSON model"},
		{"truncated JSON", "xgb_regression.json", `"version": [2, 0, 3]`, `"version": [2, 0,`, "XGBoost JSON: "},
		{"an unknown XGBoost objective", "xgb_regression.json", "reg:squarederror", "reg:mystery", `XGBoost objective "reg:mystery" is not supported`},
		{"a linear booster", "xgb_regression.json", `"name": "gbtree"`, `"name": "gblinear"`, `gradient_booster "gblinear" is not supported`},
		{"a multi-target model", "xgb_regression.json", `"num_target": "1"`, `"num_target": "2"`, "multi-target models are not supported"},
		{"a child out of range", "xgb_regression.json", `"left_children": [1, 3, 5, -1`, `"left_children": [1, 3, 9, -1`,
			"tree 0: node 2: children 9 and 6 are not two other nodes of 7"},
		{"a node with two parents", "xgb_regression.json", `"left_children": [1, 3, 5, -1`, `"left_children": [1, 3, 1, -1`,
			"tree 0: node 1 has 2 parents"},
		{"a leaf with a right child", "xgb_regression.json", `"right_children": [2, 4, 6, -1, -1`, `"right_children": [2, 4, 6, -1, 5`,
			"tree 0: node 4: left child -1 (a leaf) but right child 5"},
		{"a split on a missing feature", "xgb_regression.json", `"split_indices": [0, 1, 2, 0`, `"split_indices": [0, 1, 7, 0`,
			"tree 0: node 2: split feature 7, the model has 3 features"},
		{"a categorical split", "xgb_regression.json", `"split_type": [0, 0, 0, 0, 0, 0, 0]`, `"split_type": [0, 1, 0, 0, 0, 0, 0]`,
			"tree 0: node 1: categorical splits are not supported"},
		{"a short array", "xgb_regression.json", `"default_left": [1, 0, 1, 0, 0, 0, 0]`, `"default_left": [1, 0, 1]`,
			"tree 0: default_left has 3 entries for 7 nodes"},
		{"a base score outside (0, 1) for a logistic model", "xgb_binary.json", `"base_score": "3E-1"`, `"base_score": "1.5"`,
			"base_score 1.5 must be in (0, 1) for objective binary:logistic"},
		{"uneven trees per class", "xgb_multiclass.json", `"tree_info": [0, 0, 1, 1, 2, 2]`, `"tree_info": [0, 0, 0, 1, 2, 2]`,
			"output group 1 has 1 trees, group 0 has 3"},
		{"an unknown LightGBM version", "lgb_regression.txt", "version=v4", "version=v1", `LightGBM model version "v1" is not supported`},
		{"a linear tree", "lgb_regression.txt", "is_linear=0", "is_linear=1", "Tree=0: linear trees (linear_tree=true) are not supported"},
		{"a LightGBM split on a missing feature", "lgb_regression.txt", "split_feature=0 1", "split_feature=0 5",
			"Tree=0: node 1: split_feature 5, the model has 3 features"},
		{"a LightGBM child out of range", "lgb_regression.txt", "left_child=1 -1", "left_child=1 -7",
			"Tree=0: node 1: child -7 is neither another node nor a leaf"},
		{"a LightGBM leaf count mismatch", "lgb_regression.txt", "leaf_value=0.01 -0.029999999999999999", "leaf_value=0.01",
			"Tree=2: leaf_value has 1 values for 2 leaves"},
		{"an unknown LightGBM objective", "lgb_regression.txt", "objective=regression", "objective=mystery", `LightGBM objective "mystery" is not supported`},
		{"a num_class that disagrees", "lgb_multiclass.txt", "objective=multiclass num_class:3", "objective=multiclass num_class:4",
			"num_class 4, but the model has 3"},
		{"tree_sizes that disagree", "lgb_regression.txt", "tree_sizes=331 277 276", "tree_sizes=331 277", "tree_sizes lists 2 trees, the file has 3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			text := tc.new
			if tc.old != "" {
				if !strings.Contains(string(data), tc.old) {
					t.Fatalf("%s has no %q to replace", tc.file, tc.old)
				}
				text = strings.Replace(string(data), tc.old, tc.new, 1)
			}
			path := filepath.Join(t.TempDir(), tc.file)
			if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err = trees.Load(path, trees.Unknown)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Load err = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}
