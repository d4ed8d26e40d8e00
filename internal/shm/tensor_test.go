package shm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/ferryml/ferry/internal/tensor"
)

func TestRefOf(t *testing.T) {
	for _, tc := range []struct {
		name   string
		params map[string]any
		want   Ref
		ok     bool
		err    string
	}{
		{"none", map[string]any{"binary_data_size": int64(4)}, Ref{}, false, ""},
		{"nil", nil, Ref{}, false, ""},
		{"all", map[string]any{ParamRegion: "r", ParamOffset: int64(8), ParamByteSize: int64(16)}, Ref{"r", 8, 16}, true, ""},
		{"offset defaults to 0", map[string]any{ParamRegion: "r", ParamByteSize: int64(16)}, Ref{"r", 0, 16}, true, ""},
		{"no size", map[string]any{ParamRegion: "r"}, Ref{}, false, "must be given together"},
		{"no region", map[string]any{ParamByteSize: int64(4)}, Ref{}, false, "must be given together"},
		{"offset alone", map[string]any{ParamOffset: int64(4)}, Ref{}, false, "must be given together"},
		{"region not a string", map[string]any{ParamRegion: int64(1), ParamByteSize: int64(4)}, Ref{}, false, "shared_memory_region must be a non-empty string, got 1"},
		{"empty region", map[string]any{ParamRegion: "", ParamByteSize: int64(4)}, Ref{}, false, "non-empty string"},
		{"negative size", map[string]any{ParamRegion: "r", ParamByteSize: int64(-4)}, Ref{}, false, "shared_memory_byte_size must be a non-negative integer, got -4"},
		{"float size", map[string]any{ParamRegion: "r", ParamByteSize: 4.5}, Ref{}, false, "non-negative integer, got 4.5"},
		{"string offset", map[string]any{ParamRegion: "r", ParamByteSize: int64(4), ParamOffset: "0"}, Ref{}, false, "shared_memory_offset must be a non-negative integer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ref, ok, err := RefOf(tc.params)
			if tc.err != "" {
				if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("RefOf(%v) err = %v, want ErrInvalid containing %q", tc.params, err, tc.err)
				}
				return
			}
			if err != nil || ok != tc.ok || ref != tc.want {
				t.Fatalf("RefOf(%v) = %v, %v, %v; want %v, %v", tc.params, ref, ok, err, tc.want, tc.ok)
			}
		})
	}
}

// FuzzRefOf: any parameter values give a Ref within its rules or an ErrInvalid error,
// never a panic.
func FuzzRefOf(f *testing.F) {
	f.Add("r", int64(0), int64(16), true, true, true)
	f.Add("", int64(-1), int64(-1), true, true, false)
	f.Add("r", int64(1<<62), int64(1<<62), false, true, true)
	f.Fuzz(func(t *testing.T, region string, offset, size int64, hasRegion, hasSize, hasOffset bool) {
		p := map[string]any{}
		if hasRegion {
			p[ParamRegion] = region
		}
		if hasSize {
			p[ParamByteSize] = size
		}
		if hasOffset {
			p[ParamOffset] = offset
		}
		ref, ok, err := RefOf(p)
		switch {
		case err != nil:
			if !errors.Is(err, ErrInvalid) || ok {
				t.Fatalf("RefOf(%v) = %v, %v, %v", p, ref, ok, err)
			}
		case ok:
			if ref.Region == "" || ref.Offset < 0 || ref.Size < 0 || !hasRegion || !hasSize {
				t.Fatalf("RefOf(%v) accepted %v", p, ref)
			}
		case hasRegion || hasSize || hasOffset:
			t.Fatalf("RefOf(%v) ignored the parameters", p)
		}
	})
}

func TestReadAndWriteTensor(t *testing.T) {
	key := newObject(t, 256)
	r := New()
	defer r.Close()
	if err := r.Register("r", key, 0, 256); err != nil {
		t.Fatal(err)
	}
	l, _ := r.Acquire("r", 0, 256)
	strs := binary.LittleEndian.AppendUint32(nil, 2)
	strs = append(binary.LittleEndian.AppendUint32(append(strs, "hi"...), 0), "\x00"...)
	strs = strs[:len(strs)-1] // two elements: "hi" and ""
	if err := l.CopyIn(append(bytes.Repeat([]byte{7}, 16), strs...)); err != nil {
		t.Fatal(err)
	}
	l.Release()

	got, err := r.ReadTensor(Ref{"r", 0, 16}, tensor.FP32, tensor.Shape{1, 4})
	if err != nil || !bytes.Equal(got, bytes.Repeat([]byte{7}, 16)) {
		t.Errorf("ReadTensor FP32 [1,4] = %v, %v", got, err)
	}
	got, err = r.ReadTensor(Ref{"r", 16, int64(len(strs))}, tensor.Bytes, tensor.Shape{2})
	if err != nil || !bytes.Equal(got, strs) {
		t.Errorf("ReadTensor BYTES [2] = %q, %v; want %q", got, err, strs)
	}
	for _, tc := range []struct {
		ref   Ref
		dt    tensor.DType
		shape tensor.Shape
		want  string
	}{
		{Ref{"r", 0, 12}, tensor.FP32, tensor.Shape{1, 4}, "shared_memory_byte_size 12 does not match shape [1,4] of FP32 (4 elements of 4 bytes)"},
		{Ref{"r", 250, 16}, tensor.FP32, tensor.Shape{4}, "past the end of the region (256 bytes)"},
		{Ref{"x", 0, 16}, tensor.FP32, tensor.Shape{4}, `"x" is not registered`},
		{Ref{"r", 16, int64(len(strs))}, tensor.Bytes, tensor.Shape{3}, "needs 3 BYTES elements"},
		{Ref{"r", 0, 16}, tensor.Bytes, tensor.Shape{1}, "length prefix"},
	} {
		if _, err := r.ReadTensor(tc.ref, tc.dt, tc.shape); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ReadTensor(%v, %v, %v) err = %v, want ErrInvalid containing %q", tc.ref, tc.dt, tc.shape, err, tc.want)
		}
	}

	out := &tensor.Tensor{Name: "y", DType: tensor.Uint8, Shape: tensor.Shape{3}, Data: []byte{1, 2, 3}}
	if err := r.WriteTensor(Ref{"r", 100, 8}, out); err != nil {
		t.Fatal(err)
	}
	if got, _ := r.ReadTensor(Ref{"r", 100, 3}, tensor.Uint8, tensor.Shape{3}); !bytes.Equal(got, out.Data) {
		t.Errorf("region at 100 = %v after WriteTensor, want %v", got, out.Data)
	}
	err = r.WriteTensor(Ref{"r", 100, 2}, out)
	if !errors.Is(err, ErrInvalid) || err.Error() != `output "y" needs 3 bytes but shared_memory_byte_size is 2` {
		t.Errorf("WriteTensor into 2 bytes err = %v", err)
	}
	if err := r.WriteTensor(Ref{"gone", 0, 8}, out); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), `output "y"`) {
		t.Errorf("WriteTensor into an unknown region err = %v", err)
	}
	var none *Registry
	if _, err := none.ReadTensor(Ref{"r", 0, 4}, tensor.FP32, tensor.Shape{1}); !errors.Is(err, ErrInvalid) {
		t.Errorf("ReadTensor on a nil registry err = %v", err)
	}
}
