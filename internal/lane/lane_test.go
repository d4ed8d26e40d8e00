package lane_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/lane"
	"github.com/ferryml/ferry/internal/lane/lanetest"
)

var testCore *lanetest.Core

func TestMain(m *testing.M) {
	root, err := testRepository()
	if err == nil {
		testCore, err = lanetest.Open(root)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "lane tests need the example models and ONNX Runtime:", err)
		os.Exit(1)
	}
	code := m.Run()
	testCore.Close()
	os.RemoveAll(root)
	os.Exit(code)
}

// testRepository is tabular from the examples and "single", the example mlp declared
// without batching (max_batch_size 0): each request is one [1, 256] row.
func testRepository() (string, error) {
	examples, err := lanetest.ExampleModels()
	if err != nil {
		return "", err
	}
	root, err := os.MkdirTemp("", "lane-test")
	if err != nil {
		return "", err
	}
	for _, m := range []string{"tabular", "mlp"} {
		name := map[string]string{"tabular": "tabular", "mlp": "single"}[m]
		if err := os.MkdirAll(filepath.Join(root, name, "1"), 0o755); err != nil {
			return "", err
		}
		onnx, err := os.ReadFile(filepath.Join(examples, m, "1", "model.onnx"))
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(root, name, "1", "model.onnx"), onnx, 0o644); err != nil {
			return "", err
		}
	}
	tabular, err := os.ReadFile(filepath.Join(examples, "tabular", "config.pbtxt"))
	if err != nil {
		return "", err
	}
	single := `name: "single"
platform: "onnxruntime_onnx"
max_batch_size: 0
input [ { name: "input" data_type: TYPE_FP32 dims: [ 1, 256 ] } ]
output [ { name: "output" data_type: TYPE_FP32 dims: [ 1, 10 ] } ]
`
	if err := os.WriteFile(filepath.Join(root, "tabular", "config.pbtxt"), tabular, 0o644); err != nil {
		return "", err
	}
	return root, os.WriteFile(filepath.Join(root, "single", "config.pbtxt"), []byte(single), 0o644)
}

var features = lane.Mapping{"features": {"age", "income", "debt_ratio", "tenure", "late_payments", "utilization"}}

func tabularRow(i int) lane.Row {
	f := float64(i%13) / 7
	return lane.Row{"id": i, "age": f, "income": json.Number("0.5"), "debt_ratio": float32(-f), "tenure": 1, "late_payments": int64(i % 3), "utilization": 0.25}
}

// TestRowsScoreAsOnlineRequests: rows gathered into one request score exactly as each
// row sent alone, the way online clients send them.
func TestRowsScoreAsOnlineRequests(t *testing.T) {
	ctx := context.Background()
	s, err := lane.Describe(ctx, testCore, "tabular", "", features)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CheckFields([]string{"id", "age", "income", "debt_ratio", "tenure", "late_payments", "utilization"}); err != nil {
		t.Fatal(err)
	}
	b := s.NewBuilder()
	const n = 10
	for i := range n {
		if err := b.Add(tabularRow(i)); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := testCore.Infer(ctx, b.Request("batch"))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := s.Split(resp, n)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		one := s.NewBuilder()
		if err := one.Add(tabularRow(i)); err != nil {
			t.Fatal(err)
		}
		alone, err := testCore.Infer(ctx, one.Request(""))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := lane.Value(rows[i][0])
		want, _ := lane.Value(alone.Outputs[0])
		if got != want {
			t.Errorf("row %d: batched %v, alone %v", i, got, want)
		}
		if _, ok := got.(float32); !ok {
			t.Errorf("row %d: score %T, want a float32 scalar", i, got)
		}
	}
}

func TestCheckFieldsNamesTheMissingColumn(t *testing.T) {
	s, err := lane.Describe(context.Background(), testCore, "tabular", "", features)
	if err != nil {
		t.Fatal(err)
	}
	err = s.CheckFields([]string{"age", "income", "debt_ratio", "tenure", "utilization"})
	if err == nil || !contains(err.Error(), `"late_payments" (for input "features")`) {
		t.Fatalf("CheckFields = %v, want it to name late_payments", err)
	}
	if _, err := lane.Describe(context.Background(), testCore, "tabular", "", lane.Mapping{"feature": {"age"}}); err == nil || !contains(err.Error(), `input "feature"`) {
		t.Fatalf("Describe with a wrong input = %v", err)
	}
}

func TestBadRowsLeaveTheRequestWhole(t *testing.T) {
	s, err := lane.Describe(context.Background(), testCore, "tabular", "", features)
	if err != nil {
		t.Fatal(err)
	}
	b := s.NewBuilder()
	if err := b.Add(tabularRow(1)); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []struct {
		row   lane.Row
		field string
	}{
		{lane.Row{"age": 1.0}, "income"},
		{func() lane.Row { r := tabularRow(2); r["tenure"] = "long"; return r }(), "tenure"},
		{func() lane.Row { r := tabularRow(2); r["age"] = []any{1.0, 2.0}; return r }(), "age"},
		{func() lane.Row { r := tabularRow(2); r["utilization"] = nil; return r }(), "utilization"},
	} {
		err := b.Add(bad.row)
		var re *lane.RowError
		if !errors.As(err, &re) {
			t.Errorf("Add(%v) = %v, want a RowError", bad.row, err)
			continue
		}
		if bad.field != "age" && re.Field != bad.field {
			t.Errorf("Add(%v) blames %q, want %q (%v)", bad.row, re.Field, bad.field, err)
		}
	}
	if b.Len() != 1 {
		t.Fatalf("after bad rows the builder holds %d rows, want 1", b.Len())
	}
	if _, err := testCore.Infer(context.Background(), b.Request("")); err != nil {
		t.Fatalf("the good row no longer scores: %v", err)
	}
}

// TestNonBatchingModelTakesOneRowPerRequest: a model without max_batch_size gets one
// row per request, its whole shape from the row.
func TestNonBatchingModelTakesOneRowPerRequest(t *testing.T) {
	ctx := context.Background()
	s, err := lane.Describe(ctx, testCore, "single", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.Batching || s.MaxBatch != 1 {
		t.Fatalf("single: batching %v, max %d", s.Batching, s.MaxBatch)
	}
	in := s.Inputs[0]
	n, _ := in.Shape.NumElements()
	vals := make([]float32, n)
	b := s.NewBuilder()
	if err := b.Add(lane.Row{in.Name: vals}); err != nil {
		t.Fatal(err)
	}
	if err := b.Add(lane.Row{in.Name: vals}); !errors.Is(err, lane.ErrFull) {
		t.Fatalf("second row = %v, want ErrFull", err)
	}
	resp, err := testCore.Infer(ctx, b.Request(""))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Split(resp, 1); err != nil {
		t.Fatal(err)
	}
}

func TestDecodeMessage(t *testing.T) {
	req, row, err := lane.DecodeMessage([]byte(`{"id":"a","inputs":[{"name":"INPUT0","datatype":"FP32","shape":[1,2],"data":[1,2]}]}`), core.DefaultLimits())
	if err != nil || req == nil || row != nil || req.ID != "a" || len(req.Inputs) != 1 {
		t.Fatalf("V2 message: req %+v row %v err %v", req, row, err)
	}
	req, row, err = lane.DecodeMessage([]byte(`{"age": 1.5, "name": "x"}`), core.DefaultLimits())
	if err != nil || req != nil || row["age"] != json.Number("1.5") || row["name"] != "x" {
		t.Fatalf("row message: req %v row %v err %v", req, row, err)
	}
	for _, bad := range []string{``, `null`, `[1]`, `{"a":1} {"b":2}`, `{"inputs":[{"name":"x"}]}`, `{`} {
		if _, _, err := lane.DecodeMessage([]byte(bad), core.DefaultLimits()); err == nil {
			t.Errorf("DecodeMessage(%q) accepted", bad)
		}
	}
}

func FuzzDecodeMessage(f *testing.F) {
	f.Add([]byte(`{"inputs":[{"name":"INPUT0","datatype":"FP32","shape":[1],"data":[1]}]}`))
	f.Add([]byte(`{"age": 1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		req, row, err := lane.DecodeMessage(b, core.DefaultLimits())
		if err == nil && (req == nil) == (row == nil) {
			t.Fatalf("DecodeMessage(%q): want exactly one of a request and a row", b)
		}
	})
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
