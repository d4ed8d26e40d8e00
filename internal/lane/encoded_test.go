package lane_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/ferryml/ferry/internal/lane"
	"github.com/ferryml/ferry/internal/tensor"
)

// TestAddEncodedMatchesAdd: rows given as encoded inputs (what AppendNumbers writes)
// make the request Add makes of the same rows; a count that does not fill the input
// fails as Add fails, with the error CountError gives; a full request is ErrFull.
func TestAddEncodedMatchesAdd(t *testing.T) {
	s, err := lane.Describe(context.Background(), testCore, "tabular", "", features)
	if err != nil {
		t.Fatal(err)
	}
	if s.Inputs[0].DType != tensor.FP32 {
		t.Fatalf("tabular's input is %s; this test encodes FP32", s.Inputs[0].DType)
	}
	byRow, byBytes := s.NewBuilder(), s.NewBuilder()
	for i := range 5 {
		r := tabularRow(i)
		if err := byRow.Add(r); err != nil {
			t.Fatal(err)
		}
		var vals []float64
		for _, f := range s.InputFields(0) {
			vals = append(vals, number(t, r[f]))
		}
		enc, err := lane.AppendNumbers(nil, tensor.FP32, vals)
		if err != nil {
			t.Fatal(err)
		}
		if err := byBytes.AddEncoded([][]byte{enc}); err != nil {
			t.Fatal(err)
		}
	}
	got, want := byBytes.Request("").Inputs[0], byRow.Request("").Inputs[0]
	if !bytes.Equal(got.Data, want.Data) || !got.Shape.Equal(want.Shape) {
		t.Fatalf("AddEncoded: %v %x\nAdd: %v %x", got.Shape, got.Data, want.Shape, want.Data)
	}

	short := []float32{1, 2, 3, 4, 5}
	addErr := s.NewBuilder().Add(lane.Row{"age": short[:1], "income": short[:1], "debt_ratio": short[:1], "tenure": short[:1], "late_payments": short[:1], "utilization": []float32{}})
	enc, _ := lane.AppendNumbers(nil, tensor.FP32, short)
	encErr := s.NewBuilder().AddEncoded([][]byte{enc})
	var re *lane.RowError
	if !errors.As(encErr, &re) || fmt.Sprint(encErr) != fmt.Sprint(s.CountError(0, 5)) {
		t.Fatalf("AddEncoded of 5 values = %v, want CountError's %v", encErr, s.CountError(0, 5))
	}
	if re.Reason != addErr.(*lane.RowError).Reason {
		t.Fatalf("AddEncoded of 5 values says %q, Add %q", re.Reason, addErr.(*lane.RowError).Reason)
	}
	if err := s.CountError(0, 6); err != nil {
		t.Fatalf("CountError(0, 6) = %v, want nil", err)
	}
	if err := s.NewBuilder().AddEncoded([][]byte{make([]byte, 6*4+1)}); !errors.As(err, &re) {
		t.Fatalf("AddEncoded of 25 bytes = %v, want a RowError", err)
	}

	b := s.NewBuilder()
	six, _ := lane.AppendNumbers(nil, tensor.FP32, []int64{1, 2, 3, 4, 5, 6})
	for range s.MaxBatch {
		if err := b.AddEncoded([][]byte{six}); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.AddEncoded([][]byte{six}); !errors.Is(err, lane.ErrFull) {
		t.Fatalf("row %d = %v, want ErrFull", s.MaxBatch+1, err)
	}
}

// TestAppendNumbersConvertsAsAdd: a value that does not fit the type fails naming it.
func TestAppendNumbersConvertsAsAdd(t *testing.T) {
	if _, err := lane.AppendNumbers(nil, tensor.Int32, []float64{1, 2.5}); err == nil || !contains(err.Error(), "2.5") {
		t.Fatalf("2.5 as INT32: %v", err)
	}
	if _, err := lane.AppendNumbers(nil, tensor.Int8, []int32{300}); err == nil || !contains(err.Error(), "300") {
		t.Fatalf("300 as INT8: %v", err)
	}
	got, err := lane.AppendNumbers(nil, tensor.FP64, []int32{-2})
	if err != nil || !bytes.Equal(got, []byte{0, 0, 0, 0, 0, 0, 0, 0xc0}) {
		t.Fatalf("-2 as FP64: %x %v", got, err)
	}
}

// number is a tabularRow value as a float64.
func number(t *testing.T, v any) float64 {
	t.Helper()
	switch x := v.(type) {
	case float64:
		return x
	case float32:
		return float64(x)
	case int:
		return float64(x)
	case int64:
		return float64(x)
	case interface{ Float64() (float64, error) }:
		f, err := x.Float64()
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	t.Fatalf("value %T", v)
	return 0
}

// TestAddEncodedKeepsConsecutiveRows: rows that lie one after another in one array
// become the request's data without a copy, its capacity cut to its length; a row from
// elsewhere makes the builder copy, and the caller's array is never written.
func TestAddEncodedKeepsConsecutiveRows(t *testing.T) {
	s, err := lane.Describe(context.Background(), testCore, "tabular", "", features)
	if err != nil {
		t.Fatal(err)
	}
	buf, _ := lane.AppendNumbers(nil, tensor.FP32, []int32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18})
	row := func(r int) [][]byte { return [][]byte{buf[r*24 : (r+1)*24]} }
	b := s.NewBuilder()
	for r := range 2 {
		if err := b.AddEncoded(row(r)); err != nil {
			t.Fatal(err)
		}
	}
	in := b.Request("").Inputs[0]
	if &in.Data[0] != &buf[0] || len(in.Data) != 48 || cap(in.Data) != 48 {
		t.Fatalf("two consecutive rows: data at %p len %d cap %d, want the caller's %p, 48, 48", &in.Data[0], len(in.Data), cap(in.Data), &buf[0])
	}
	before := bytes.Clone(buf)
	for _, r := range []int{0, 2, 1} { // row 2 does not follow row 0
		if err := b.AddEncoded(row(r)); err != nil {
			t.Fatal(err)
		}
	}
	in = b.Request("").Inputs[0]
	want := append(append(bytes.Clone(buf[0:24]), buf[48:72]...), buf[24:48]...)
	if !bytes.Equal(in.Data, want) || &in.Data[0] == &buf[0] || !bytes.Equal(buf, before) {
		t.Fatalf("rows 0, 2, 1: data %x (shared %v), want a copy %x; the caller's array changed: %v", in.Data, &in.Data[0] == &buf[0], want, !bytes.Equal(buf, before))
	}
}
