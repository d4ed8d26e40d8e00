package lane

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"testing"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/tensor"
)

// generalRows writes every row the general way, as the streaming Processor did before
// OutputRows: the row's kept fields and each output's Value in a map, then MarshalRow.
func generalRows(t testing.TB, outs []*tensor.Tensor, rows []Row, keep func(string) bool, batching bool) ([][]byte, []error) {
	t.Helper()
	s := &Schema{Batching: batching}
	split, err := s.Split(&core.InferResponse{Outputs: outs}, len(rows))
	got, errs := make([][]byte, len(rows)), make([]error, len(rows))
	for k, in := range rows {
		if err != nil {
			errs[k] = err
			continue
		}
		m := map[string]any{}
		for f, v := range in {
			if keep(f) {
				m[f] = v
			}
		}
		for j, p := range split[k] {
			v, err := Value(p)
			if err != nil {
				errs[k] = err
				break
			}
			m[outs[j].Name] = v
		}
		if errs[k] == nil {
			got[k], errs[k] = MarshalRow(m)
		}
	}
	return got, errs
}

// checkOutputRows holds OutputRows to the general way: every row it writes is the
// general way's bytes. It returns how many rows it wrote.
func checkOutputRows(t testing.TB, outs []*tensor.Tensor, rows []Row, keep func(string) bool, batching bool) int {
	t.Helper()
	want, errs := generalRows(t, outs, rows, keep, batching)
	w, ok := NewOutputRows(outs, len(rows), batching)
	if !ok {
		return 0
	}
	wrote := 0
	for k, in := range rows {
		got, ok := w.Append([]byte("prefix"), in, keep, k)
		if fields, flat := rowFields(in, keep); flat {
			// The same row as AddFlat keeps it: written alike.
			fromFields, fok := w.AppendFields([]byte("prefix"), fields, k)
			if fok != ok || ok && !bytes.Equal(fromFields, got) {
				t.Fatalf("row %d: AppendFields wrote %s (%v), Append %s (%v)", k, fromFields, fok, got, ok)
			}
		}
		if !ok {
			continue
		}
		wrote++
		got = bytes.TrimPrefix(got, []byte("prefix"))
		if errs[k] != nil {
			t.Fatalf("row %d: OutputRows wrote %s where the general way fails: %v", k, got, errs[k])
		}
		if !bytes.Equal(got, want[k]) {
			t.Fatalf("row %d: OutputRows wrote\n%s\nthe general way\n%s", k, got, want[k])
		}
	}
	return wrote
}

// rowFields is in's kept fields as AddFlat keeps them; false when a value is not one a
// flat row holds.
func rowFields(in Row, keep func(string) bool) ([]Field, bool) {
	var fields []Field
	for f, v := range in {
		if !keep(f) {
			continue
		}
		var sp span
		switch v := v.(type) {
		case json.Number:
			sp = span{'0', string(v)}
		case string:
			sp = span{'"', v}
		case bool:
			sp = span{'f', ""}
			if v {
				sp.kind = 't'
			}
		case nil:
			sp = span{'n', ""}
		case []any: // a list of numbers, written with spaces AddFlat's writer drops
			raw := "["
			for i, x := range v {
				n, ok := x.(json.Number)
				if !ok {
					return nil, false
				}
				if i > 0 {
					raw += " , "
				}
				raw += string(n)
			}
			if len(v) == 0 {
				return nil, false
			}
			sp = span{'[', raw + " ]"}
		default:
			return nil, false
		}
		fields = append(fields, Field{f, sp})
	}
	return fields, true
}

func f32s(vs ...float32) []byte {
	b := make([]byte, 4*len(vs))
	for i, v := range vs {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return b
}

func TestOutputRowsMatchMarshalRow(t *testing.T) {
	rows := []Row{
		{"id": json.Number("7"), "age": json.Number("1.5"), "name": "ann", "ok": true, "none": nil},
		{"id": "b-2", "age": json.Number("2"), "vec": []any{json.Number("1"), json.Number("-2.5e-3")}},
		{},
	}
	notAge := func(f string) bool { return f != "age" }
	all := func(string) bool { return true }
	for _, tc := range []struct {
		name     string
		outs     []*tensor.Tensor
		batching bool
		rows     []Row
		keep     func(string) bool
		fast     int // rows OutputRows must write itself
	}{
		{"fp32 scalar", []*tensor.Tensor{{Name: "score", DType: tensor.FP32, Shape: tensor.Shape{3, 1}, Data: f32s(0.31547773, 1e-7, 1e21)}}, true, rows, notAge, 3},
		{"fp32 row of three", []*tensor.Tensor{{Name: "probs", DType: tensor.FP32, Shape: tensor.Shape{3, 3}, Data: f32s(1, 2, 3, 4, 5, 6, 7, 8, 9)}}, true, rows, notAge, 3},
		{"shape [n]", []*tensor.Tensor{{Name: "y", DType: tensor.FP32, Shape: tensor.Shape{3}, Data: f32s(-1, 0, 1)}}, true, rows, all, 3},
		{"empty rows", []*tensor.Tensor{{Name: "y", DType: tensor.FP32, Shape: tensor.Shape{3, 0}}}, true, rows, all, 3},
		{"output replaces a field", []*tensor.Tensor{{Name: "id", DType: tensor.Int64, Shape: tensor.Shape{3, 1}, Data: make([]byte, 24)}}, true, rows, all, 3},
		{"two outputs and every type", []*tensor.Tensor{
			{Name: "b", DType: tensor.Bool, Shape: tensor.Shape{3, 2}, Data: []byte{1, 0, 0, 1, 2, 0}},
			{Name: "a", DType: tensor.Int8, Shape: tensor.Shape{3, 1}, Data: []byte{0xff, 0x80, 7}},
			{Name: "u16", DType: tensor.Uint16, Shape: tensor.Shape{3, 1}, Data: []byte{0xff, 0xff, 1, 0, 0, 1}},
			{Name: "f16", DType: tensor.FP16, Shape: tensor.Shape{3, 1}, Data: []byte{0x00, 0x3c, 0x00, 0xc0, 0x00, 0x00}},
			{Name: "bf16", DType: tensor.BF16, Shape: tensor.Shape{3, 1}, Data: []byte{0x80, 0x3f, 0x00, 0x40, 0x00, 0x00}},
			{Name: "f64", DType: tensor.FP64, Shape: tensor.Shape{3, 1}, Data: binary.LittleEndian.AppendUint64(binary.LittleEndian.AppendUint64(binary.LittleEndian.AppendUint64(nil, math.Float64bits(0.1)), math.Float64bits(1e-300)), math.Float64bits(-2))},
		}, true, rows, notAge, 3},
		{"a model that does not batch", []*tensor.Tensor{{Name: "score", DType: tensor.FP32, Shape: tensor.Shape{2}, Data: f32s(1, 2)}}, false, rows[:1], notAge, 1},
		{"NaN: the general way words the error", []*tensor.Tensor{{Name: "score", DType: tensor.FP32, Shape: tensor.Shape{3, 1}, Data: f32s(1, float32(math.NaN()), 2)}}, true, rows, notAge, 2},
		{"a key to escape", []*tensor.Tensor{{Name: "a<b", DType: tensor.FP32, Shape: tensor.Shape{3, 1}, Data: f32s(1, 2, 3)}}, true, rows, notAge, 0},
		{"a nested field", []*tensor.Tensor{{Name: "y", DType: tensor.FP32, Shape: tensor.Shape{1, 1}, Data: f32s(1)}}, true, []Row{{"n": map[string]any{"x": 1}}}, all, 0},
		{"BYTES", []*tensor.Tensor{{Name: "s", DType: tensor.Bytes, Shape: tensor.Shape{1, 1}, Data: tensor.AppendBytesElement(nil, []byte("x"))}}, true, rows[:1], all, 0},
		{"rows the shape does not hold", []*tensor.Tensor{{Name: "y", DType: tensor.FP32, Shape: tensor.Shape{2, 1}, Data: f32s(1, 2)}}, true, rows, all, 0},
		{"data the shape does not hold", []*tensor.Tensor{{Name: "y", DType: tensor.FP32, Shape: tensor.Shape{3, 1}, Data: f32s(1, 2, 3, 4)}}, true, rows, all, 0},
		{"two outputs of one name", []*tensor.Tensor{
			{Name: "y", DType: tensor.FP32, Shape: tensor.Shape{3, 1}, Data: f32s(1, 2, 3)},
			{Name: "y", DType: tensor.FP32, Shape: tensor.Shape{3, 1}, Data: f32s(4, 5, 6)},
		}, true, rows, all, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := checkOutputRows(t, tc.outs, tc.rows, tc.keep, tc.batching); got != tc.fast {
				t.Errorf("OutputRows wrote %d rows itself, want %d", got, tc.fast)
			}
		})
	}
}

// FuzzOutputRowsMatchMarshalRow holds OutputRows to the general way on rows decoded
// from fuzzed JSON and outputs of fuzzed types, shapes and bytes.
func FuzzOutputRowsMatchMarshalRow(f *testing.F) {
	f.Add(`{"id":7,"x":1.5,"s":"a"}`, uint8(tensor.FP32), uint8(2), uint8(1), "score", f32s(0.5, 1e-7, 3, 4))
	f.Add(`{"score":1}`, uint8(tensor.Int16), uint8(1), uint8(3), "score", []byte{1, 2, 3, 4, 5, 6})
	f.Add(`{}`, uint8(tensor.FP16), uint8(3), uint8(0), "a<b", []byte{})
	f.Add(`{"id":[1, 2.5 ,-3e7],"x":[0]}`, uint8(tensor.FP32), uint8(1), uint8(2), "y", f32s(1, 2))
	f.Fuzz(func(t *testing.T, row string, dtype, n, inner uint8, name string, data []byte) {
		in, ok := flatRow([]byte(row))
		if !ok {
			return
		}
		dt := tensor.DType(dtype%uint8(tensor.Bytes-1)) + 1 // every type but BYTES
		rows := make([]Row, 1+n%4)
		for i := range rows {
			rows[i] = in
		}
		want := len(rows) * int(inner%5) * dt.Size()
		data = append(data, make([]byte, max(0, want-len(data)))...)[:want]
		out := &tensor.Tensor{Name: name, DType: dt, Shape: tensor.Shape{int64(len(rows)), int64(inner % 5)}, Data: data}
		checkOutputRows(t, []*tensor.Tensor{out}, rows, func(f string) bool { return f != "x" }, true)
	})
}

// BenchmarkOutputRows writes a tabular model's output rows (an id passed through, one
// FP32 score) both ways.
func BenchmarkOutputRows(b *testing.B) {
	const n = 256
	rows := make([]Row, n)
	for i := range rows {
		rows[i] = Row{"id": json.Number("12345"), "age": json.Number("3.5"), "income": json.Number("0.1")}
	}
	scores := make([]float32, n)
	for i := range scores {
		scores[i] = float32(i) / 7
	}
	outs := []*tensor.Tensor{{Name: "score", DType: tensor.FP32, Shape: tensor.Shape{n, 1}, Data: f32s(scores...)}}
	keep := func(f string) bool { return f == "id" }
	b.Run("general", func(b *testing.B) {
		for b.Loop() {
			generalRows(b, outs, rows, keep, true)
		}
	})
	b.Run("OutputRows", func(b *testing.B) {
		var buf []byte
		for b.Loop() {
			w, _ := NewOutputRows(outs, n, true)
			buf = buf[:0]
			for k, in := range rows {
				buf, _ = w.Append(buf, in, keep, k)
			}
		}
	})
}
