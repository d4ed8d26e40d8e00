package trees

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/dmitryikh/leaves"
)

// lgbBlock is one "key=value" section of a LightGBM text model: the header, or a tree.
type lgbBlock map[string]string

// lgbSections splits a LightGBM text model into its header and its tree sections,
// stopping at "end of trees" (feature importances and parameters follow it).
func lgbSections(data []byte) (lgbBlock, []lgbBlock) {
	header := lgbBlock{}
	var trees []lgbBlock
	cur := header
	for line := range strings.Lines(string(data)) {
		line = strings.TrimSpace(line)
		if line == "end of trees" {
			break
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		if k == "Tree" {
			cur = lgbBlock{}
			trees = append(trees, cur)
		}
		cur[k] = v
	}
	return header, trees
}

func (b lgbBlock) int(key string, least int) (int, error) {
	n, err := strconv.Atoi(b[key])
	if err != nil || n < least {
		return 0, fmt.Errorf("%s: want an integer ≥ %d, got %q", key, least, b[key])
	}
	return n, nil
}

func (b lgbBlock) ints(key string, n int) ([]int, error) {
	f := strings.Fields(b[key])
	if len(f) != n {
		return nil, fmt.Errorf("%s has %d values, want %d", key, len(f), n)
	}
	out := make([]int, n)
	for i, s := range f {
		v, err := strconv.Atoi(s)
		if err != nil {
			return nil, fmt.Errorf("%s[%d]: %w", key, i, err)
		}
		out[i] = v
	}
	return out, nil
}

func parseLightGBM(data []byte) (*Model, error) {
	header, trees := lgbSections(data)
	switch v := header["version"]; v {
	case "v2", "v3":
	case "v4":
		// LightGBM 4 writes v4; the tree sections leaves reads are unchanged since v3
		// (what v4 added, linear trees, is refused below), so leaves is shown v3.
		data = bytes.Replace(data, []byte("version=v4"), []byte("version=v3"), 1)
	default:
		return nil, fmt.Errorf("LightGBM model version %q is not supported (v2, v3 and v4 are)", v)
	}
	classes, err := header.int("num_class", 1)
	if err != nil {
		return nil, err
	}
	perIter, err := header.int("num_tree_per_iteration", 1)
	if err != nil {
		return nil, err
	}
	if perIter != classes {
		return nil, fmt.Errorf("num_tree_per_iteration %d differs from num_class %d", perIter, classes)
	}
	maxFeature, err := header.int("max_feature_idx", 0)
	if err != nil {
		return nil, err
	}
	features := maxFeature + 1
	if len(trees) == 0 || len(trees)%classes != 0 {
		return nil, fmt.Errorf("%d trees for %d classes", len(trees), classes)
	}
	if n := len(strings.Fields(header["tree_sizes"])); n != len(trees) {
		return nil, fmt.Errorf("tree_sizes lists %d trees, the file has %d", n, len(trees))
	}
	for i, t := range trees {
		if err := lgbCheckTree(t, features); err != nil {
			return nil, fmt.Errorf("Tree=%d: %w", i, err)
		}
	}
	lk, err := lgbObjective(header["objective"], classes)
	if err != nil {
		return nil, err
	}
	ens, err := lgbLoad(data)
	if err != nil {
		return nil, err
	}
	return &Model{format: LightGBM, objective: header["objective"], ens: ens, features: features,
		outputs: classes, link: lk}, nil
}

// lgbLoad hands the file to leaves, turning a panic on input lgbCheckTree missed
// into an error.
func lgbLoad(data []byte) (ens *leaves.Ensemble, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("leaves: malformed LightGBM model: %v", r)
		}
	}()
	ens, err = leaves.LGEnsembleFromReader(bufio.NewReader(bytes.NewReader(data)), false)
	if err != nil {
		return nil, fmt.Errorf("leaves: %w", err)
	}
	return ens, nil
}

// lgbCheckTree makes sure one tree section is a well-formed tree over the model's
// features (leaves indexes without checks when it predicts). Internal nodes are
// numbered 0..L-2 and leaves ~0..~(L-1) (negative), as LightGBM writes them.
func lgbCheckTree(t lgbBlock, features int) error {
	if t["is_linear"] == "1" {
		return errors.New("linear trees (linear_tree=true) are not supported")
	}
	leavesN, err := t.int("num_leaves", 1)
	if err != nil {
		return err
	}
	if f := strings.Fields(t["leaf_value"]); len(f) != leavesN {
		return fmt.Errorf("leaf_value has %d values for %d leaves", len(f), leavesN)
	}
	inner := leavesN - 1
	if inner == 0 {
		return nil
	}
	left, err := t.ints("left_child", inner)
	if err != nil {
		return err
	}
	right, err := t.ints("right_child", inner)
	if err != nil {
		return err
	}
	split, err := t.ints("split_feature", inner)
	if err != nil {
		return err
	}
	if _, err := t.ints("decision_type", inner); err != nil {
		return err
	}
	if f := strings.Fields(t["threshold"]); len(f) != inner {
		return fmt.Errorf("threshold has %d values for %d nodes", len(f), inner)
	}
	innerParents, leafParents := make([]int, inner), make([]int, leavesN)
	for i := range inner {
		if split[i] < 0 || split[i] >= features {
			return fmt.Errorf("node %d: split_feature %d, the model has %d features", i, split[i], features)
		}
		for _, c := range []int{left[i], right[i]} {
			switch {
			case c >= 0 && c < inner && c != 0:
				innerParents[c]++
			case c < 0 && ^c < leavesN:
				leafParents[^c]++
			default:
				return fmt.Errorf("node %d: child %d is neither another node nor a leaf", i, c)
			}
		}
	}
	for i := 1; i < inner; i++ {
		if innerParents[i] != 1 {
			return fmt.Errorf("node %d has %d parents; a tree node has one", i, innerParents[i])
		}
	}
	for i, p := range leafParents {
		if p != 1 {
			return fmt.Errorf("leaf %d has %d parents; a leaf has one", i, p)
		}
	}
	return nil
}
