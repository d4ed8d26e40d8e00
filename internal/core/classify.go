package core

import (
	"fmt"
	"sort"
	"strconv"

	"github.com/ferryml/ferry/internal/tensor"
)

// classifications reads the classification extension's per-output parameter: how many
// top classes to return instead of the tensor. 0 means the plain tensor.
func classifications(out RequestedOutput) (int, error) {
	v, ok := out.Parameters["classification"]
	if !ok {
		return 0, nil
	}
	k, ok := asInt(v)
	if !ok || k < 1 {
		return 0, Invalidf("output %q: parameter \"classification\" must be a positive integer, got %v", out.Name, v)
	}
	return int(min(k, 1<<20)), nil
}

// classify replaces an output with its top k classes per batch row, as BYTES elements
// "value:index" (Triton's format), shape [batch, k] or [k].
func classify(t *tensor.Tensor, k int, batched bool) (*tensor.Tensor, error) {
	vals, err := t.Float64s()
	if err != nil {
		return nil, Invalidf("output %q: classification needs a numeric output: %v", t.Name, err)
	}
	rows := 1
	if batched && len(t.Shape) > 0 {
		rows = int(t.Shape[0])
	}
	if rows == 0 {
		rows = 1
	}
	per := len(vals) / rows
	k = min(k, per)
	var data []byte
	idx := make([]int, per)
	for r := range rows {
		row := vals[r*per : (r+1)*per]
		for i := range idx {
			idx[i] = i
		}
		sort.SliceStable(idx, func(a, b int) bool { return row[idx[a]] > row[idx[b]] })
		for _, i := range idx[:k] {
			data = tensor.AppendBytesElement(data, []byte(strconv.FormatFloat(row[i], 'f', 6, 64)+":"+strconv.Itoa(i)))
		}
	}
	shape := tensor.Shape{int64(k)}
	if batched {
		shape = tensor.Shape{int64(rows), int64(k)}
	}
	return &tensor.Tensor{Name: t.Name, DType: tensor.Bytes, Shape: shape, Data: data}, nil
}

// applyClassification rewrites the outputs that asked for classification.
func applyClassification(resp *InferResponse, req []RequestedOutput, batched bool) error {
	for _, ro := range req {
		k, err := classifications(ro)
		if err != nil || k == 0 {
			if err != nil {
				return err
			}
			continue
		}
		for i, t := range resp.Outputs {
			if t.Name != ro.Name {
				continue
			}
			c, err := classify(t, k, batched)
			if err != nil {
				return fmt.Errorf("%w", err)
			}
			resp.Outputs[i] = c
		}
	}
	return nil
}
