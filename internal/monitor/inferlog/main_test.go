package inferlog

import (
	"encoding/binary"
	"math"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/tensor"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func fp32(name string, shape tensor.Shape, vs ...float32) *tensor.Tensor {
	b := make([]byte, 4*len(vs))
	for i, v := range vs {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return &tensor.Tensor{Name: name, DType: tensor.FP32, Shape: shape, Data: b}
}

func bytesT(name string, vs ...string) *tensor.Tensor {
	var b []byte
	for _, v := range vs {
		b = tensor.AppendBytesElement(b, []byte(v))
	}
	return &tensor.Tensor{Name: name, DType: tensor.Bytes, Shape: tensor.Shape{int64(len(vs))}, Data: b}
}

// record is a finished request of model m as core hands it to a tap.
func record(m, v, id string, start time.Time) *core.Record {
	return &core.Record{Model: m, Version: v, ID: id, Start: start, Total: 1500 * time.Microsecond,
		TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		Inputs:      []*tensor.Tensor{fp32("x", tensor.Shape{1, 3}, 1, 2.5, -3)},
		Outputs:     []*tensor.Tensor{fp32("y", tensor.Shape{1, 1}, 0.75)}}
}
