package batch

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"testing"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/lane"
	"github.com/ferryml/ferry/internal/tensor"
)

// TestFloatValuesAreSplitValues: the fast split of FP32 outputs gives every row the
// value lane.Split and lane.Value give it (a scalar for one element, else a slice), in
// the schema's output order; other responses are left to the general way.
func TestFloatValuesAreSplitValues(t *testing.T) {
	s, err := lane.Describe(context.Background(), mixedCore{}, "mixed", "", mixedMapping)
	if err != nil {
		t.Fatal(err)
	}
	const n = 5
	floats := func(name string, per int) *tensor.Tensor {
		var data []byte
		for k := range n * per {
			data = binary.LittleEndian.AppendUint32(data, math.Float32bits(float32(k)/3))
		}
		shape := tensor.Shape{n}
		if per != 1 {
			shape = append(shape, int64(per))
		}
		return &tensor.Tensor{Name: name, DType: tensor.FP32, Shape: shape, Data: data}
	}
	resp := &core.InferResponse{Outputs: []*tensor.Tensor{floats("three", 3), floats("one", 1)}}
	order := []int{1, 0}
	got, ok := floatValues(resp, order, n, true)
	if !ok {
		t.Fatal("FP32 outputs not taken")
	}
	pieces, err := s.Split(resp, n)
	if err != nil {
		t.Fatal(err)
	}
	for r := range n {
		for o, k := range order {
			want, err := lane.Value(pieces[r][k])
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprintf("%T %v", got[r][o], got[r][o]) != fmt.Sprintf("%T %v", want, want) {
				t.Fatalf("row %d output %d: %T %v, lane.Value %T %v", r, o, got[r][o], got[r][o], want, want)
			}
		}
	}
	resp.Outputs[0].DType = tensor.FP16
	if _, ok := floatValues(resp, order, n, true); ok {
		t.Fatal("an FP16 output taken as FP32")
	}
	if _, ok := floatValues(&core.InferResponse{Outputs: []*tensor.Tensor{floats("one", 1)}}, []int{0}, n+1, true); ok {
		t.Fatal("a response of 5 rows taken for 6")
	}
}
