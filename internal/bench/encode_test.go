package bench

import (
	"testing"

	"github.com/ferryml/ferry/internal/tensor"
)

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
