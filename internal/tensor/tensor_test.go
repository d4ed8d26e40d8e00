package tensor

import (
	"bytes"
	"encoding/binary"
	"math"
	"strings"
	"testing"
)

func TestNumElements(t *testing.T) {
	for _, tc := range []struct {
		shape   Shape
		want    int64
		wantErr string
	}{
		{Shape{}, 1, ""},
		{Shape{2, 3, 4}, 24, ""},
		{Shape{0, 1 << 62}, 0, ""},
		{Shape{1 << 32, 1 << 32}, 0, "overflows"},
		{Shape{math.MaxInt64, 2}, 0, "overflows"},
		{Shape{3, -1}, 0, "negative dimension"},
	} {
		got, err := tc.shape.NumElements()
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%v.NumElements() err = %v, want %q", tc.shape, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%v.NumElements() = %d, %v; want %d", tc.shape, got, err, tc.want)
		}
	}
}

func TestValidate(t *testing.T) {
	str := AppendBytesElement(AppendBytesElement(nil, []byte("ab")), []byte(""))
	for _, tc := range []struct {
		name    string
		t       Tensor
		wantErr string
	}{
		{"fp32 ok", Tensor{DType: FP32, Shape: Shape{2}, Data: make([]byte, 8)}, ""},
		{"fp32 short", Tensor{DType: FP32, Shape: Shape{2}, Data: make([]byte, 7)}, "needs 8 bytes, got 7"},
		{"bytes ok", Tensor{DType: Bytes, Shape: Shape{2}, Data: str}, ""},
		{"bytes count", Tensor{DType: Bytes, Shape: Shape{3}, Data: str}, "needs 3 values, got 2"},
		{"bytes broken prefix", Tensor{DType: Bytes, Shape: Shape{1}, Data: []byte{9, 0, 0, 0, 'a'}}, "length prefix"},
		{"bytes truncated prefix", Tensor{DType: Bytes, Shape: Shape{1}, Data: []byte{1, 0}}, "length prefix"},
		{"invalid dtype", Tensor{DType: Invalid, Shape: Shape{1}}, "invalid datatype"},
		{"size overflow", Tensor{DType: FP64, Shape: Shape{1 << 61}}, "overflows"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.t.Validate()
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("Validate() = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestParseDTypeRoundTrip(t *testing.T) {
	for d := Bool; d <= Bytes; d++ {
		got, err := ParseDType(d.String())
		if err != nil || got != d {
			t.Errorf("ParseDType(%q) = %v, %v", d.String(), got, err)
		}
	}
	if _, err := ParseDType("FLOAT32"); err == nil {
		t.Error("ParseDType(FLOAT32) succeeded")
	}
}

func int32s(vs ...int32) []byte {
	b := make([]byte, 4*len(vs))
	for i, v := range vs {
		binary.LittleEndian.PutUint32(b[4*i:], uint32(v))
	}
	return b
}

func TestConcatSplit(t *testing.T) {
	a := &Tensor{Name: "x", DType: Int32, Shape: Shape{1, 2}, Data: int32s(1, 2)}
	b := &Tensor{Name: "x", DType: Int32, Shape: Shape{2, 2}, Data: int32s(3, 4, 5, 6)}
	c, err := Concat([]*Tensor{a, b})
	if err != nil {
		t.Fatal(err)
	}
	if !c.Shape.Equal(Shape{3, 2}) || !bytes.Equal(c.Data, int32s(1, 2, 3, 4, 5, 6)) {
		t.Fatalf("Concat = %v %v", c.Shape, c.Data)
	}
	parts, err := Split(c, []int64{1, 2})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(parts[0].Data, a.Data) || !bytes.Equal(parts[1].Data, b.Data) || !parts[1].Shape.Equal(b.Shape) {
		t.Fatalf("Split = %v / %v", parts[0], parts[1])
	}
	if _, err := Concat([]*Tensor{a, {Name: "x", DType: Int32, Shape: Shape{1, 3}, Data: int32s(1, 2, 3)}}); err == nil {
		t.Error("Concat of [1,2] and [1,3] succeeded")
	}
	if _, err := Split(c, []int64{1, 1}); err == nil {
		t.Error("Split into 2 rows of a 3-row tensor succeeded")
	}
}

func TestConcatSplitBytes(t *testing.T) {
	mk := func(ss ...string) []byte {
		var b []byte
		for _, s := range ss {
			b = AppendBytesElement(b, []byte(s))
		}
		return b
	}
	a := &Tensor{Name: "s", DType: Bytes, Shape: Shape{1, 2}, Data: mk("a", "bb")}
	b := &Tensor{Name: "s", DType: Bytes, Shape: Shape{1, 2}, Data: mk("", "dddd")}
	c, err := Concat([]*Tensor{a, b})
	if err != nil {
		t.Fatal(err)
	}
	parts, err := Split(c, []int64{1, 1})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(parts[0].Data, a.Data) || !bytes.Equal(parts[1].Data, b.Data) {
		t.Fatalf("BYTES split = %q / %q", parts[0].Data, parts[1].Data)
	}
}

// A tensor whose data holds fewer elements than its shape is an error, not a panic: a
// backend's malformed output reaches Split when a lane splits a batch's answer.
func TestSplitShortData(t *testing.T) {
	for _, tc := range []*Tensor{
		{Name: "s", DType: Bytes, Shape: Shape{2, 1}, Data: AppendBytesElement(nil, []byte("x"))},
		{Name: "f", DType: FP32, Shape: Shape{2, 2}, Data: make([]byte, 12)},
	} {
		if _, err := Split(tc, []int64{1, 1}); err == nil {
			t.Errorf("%s: Split of %d bytes for shape %v: no error", tc.DType, len(tc.Data), tc.Shape)
		} else {
			t.Log(err)
		}
	}
}
