package bench

import (
	"bytes"
	"strings"
	"testing"

	"github.com/ferryml/ferry/internal/tensor"
	"github.com/ferryml/ferry/internal/v2client"
	"github.com/ferryml/ferry/internal/v2json"
)

var batchingModel = Model{Name: "m", MaxBatchSize: 8, Inputs: []Input{
	{Name: "A", DType: tensor.FP32, Shape: tensor.Shape{-1, 3, -1}},
	{Name: "B", DType: tensor.Int64, Shape: tensor.Shape{-1, 2}},
}}

func TestSamplesShapes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		m      Model
		batch  int
		shapes map[string]tensor.Shape
		want   []tensor.Shape
	}{
		{"variable dims default to 1 under the batch dim", batchingModel, 4, nil,
			[]tensor.Shape{{4, 3, 1}, {4, 2}}},
		{"--shape sets the variable dims without the batch dim", batchingModel, 2,
			map[string]tensor.Shape{"A": {3, 5}}, []tensor.Shape{{2, 3, 5}, {2, 2}}},
		{"a model without batching keeps its rank", Model{Name: "n", Inputs: []Input{{Name: "x", DType: tensor.Uint8, Shape: tensor.Shape{-1, 4}}}},
			1, map[string]tensor.Shape{"x": {7, 4}}, []tensor.Shape{{7, 4}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Samples(tc.m, tc.batch, tc.shapes, Data{})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 {
				t.Fatalf("generated data gave %d samples, want 1", len(got))
			}
			for i, ts := range got[0] {
				if !ts.Shape.Equal(tc.want[i]) {
					t.Errorf("input %s shape = %v, want %v", ts.Name, ts.Shape, tc.want[i])
				}
				if err := ts.Validate(); err != nil {
					t.Errorf("input %s: %v", ts.Name, err)
				}
			}
		})
	}
}

func TestSamplesRejects(t *testing.T) {
	noBatch := Model{Name: "n", Inputs: []Input{{Name: "x", DType: tensor.FP32, Shape: tensor.Shape{4}}}}
	for _, tc := range []struct {
		name    string
		m       Model
		batch   int
		shapes  map[string]tensor.Shape
		data    Data
		wantErr string
	}{
		{"batch above max_batch_size", batchingModel, 9, nil, Data{}, `batch size 9: model "m" takes at most 8 (max_batch_size)`},
		{"batch on a model that does not batch", noBatch, 2, nil, Data{}, `batch size 2: model "n" does not batch (max_batch_size 0)`},
		{"zero batch", batchingModel, 0, nil, Data{}, `batch size 0: must be at least 1`},
		{"shape of an unknown input", batchingModel, 1, map[string]tensor.Shape{"C": {1}}, Data{}, `--shape C: model "m" has no input "C"`},
		{"shape of another rank", batchingModel, 1, map[string]tensor.Shape{"A": {3}}, Data{}, `input "A": shape [3] does not fit the model's [3,-1]`},
		{"shape changing a fixed dim", batchingModel, 1, map[string]tensor.Shape{"A": {4, 4}}, Data{}, `input "A": shape [4,4] does not fit the model's [3,-1]`},
		{"unknown data mode", batchingModel, 1, nil, Data{Mode: "ones"}, `input data "ones": want random, zero or a JSON file`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Samples(tc.m, tc.batch, tc.shapes, tc.data)
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("Samples err = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestSamplesEveryDatatype(t *testing.T) {
	for dt := tensor.Bool; dt <= tensor.Bytes; dt++ {
		m := Model{Name: "m", MaxBatchSize: 4, Inputs: []Input{{Name: "x", DType: dt, Shape: tensor.Shape{-1, 5}}}}
		for _, mode := range []string{DataRandom, DataZero} {
			s, err := Samples(m, 3, nil, Data{Mode: mode, Seed: 9})
			if err != nil {
				t.Fatalf("%s %s: %v", dt, mode, err)
			}
			x := s[0][0]
			if err := x.Validate(); err != nil {
				t.Errorf("%s %s: %v", dt, mode, err)
			}
			if _, err := v2client.EncodeREST(&v2client.Request{Inputs: s[0]}); err != nil {
				t.Errorf("%s %s: JSON encoding: %v", dt, mode, err)
			}
			zero := !bytes.ContainsFunc(x.Data, func(r rune) bool { return r != 0 })
			if mode == DataZero && dt != tensor.Bytes && !zero {
				t.Errorf("%s zero data has a nonzero byte", dt)
			}
			if mode == DataRandom && zero {
				t.Errorf("%s random data is all zeros", dt)
			}
		}
	}
}

func TestSamplesRandomIsSeeded(t *testing.T) {
	a, _ := Samples(batchingModel, 2, nil, Data{Seed: 5})
	b, _ := Samples(batchingModel, 2, nil, Data{Seed: 5})
	c, _ := Samples(batchingModel, 2, nil, Data{Seed: 6})
	if !bytes.Equal(a[0][0].Data, b[0][0].Data) || bytes.Equal(a[0][0].Data, c[0][0].Data) {
		t.Error("random data does not follow its seed")
	}
}

const dataFile = `{"data": [
  {"A": [[1, 2], [3, 4], [5, 6]], "B": [7, 8]},
  {"A": {"content": [1, 2, 3], "shape": [3, 1]}, "B": [9, 10]},
  {"A": [0.5, 0.25, 1, 2, 3, 4], "B": [11, -12]}
]}`

func TestSamplesFromFile(t *testing.T) {
	entries, err := ReadDataFile(strings.NewReader(dataFile))
	if err != nil {
		t.Fatal(err)
	}
	// Batch 1: each entry is one request; A takes its shape from the entry or --shape.
	got, err := Samples(batchingModel, 1, map[string]tensor.Shape{"A": {3, 2}}, Data{Mode: DataFile, Entries: entries})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("%d samples, want one per entry (3)", len(got))
	}
	for i, want := range []tensor.Shape{{1, 3, 2}, {1, 3, 1}, {1, 3, 2}} {
		if !got[i][0].Shape.Equal(want) {
			t.Errorf("sample %d: A shape %v, want %v", i, got[i][0].Shape, want)
		}
	}
	if j, _ := v2json.AppendData(nil, got[2][1]); string(j) != "[11,-12]" {
		t.Errorf("sample 2: B = %s, want [11,-12]", j)
	}
	// Batch 2: request i takes entries i and i+1, wrapping; entries 2 and 0 share a shape.
	only := []Entry{entries[2], entries[0]}
	got, err = Samples(batchingModel, 2, map[string]tensor.Shape{"A": {3, 2}}, Data{Mode: DataFile, Entries: only})
	if err != nil {
		t.Fatal(err)
	}
	if j, _ := v2json.AppendData(nil, got[1][1]); string(j) != "[7,8,11,-12]" {
		t.Errorf("batch of entries 1 and 0: B = %s, want [7,8,11,-12]", j)
	}
}

func TestDataFileRejects(t *testing.T) {
	for _, tc := range []struct{ name, file, wantErr string }{
		{"unknown field", `{"data": [], "extra": 1}`, `input data file: json: unknown field "extra"`},
		{"no entries", `{"data": []}`, `input data file: "data" holds no entries`},
		{"object without content", `{"data": [{"A": {"shape": [1]}}]}`, `input data file: data[0].A: want "content"`},
		{"null value", `{"data": [{"A": [1, null]}]}`, `input data file: data[0].A: unexpected value <nil> (want numbers, booleans or strings)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadDataFile(strings.NewReader(tc.file))
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("ReadDataFile err = %v, want %q", err, tc.wantErr)
			}
		})
	}
	for _, tc := range []struct{ name, file, wantErr string }{
		{"too few values", `{"data": [{"A": [1, 2], "B": [1, 2]}]}`, `input data: data[0].A: shape [3,1] needs 3 values, got 2`},
		{"missing input", `{"data": [{"A": [1, 2, 3]}]}`, `input data: data[0] has no input "B"`},
		{"string for a number", `{"data": [{"A": [1, 2, 3], "B": ["x", 2]}]}`, `input data: data[0].B[0]: string "x" for a INT64 value`},
		{"integer out of range", `{"data": [{"A": [1, 2, 3], "B": [1, 1e3]}]}`, `input data: data[0].B[1]: 1e3 for a INT64 value: strconv.ParseInt: parsing "1e3": invalid syntax`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			entries, err := ReadDataFile(strings.NewReader(tc.file))
			if err != nil {
				t.Fatal(err)
			}
			_, err = Samples(batchingModel, 1, nil, Data{Mode: DataFile, Entries: entries})
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("Samples err = %v, want %q", err, tc.wantErr)
			}
		})
	}
}
