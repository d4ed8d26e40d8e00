package bench

import (
	"math"
	"testing"

	"github.com/ferryml/ferry/internal/tensor"
)

func TestFP16Bits(t *testing.T) {
	for _, tc := range []struct {
		f    float32
		want uint16
	}{
		{0, 0x0000},
		{float32(math.Copysign(0, -1)), 0x8000},
		{1, 0x3c00},
		{-2.5, 0xc100},
		{0.1, 0x2e66},
		{65504, 0x7bff},
		{65520, 0x7c00}, // halfway to the next step rounds to even: infinity
		{1e10, 0x7c00},
		{float32(math.Ldexp(1, -24)), 0x0001}, // smallest subnormal
		{float32(math.Ldexp(1, -25)), 0x0000}, // half of it: ties to even, zero
		{float32(math.Ldexp(3, -26)), 0x0001}, // 0.75 units rounds up
		{float32(math.Ldexp(1, -14)), 0x0400}, // smallest normal
		{float32(math.Inf(-1)), 0xfc00},
	} {
		if got := fp16Bits(tc.f); got != tc.want {
			t.Errorf("fp16Bits(%g) = %#04x, want %#04x", tc.f, got, tc.want)
		}
	}
	for bits, want := range map[uint16]float64{0x3c00: 1, 0xc100: -2.5, 0x7bff: 65504, 0x0001: math.Ldexp(1, -24),
		0x0400: math.Ldexp(1, -14), 0x7c00: math.Inf(1), 0x2e66: 0.0999755859375} {
		if got := fp16Float(bits); float64(got) != want {
			t.Errorf("fp16Float(%#04x) = %g, want %g", bits, got, want)
		}
	}
	if got := bf16Bits(1); got != 0x3f80 {
		t.Errorf("bf16Bits(1) = %#04x, want 0x3f80", got)
	}
}

func TestAppendJSONData(t *testing.T) {
	for _, tc := range []struct {
		dt   tensor.DType
		data []byte
		want string
	}{
		{tensor.Int8, []byte{0xff, 2}, "[-1,2]"},
		{tensor.Uint16, []byte{1, 1}, "[257]"},
		{tensor.Bool, []byte{1, 0}, "[true,false]"},
		{tensor.FP32, []byte{0, 0, 0, 0x3f}, "[0.5]"},
		{tensor.FP16, []byte{0x00, 0x3c}, "[1]"},
		{tensor.BF16, []byte{0x80, 0x3f}, "[1]"},
		{tensor.Bytes, tensor.AppendBytesElement(tensor.AppendBytesElement(nil, []byte(`a"b`)), nil), `["a\"b",""]`},
	} {
		got, err := appendJSONData(nil, &tensor.Tensor{Name: "x", DType: tc.dt, Data: tc.data})
		if err != nil || string(got) != tc.want {
			t.Errorf("appendJSONData(%s %v) = %s, %v; want %s", tc.dt, tc.data, got, err, tc.want)
		}
	}
}
