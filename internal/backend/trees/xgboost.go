package trees

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/dmitryikh/leaves"
)

// The XGBoost JSON model schema (XGBoost ≥ 1.0, doc/model.schema), the parts a
// gbtree or dart model needs for prediction. XGBoost writes its numeric parameters
// as strings.
type xgbModel struct {
	Learner struct {
		GradientBooster xgbBooster `json:"gradient_booster"`
		Param           struct {
			BaseScore  string `json:"base_score"`
			NumClass   string `json:"num_class"`
			NumFeature string `json:"num_feature"`
			NumTarget  string `json:"num_target"`
		} `json:"learner_model_param"`
		Objective struct {
			Name string `json:"name"`
		} `json:"objective"`
	} `json:"learner"`
}

type xgbBooster struct {
	Name   string      `json:"name"`
	Model  *xgbGBTree  `json:"model"`  // gbtree
	GBTree *xgbBooster `json:"gbtree"` // dart wraps a gbtree
	Weight []float64   `json:"weight_drop"`
}

type xgbGBTree struct {
	Trees    []xgbTree `json:"trees"`
	TreeInfo []int     `json:"tree_info"`
}

type xgbTree struct {
	Param struct {
		NumNodes       string `json:"num_nodes"`
		SizeLeafVector string `json:"size_leaf_vector"`
	} `json:"tree_param"`
	Left       []int32   `json:"left_children"`
	Right      []int32   `json:"right_children"`
	SplitIndex []int64   `json:"split_indices"`
	SplitCond  []float64 `json:"split_conditions"`
	// DefaultLeft is an array of 0/1 (XGBoost 1.x wrote booleans in some versions).
	DefaultLeft []flexBool `json:"default_left"`
	SplitType   []int      `json:"split_type"` // 1: categorical
}

// flexBool reads a JSON boolean or a 0/1 number.
type flexBool bool

func (b *flexBool) UnmarshalJSON(data []byte) error {
	switch s := string(data); s {
	case "true", "1":
		*b = true
	case "false", "0":
		*b = false
	default:
		return fmt.Errorf("default_left: want 0, 1, true or false, got %s", s)
	}
	return nil
}

func parseXGBoost(data []byte) (*Model, error) {
	var doc xgbModel
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("XGBoost JSON: %w", err)
	}
	l := doc.Learner
	features, err := xgbInt("learner_model_param.num_feature", l.Param.NumFeature, 1)
	if err != nil {
		return nil, err
	}
	if t := l.Param.NumTarget; t != "" && t != "1" {
		return nil, fmt.Errorf("learner_model_param.num_target %s: multi-target models are not supported", t)
	}
	booster := l.GradientBooster
	weights := []float64(nil)
	switch booster.Name {
	case "gbtree":
	case "dart":
		weights = booster.Weight
		if booster.GBTree == nil {
			return nil, errors.New("gradient_booster: dart without its gbtree")
		}
		booster = *booster.GBTree
	default:
		return nil, fmt.Errorf("gradient_booster %q is not supported (gbtree and dart are)", booster.Name)
	}
	if booster.Model == nil || len(booster.Model.Trees) == 0 {
		return nil, errors.New("gradient_booster.model: no trees")
	}
	classes, err := xgbInt("learner_model_param.num_class", l.Param.NumClass, 0)
	if err != nil {
		return nil, err
	}
	groups := max(classes, 1)
	lk, toMargin, err := xgbObjective(l.Objective.Name)
	if err != nil {
		return nil, err
	}
	bias, err := xgbBias(l.Param.BaseScore, groups, toMargin)
	if err != nil {
		return nil, err
	}
	order, err := xgbRounds(booster.Model.TreeInfo, len(booster.Model.Trees), groups)
	if err != nil {
		return nil, err
	}
	if weights != nil && len(weights) != len(booster.Model.Trees) {
		return nil, fmt.Errorf("weight_drop has %d weights for %d trees", len(weights), len(booster.Model.Trees))
	}
	bin, err := xgbBinary(booster.Model.Trees, order, weights, features, groups, l.Objective.Name)
	if err != nil {
		return nil, err
	}
	ens, err := leaves.XGEnsembleFromReader(bufio.NewReader(bytes.NewReader(bin)), false)
	if err != nil {
		return nil, fmt.Errorf("leaves: %w", err)
	}
	return &Model{format: XGBoostJSON, objective: l.Objective.Name, ens: ens, features: features,
		outputs: groups, bias: bias, link: lk, float32Features: true}, nil
}

func xgbInt(field, s string, least int) (int, error) {
	if s == "" && least == 0 {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < least {
		return 0, fmt.Errorf("%s: want an integer ≥ %d, got %q", field, least, s)
	}
	return n, nil
}

// xgbBias turns base_score into the margin added to every output group. XGBoost 3
// may store one score per class ("[5E-1,5E-1,5E-1]"); earlier versions one for all.
func xgbBias(s string, groups int, toMargin func(float64) (float64, error)) ([]float64, error) {
	if s == "" {
		s = "0.5" // XGBoost's default before it stored the value
	}
	parts := []string{s}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		parts = strings.Split(strings.Trim(s, "[]"), ",")
	}
	if len(parts) != 1 && len(parts) != groups {
		return nil, fmt.Errorf("base_score %s: %d values for %d output groups", s, len(parts), groups)
	}
	bias := make([]float64, groups)
	for k := range bias {
		p := parts[min(k, len(parts)-1)]
		v, err := strconv.ParseFloat(strings.TrimSpace(p), 32)
		if err != nil {
			return nil, fmt.Errorf("base_score %s: %w", s, err)
		}
		if bias[k], err = toMargin(float64(float32(v))); err != nil {
			return nil, err
		}
	}
	return bias, nil
}

// xgbRounds orders the trees as leaves wants them, one tree per output group per round
// ([0 1 2 0 1 2 ...] in tree_info). XGBoost groups parallel trees (random forests,
// num_parallel_tree > 1) as [0 0 1 1 2 2 ...]; sums do not depend on the order, so the
// trees are regrouped. It returns the tree index for each position.
func xgbRounds(info []int, trees, groups int) ([]int, error) {
	if len(info) != trees {
		return nil, fmt.Errorf("tree_info has %d entries for %d trees", len(info), trees)
	}
	byGroup := make([][]int, groups)
	for i, g := range info {
		if g < 0 || g >= groups {
			return nil, fmt.Errorf("tree %d: output group %d, the model has %d", i, g, groups)
		}
		byGroup[g] = append(byGroup[g], i)
	}
	rounds := len(byGroup[0])
	order := make([]int, 0, trees)
	for r := range rounds {
		for g := range groups {
			if len(byGroup[g]) != rounds {
				return nil, fmt.Errorf("output group %d has %d trees, group 0 has %d", g, len(byGroup[g]), rounds)
			}
			order = append(order, byGroup[g][r])
		}
	}
	return order, nil
}
