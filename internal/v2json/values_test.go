package v2json

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/ferryml/ferry/internal/tensor"
)

func TestAppendValueAndFlatten(t *testing.T) {
	for _, tc := range []struct {
		dt      tensor.DType
		data    string
		want    []byte
		wantErr string
	}{
		{tensor.Int8, `[[1, -2], [127]]`, []byte{1, 0xfe, 127}, ""},
		{tensor.Uint16, `[65535]`, []byte{0xff, 0xff}, ""},
		{tensor.FP16, `[1.0]`, []byte{0x00, 0x3c}, ""},
		{tensor.BF16, `[-2]`, []byte{0x00, 0xc0}, ""},
		{tensor.Bool, `[true, false]`, []byte{1, 0}, ""},
		{tensor.Bytes, `["ab"]`, []byte{2, 0, 0, 0, 'a', 'b'}, ""},
		{tensor.Int8, `[128]`, nil, "128 for a INT8 value: strconv.ParseInt: parsing \"128\": value out of range"},
		{tensor.Uint8, `[-1]`, nil, "-1 for a UINT8 value"},
		{tensor.Int32, `["x"]`, nil, `string "x" for a INT32 value`},
		{tensor.FP32, `[true]`, nil, "boolean for a FP32 value"},
		{tensor.Bytes, `[1]`, nil, "1 does not fit a BYTES value"},
		{tensor.FP32, `[1, null]`, nil, "unexpected value <nil>"},
	} {
		dec := json.NewDecoder(strings.NewReader(tc.data))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		flat, err := Flatten(nil, v)
		var got []byte
		for _, e := range flat {
			if err != nil {
				break
			}
			got, err = AppendValue(got, tc.dt, e)
		}
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s %s: err %v, want %q", tc.dt, tc.data, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !bytes.Equal(got, tc.want) {
			t.Errorf("%s %s: got %v, %v; want %v", tc.dt, tc.data, got, err, tc.want)
		}
	}
}
