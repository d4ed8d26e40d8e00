package python

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/ferryml/ferry/internal/modelconfig"
	"github.com/ferryml/ferry/internal/tensor"
)

// sample is three values of one datatype, as raw little-endian bytes, chosen at the
// edges of the type's range.
func sample(dt tensor.DType) []byte {
	le := binary.LittleEndian
	var b []byte
	switch dt {
	case tensor.Bool:
		b = []byte{1, 0, 1}
	case tensor.Uint8:
		b = []byte{0, 255, 7}
	case tensor.Int8:
		b = []byte{0x80, 0x7f, 0xff}
	case tensor.Uint16, tensor.Int16:
		for _, v := range []uint16{0, math.MaxUint16, 0x8000} {
			b = le.AppendUint16(b, v)
		}
	case tensor.FP16:
		for _, v := range []uint16{0x3c00, 0xc000, 0x7bff} { // 1, -2, 65504
			b = le.AppendUint16(b, v)
		}
	case tensor.BF16:
		for _, v := range []uint16{0x3f80, 0xc040, 0x4049} { // 1, -3, 3.140625
			b = le.AppendUint16(b, v)
		}
	case tensor.Uint32, tensor.Int32:
		for _, v := range []uint32{0, math.MaxUint32, 0x80000000} {
			b = le.AppendUint32(b, v)
		}
	case tensor.FP32:
		for _, v := range []float32{1.5, float32(math.Copysign(0, -1)), math.MaxFloat32} {
			b = le.AppendUint32(b, math.Float32bits(v))
		}
	case tensor.Uint64, tensor.Int64:
		for _, v := range []uint64{0, math.MaxUint64, 1 << 63} {
			b = le.AppendUint64(b, v)
		}
	case tensor.FP64:
		for _, v := range []float64{math.Pi, -1e300, math.SmallestNonzeroFloat64} {
			b = le.AppendUint64(b, math.Float64bits(v))
		}
	case tensor.Bytes:
		for _, v := range []string{"a", "", "\x00\xff binary"} {
			b = tensor.AppendBytesElement(b, []byte(v))
		}
	}
	return b
}

// TestEveryDatatypeRoundTrips: every V2 datatype decodes in Python (as numpy or
// NDArray) and comes back with the same bytes.
func TestEveryDatatypeRoundTrips(t *testing.T) {
	var cfg, inputs strings.Builder
	cfg.WriteString("name: \"types\"\nbackend: \"python\"\n")
	var reqs []*tensor.Tensor
	for dt := tensor.Bool; dt <= tensor.Bytes; dt++ {
		ct := modelconfig.ConfigType(dt).String()
		fmt.Fprintf(&inputs, "input { name: \"IN_%s\" data_type: %s dims: [ 3 ] }\n", dt, ct)
		fmt.Fprintf(&cfg, "output { name: \"OUT_%s\" data_type: %s dims: [ 3 ] }\n", dt, ct)
		reqs = append(reqs, tens("IN_"+dt.String(), dt, tensor.Shape{3}, sample(dt)))
	}
	cfg.WriteString(inputs.String())
	const src = `
import triton_python_backend_utils as pb_utils

class TritonPythonModel:
    def execute(self, requests):
        return [pb_utils.InferenceResponse([pb_utils.Tensor("OUT_" + t.name()[3:], t.as_numpy()) for t in r.inputs()])
                for r in requests]
`
	for _, fl := range flavors(t) {
		t.Run(fl.name, func(t *testing.T) {
			if fl.skip != "" {
				t.Skip(fl.skip)
			}
			in := writeModel(t, "types", cfg.String(), src).mustOpen(t, fl.opts)
			out, err := in.Execute(context.Background(), reqs, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(out) != len(reqs) {
				t.Fatalf("%d outputs for %d inputs", len(out), len(reqs))
			}
			for i, o := range out {
				want := reqs[i]
				if o.Name != "OUT_"+want.DType.String() || o.DType != want.DType || !o.Shape.Equal(want.Shape) || !bytes.Equal(o.Data, want.Data) {
					t.Errorf("%s: got %s %s%v % x, want % x", want.Name, o.Name, o.DType, o.Shape, o.Data, want.Data)
				}
			}
		})
	}
}
