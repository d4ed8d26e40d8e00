package v2json

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/ferryml/ferry/internal/tensor"
)

func TestAppendData(t *testing.T) {
	le := binary.LittleEndian
	for _, tc := range []struct {
		name    string
		dt      tensor.DType
		data    []byte
		want    string
		wantErr string // an *ElementError's message
	}{
		{"int8 sign", tensor.Int8, []byte{0xff, 2}, "[-1,2]", ""},
		{"uint16", tensor.Uint16, []byte{1, 1}, "[257]", ""},
		{"int64 min", tensor.Int64, le.AppendUint64(nil, 1<<63), "[-9223372036854775808]", ""},
		{"uint64 max", tensor.Uint64, le.AppendUint64(nil, math.MaxUint64), "[18446744073709551615]", ""},
		{"bool", tensor.Bool, []byte{1, 0}, "[true,false]", ""},
		{"fp32 shortest form", tensor.FP32, le.AppendUint32(le.AppendUint32(nil, 0x3f000000), math.Float32bits(0.1)), "[0.5,0.1]", ""},
		{"fp64", tensor.FP64, le.AppendUint64(nil, math.Float64bits(0.1)), "[0.1]", ""},
		{"fp16", tensor.FP16, []byte{0x00, 0x3c, 0x01, 0x00}, "[1,5.9604645e-08]", ""},
		{"bf16", tensor.BF16, []byte{0x80, 0x3f}, "[1]", ""},
		{"empty", tensor.FP32, nil, "[]", ""},
		{"bytes escaped", tensor.Bytes, tensor.AppendBytesElement(tensor.AppendBytesElement(nil, []byte(`a"b`)), nil), `["a\"b",""]`, ""},
		{"fp32 NaN", tensor.FP32, le.AppendUint32(le.AppendUint32(nil, 0), math.Float32bits(float32(math.NaN()))), "",
			"element 1 is NaN, which JSON cannot represent"},
		{"fp64 infinity", tensor.FP64, le.AppendUint64(nil, math.Float64bits(math.Inf(-1))), "", "element 0 is -Inf, which JSON cannot represent"},
		{"fp16 infinity", tensor.FP16, []byte{0x00, 0x7c}, "", "element 0 is +Inf, which JSON cannot represent"},
		{"bytes not UTF-8", tensor.Bytes, tensor.AppendBytesElement(nil, []byte{0xff}), "", "element 0 is not valid UTF-8, which a JSON string cannot carry"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := AppendData([]byte("x"), &tensor.Tensor{Name: "x", DType: tc.dt, Data: tc.data})
			var ee *ElementError
			switch {
			case tc.wantErr != "" && (!errors.As(err, &ee) || err.Error() != tc.wantErr):
				t.Errorf("AppendData(%s %v) err = %v, want ElementError %q", tc.dt, tc.data, err, tc.wantErr)
			case tc.wantErr == "" && (err != nil || string(got) != "x"+tc.want):
				t.Errorf("AppendData(%s %v) = %s, %v; want x%s", tc.dt, tc.data, got, err, tc.want)
			}
		})
	}
	_, err := AppendData(nil, &tensor.Tensor{Name: "x", DType: tensor.Bytes, Data: []byte{9, 0, 0, 0}})
	var ee *ElementError
	if err == nil || errors.As(err, &ee) {
		t.Errorf("AppendData(truncated BYTES) err = %v, want the tensor package's error", err)
	}
}

// TestAppendString checks the escaping against encoding/json, which differs only in
// escaping <, > and & for HTML.
func TestAppendString(t *testing.T) {
	for _, s := range []string{"", "plain", `q"b\s`, "\n\r\t\x00\x1f", "é€😀", "bad\xffutf8", "a\u2028b"} {
		want, _ := json.Marshal(s)
		if got := AppendString(nil, s); string(got) != string(want) && s != "a\u2028b" {
			t.Errorf("AppendString(%q) = %s, want %s", s, got, want)
		}
		var back string
		if err := json.Unmarshal(AppendString(nil, s), &back); err != nil {
			t.Errorf("AppendString(%q) is not JSON: %v", s, err)
		}
	}
	if got := AppendString(nil, "<a&b>"); string(got) != `"<a&b>"` {
		t.Errorf("AppendString(<a&b>) = %s, want it unescaped", got)
	}
}

// TestAppendDataRefusesAnInvalidDatatype: a zero-size datatype is an error, not a loop.
func TestAppendDataRefusesAnInvalidDatatype(t *testing.T) {
	done := make(chan error, 1)
	go func() {
		_, err := AppendData(nil, &tensor.Tensor{Name: "x", DType: tensor.DType(200), Data: []byte{1, 2, 3, 4}})
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("an invalid datatype was encoded")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("AppendData did not return on an invalid datatype")
	}
}
