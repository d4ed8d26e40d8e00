package onnx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/ferryml/ferry/internal/tensor"
	"github.com/ferryml/ferry/tools/onnxgen"
)

// nulStrings are BYTES elements a C string would cut or misread: NULs first,
// last, alone and repeated, empty, not UTF-8, and long ones past any
// small-string buffer, with NULs inside.
func nulStrings() []string {
	long := strings.Repeat("0123456789abcdef", 4096) // 64 KiB
	return []string{
		"a\x00b", "\x00", "", "\x00\x00x", "trailing\x00", "\x00leading",
		"\xff\x00\xfe not utf-8", "plain",
		long[:1000] + "\x00" + long[:1000],
		strings.Repeat("\x00", 70000),
		long + "\x00" + long,
		"\x00\x01\x02\x03\x7f\x80\xff",
	}
}

func bytesData(elems ...string) []byte {
	var data []byte
	for _, e := range elems {
		data = tensor.AppendBytesElement(data, []byte(e))
	}
	return data
}

// BYTES elements holding NUL bytes reach ONNX Runtime and come back intact,
// in every position and in several shapes.
func TestStringsWithNULRoundTrip(t *testing.T) {
	s := open(t, onnxgen.Identity(onnxgen.String, "identity_bytes"))
	all := nulStrings()
	for _, tc := range []struct {
		name  string
		shape tensor.Shape
		elems []string
	}{
		{"one element a NUL b", tensor.Shape{1, 1}, []string{"a\x00b"}},
		{"one element only a NUL", tensor.Shape{1, 1}, []string{"\x00"}},
		{"one empty element", tensor.Shape{1, 1}, []string{""}},
		{"every kind in one row", tensor.Shape{1, int64(len(all))}, all},
		{"every kind in a batch", tensor.Shape{int64(len(all) / 2), 2}, all},
		{"all empty", tensor.Shape{2, 3}, []string{"", "", "", "", "", ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := bytesData(tc.elems...)
			in := &tensor.Tensor{Name: "INPUT0", DType: tensor.Bytes, Shape: tc.shape, Data: bytes.Clone(data)}
			out := execute(t, s, nil, in)
			if out[0].DType != tensor.Bytes || !out[0].Shape.Equal(tc.shape) {
				t.Fatalf("output is %s%v, want BYTES%v", out[0].DType, out[0].Shape, tc.shape)
			}
			got, err := tensor.BytesElements(out[0].Data)
			if err != nil {
				t.Fatalf("output data: %v", err)
			}
			if len(got) != len(tc.elems) {
				t.Fatalf("output has %d elements, want %d", len(got), len(tc.elems))
			}
			for i, g := range got {
				if string(g) != tc.elems[i] {
					t.Errorf("element %d: got %d bytes %q, want %d bytes %q", i, len(g), clip(g), len(tc.elems[i]), clip([]byte(tc.elems[i])))
				}
			}
			if !bytes.Equal(in.Data, data) {
				t.Error("Execute changed its input")
			}
		})
	}
}

// clip shortens a long element for a failure message.
func clip(b []byte) []byte {
	if len(b) > 40 {
		return append(b[:40:40], "..."...)
	}
	return b
}

// fill refuses a count of strings the tensor cannot hold instead of leaving
// elements unset or writing past the end.
func TestFillStringsCountMismatch(t *testing.T) {
	needORT(t)
	data := bytesData("a", "b\x00")
	elems, err := tensor.BytesElements(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int64{1, 3} {
		t.Run(fmt.Sprintf("%d elements", n), func(t *testing.T) {
			v, err := ort.NewStringTensor(ort.Shape{n})
			if err != nil {
				t.Fatal(err)
			}
			defer v.Destroy()
			err = rt.strs.fill(v, data, elems)
			want := fmt.Sprintf("2 strings for a tensor of %d elements", n)
			if err == nil || err.Error() != want {
				t.Errorf("fill err = %v, want %q", err, want)
			}
		})
	}
}

// The binding's layout that ortValue depends on is what it expects.
func TestValueInternals(t *testing.T) {
	if err := checkValueInternals(); err != nil {
		t.Fatal(err)
	}
	needORT(t)
	v, err := ort.NewStringTensor(ort.Shape{1})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Destroy()
	if p, err := ortValue(v); err != nil || p == nil {
		t.Errorf("ortValue = %p, %v; want the OrtValue", p, err)
	}
}

// FuzzStringRoundTrip sends arbitrary bytes as a [1, n] BYTES input through a
// string identity model: a malformed serialization is an input error, and a
// well-formed one comes back byte for byte, NULs included.
func FuzzStringRoundTrip(f *testing.F) {
	for _, e := range nulStrings() {
		if len(e) <= 64 { // long seeds make every minimisation slow
			f.Add(bytesData(e))
		}
	}
	f.Add(bytesData("a\x00b", "\x00", "", "\x00\x00x"))
	f.Add([]byte{})
	f.Add([]byte{3, 0, 0, 0, 'a', 0})        // prefix past the end
	f.Add(append(bytesData("ok"), 1, 0))     // truncated prefix
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0}) // 4 GiB prefix
	s := open(f, onnxgen.Identity(onnxgen.String, "identity_bytes"))
	f.Fuzz(func(t *testing.T, data []byte) {
		n, countErr := tensor.CountBytesElements(data)
		in := &tensor.Tensor{Name: "INPUT0", DType: tensor.Bytes, Shape: tensor.Shape{1, n}, Data: data}
		out, err := s.Execute(context.Background(), []*tensor.Tensor{in}, nil)
		if countErr != nil {
			var ie *InputError
			if !errors.As(err, &ie) {
				t.Fatalf("malformed BYTES: Execute err = %v, want an input error", err)
			}
			return
		}
		if err != nil {
			t.Fatalf("Execute: %v", err)
		}
		if !bytes.Equal(out[0].Data, data) {
			t.Fatalf("output % x, want % x", clip(out[0].Data), clip(data))
		}
	})
}
