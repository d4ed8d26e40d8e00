package treegen

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestForestIsDeterministicJSON(t *testing.T) {
	a, b := Random(1, 3, 2, 4).XGBoostJSON(), Random(1, 3, 2, 4).XGBoostJSON()
	if !bytes.Equal(a, b) {
		t.Fatal("the same seed gave two different models")
	}
	var doc struct {
		Learner struct {
			GradientBooster struct {
				Model struct {
					Trees []struct {
						Left []int `json:"left_children"`
					} `json:"trees"`
				} `json:"model"`
			} `json:"gradient_booster"`
		} `json:"learner"`
	}
	if err := json.Unmarshal(a, &doc); err != nil {
		t.Fatal(err)
	}
	trees := doc.Learner.GradientBooster.Model.Trees
	if len(trees) != 3 || len(trees[0].Left) != 7 {
		t.Fatalf("got %d trees of %d nodes, want 3 of 7 (depth 2)", len(trees), len(trees[0].Left))
	}
}

// TestPredictWalksTheTree: a depth-1 tree by hand.
func TestPredictWalksTheTree(t *testing.T) {
	f := &Forest{Features: 1, BaseScore: 0.5, Trees: []Tree{{
		Left: []int{1, -1, -1}, Right: []int{2, -1, -1}, Feature: []int{0, 0, 0},
		Cond: []float32{1, 0, 0}, DefaultLeft: []bool{true, false, false}, Value: []float32{0, 0.25, -0.25},
	}}}
	nan := float32(0)
	nan /= nan
	for _, tc := range []struct {
		x    float32
		want float64
	}{{0.5, 0.75}, {1, 0.25}, {nan, 0.75}} {
		if got := f.Predict([]float32{tc.x}); got != tc.want {
			t.Errorf("Predict(%v) = %v, want %v", tc.x, got, tc.want)
		}
	}
}
