package lane

import (
	"errors"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/tensor"
)

// flatSchema has the input kinds AddFlat takes and one it leaves to Add: features
// from three fields (one of them also an input of its own), a count, a half-precision
// input of variable length, and, when withBytes, a BYTES input.
func flatSchema(withBytes bool) *Schema {
	s := &Schema{Model: "m", MaxBatch: 3, Batching: true,
		Inputs: []Column{
			{Name: "features", DType: tensor.FP32, Shape: tensor.Shape{3}},
			{Name: "n", DType: tensor.Int16, Shape: tensor.Shape{1}},
			{Name: "h", DType: tensor.FP16, Shape: tensor.Shape{-1}},
		},
		sources: [][]string{{"a", "b", "n"}, {"n"}, {"h"}}}
	if withBytes {
		s.Inputs = append(s.Inputs, Column{Name: "s", DType: tensor.Bytes, Shape: tensor.Shape{1}})
		s.sources = append(s.sources, []string{"s"})
	}
	return s
}

// passID passes the id through, and n, which the model reads too.
var passID = map[string]bool{"id": true, "n": true}

// checkAddFlat adds bodies to one builder as the streaming Processor does (AddFlat, and
// the general way for what it leaves) and to another the general way only (flatRow,
// then Add), flushing each when full, and wants the same requests, and from AddFlat the
// row's kept fields. It returns how many bodies AddFlat took.
func checkAddFlat(t testing.TB, s *Schema, bodies []string, pass map[string]bool) int {
	t.Helper()
	keep := func(f string) bool { return pass[f] || pass == nil && !slices.Contains(s.Fields(), f) }
	direct, general := s.NewBuilder(), s.NewBuilder()
	var want, got []string
	var all []Field
	took := 0
	for _, body := range bodies {
		start := len(all)
		var ok bool
		var err error
		all, ok, err = direct.AddFlat([]byte(body), pass, all)
		if ok && errors.Is(err, ErrFull) {
			got = append(got, requestString(direct))
			all, ok, err = direct.AddFlat([]byte(body), pass, all)
		}
		kept := all[start:]
		row, rowOK := flatRow([]byte(body))
		var gerr error
		if rowOK {
			if gerr = general.Add(row); errors.Is(gerr, ErrFull) {
				want = append(want, requestString(general))
				gerr = general.Add(row)
			}
		}
		if !ok { // the caller takes the general way, into the same request
			if rowOK {
				if err := direct.Add(row); errors.Is(err, ErrFull) {
					got = append(got, requestString(direct))
					direct.Add(row) //nolint:errcheck // as general's
				}
			}
			continue
		}
		took++
		switch {
		case !rowOK:
			t.Fatalf("%s: AddFlat took a body flatRow refuses", body)
		case err != nil || gerr != nil:
			t.Fatalf("%s: AddFlat error %v, Add error %v", body, err, gerr)
		}
		wantKept := Row{}
		maps.Copy(wantKept, row)
		maps.DeleteFunc(wantKept, func(f string, _ any) bool { return !keep(f) })
		if !reflect.DeepEqual(FieldsRow(kept), wantKept) {
			t.Fatalf("%s: AddFlat kept %v, want %v", body, kept, wantKept)
		}
	}
	got, want = append(got, requestString(direct)), append(want, requestString(general))
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("requests:\nAddFlat %q\nAdd     %q", got, want)
	}
	return took
}

// requestString is the builder's request, inputs as shape and bytes, and restarts it.
func requestString(b *Builder) string {
	if b.Len() == 0 {
		return ""
	}
	var sb strings.Builder
	for _, in := range b.Request("").Inputs {
		sb.WriteString(in.Name + in.Shape.String() + ":" + string(in.Data) + ";")
	}
	return sb.String()
}

func TestAddFlatMatchesAdd(t *testing.T) {
	for _, tc := range []struct {
		name      string
		withBytes bool
		bodies    []string
		took      int
	}{
		{"rows", false, []string{
			`{"id":1,"a":0.5,"b":-2,"n":3,"h":1.5}`,
			`{"h":1e-3, "n":7 ,"b":1E+2,"a":0,"id":"x-2","other":true}`,
			` {"a":1,"b":2,"n":-32768,"h":65504} `,
			`{"a":1,"b":2,"n":1,"h":0.1,"id":null}`, // a fourth row: the first request is full
		}, 4},
		{"a duplicate field: the last counts", false, []string{`{"a":1,"a":2,"b":3,"n":4,"h":5,"id":1,"id":2}`}, 1},
		{"lists of numbers", false, []string{
			`{"a":[1],"b":2,"n":3,"h":[1.5, 2,-0.25],"id":[7,8]}`, // one element from a list; h of three; a list passed through
			`{"a":[1,2],"n":3,"h":[0,0,1]}`,                       // a list fills two of features' places, and b is missing: Add refuses it
			`{"a":[1],"b":[2],"n":3,"h":[4,5,6]}`,
			`{"a":1,"b":2,"n":3,"h":[1,2]}`, // h of two: another request
		}, 3},
		{"left to Add", false, []string{
			`{"a":1,"b":2,"n":3}`,                // h missing
			`{"a":1,"b":2,"n":3,"h":null}`,       // h null
			`{"a":"1","b":2,"n":3,"h":1}`,        // a string
			`{"a":true,"b":2,"n":3,"h":1}`,       // a boolean
			`{"a":1,"b":2,"n":1.5,"h":1}`,        // no INT16
			`{"a":1,"b":2,"n":40000,"h":1}`,      // out of INT16's range
			`{"a":[[1]],"b":2,"n":3,"h":1}`,      // not flat
			`{"a":[],"b":2,"n":3,"h":1}`,         // an empty list
			`{"a":[1,2],"b":2,"n":3,"h":1}`,      // four elements for features' three
			`{"a":1,"b":2,"n":[3,1e9],"h":1}`,    // out of INT16's range, in a list
			`{"a":1,"b":2,"n":3,"h":1} x`,        // trailing text
			`{"a":1,"b":2,"n":3,"h":1,"e":"\n"}`, // an escape
		}, 0},
		{"a BYTES input is left to Add", true, []string{`{"a":1,"b":2,"n":3,"h":1,"s":"x"}`}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, pass := range []map[string]bool{passID, nil} {
				if took := checkAddFlat(t, flatSchema(tc.withBytes), tc.bodies, pass); took != tc.took {
					t.Errorf("pass %v: AddFlat took %d bodies, want %d", pass, took, tc.took)
				}
			}
		})
	}
}

// FuzzAddFlatMatchesAdd holds AddFlat to flatRow and Add on fuzzed rows, three at a
// time into one request.
func FuzzAddFlatMatchesAdd(f *testing.F) {
	f.Add(`{"id":1,"a":0.5,"b":-2,"n":3,"h":1.5}`, `{"a":1,"b":2,"n":3}`, `{"a":1e400,"b":-0,"n":-1,"h":[1]}`)
	f.Fuzz(func(t *testing.T, a, b, c string) {
		checkAddFlat(t, flatSchema(false), []string{a, b, c, a}, passID)
		checkAddFlat(t, flatSchema(false), []string{a, b, c, a}, nil)
	})
}

// BenchmarkAddFlat adds the Kafka benchmark's rows both ways: a tabular row (six
// fields) and an mlp row (a list of 256 numbers in one field), the general way being
// the one the streaming Processor took before (flatRow, or for a list
// DecodeMessage's encoding/json, then Add).
//
//	go test -run=NONE -bench=AddFlat ./internal/lane/
func BenchmarkAddFlat(b *testing.B) {
	tabular := &Schema{Model: "tabular", MaxBatch: 256, Batching: true,
		Inputs:  []Column{{Name: "features", DType: tensor.FP32, Shape: tensor.Shape{6}}},
		sources: [][]string{{"age", "income", "debt_ratio", "tenure", "late_payments", "utilization"}}}
	vector := &Schema{Model: "mlp", MaxBatch: 64, Batching: true,
		Inputs:  []Column{{Name: "input", DType: tensor.FP32, Shape: tensor.Shape{256}}},
		sources: [][]string{{"input"}}}
	list := []byte(`{"id":12345,"input":[`)
	for j := range 256 {
		if j > 0 {
			list = append(list, ',')
		}
		list = strconv.AppendFloat(list, float64((12345*7+j*13)%1000)/1000, 'g', -1, 64)
	}
	list = append(list, "]}"...)
	pass := map[string]bool{"id": true}
	for _, c := range []struct {
		name string
		s    *Schema
		body []byte
	}{
		{"tabular", tabular, []byte(`{"id":12345,"age":4.5,"income":0.1,"debt_ratio":0.2,"tenure":0.3,"late_payments":1,"utilization":0.5}`)},
		{"vector", vector, list},
	} {
		run := func(b *testing.B, add func(*Builder) error) {
			b.ReportAllocs()
			bl := c.s.NewBuilder()
			for b.Loop() {
				if err := add(bl); errors.Is(err, ErrFull) {
					bl.Request("")
					err = add(bl)
				} else if err != nil {
					b.Fatal(err)
				}
			}
		}
		b.Run(c.name+"/general+Add", func(b *testing.B) {
			run(b, func(bl *Builder) error {
				if c.name == "tabular" {
					row, _ := flatRow(c.body)
					return bl.Add(row)
				}
				_, row, err := DecodeMessage(c.body, core.Limits{})
				if err != nil {
					b.Fatal(err)
				}
				return bl.Add(row)
			})
		})
		b.Run(c.name+"/AddFlat", func(b *testing.B) {
			var kept []Field
			run(b, func(bl *Builder) error {
				var ok bool
				var err error
				if kept, ok, err = bl.AddFlat(c.body, pass, kept[:0]); !ok {
					b.Fatal("AddFlat did not take the row")
				}
				return err
			})
		})
	}
}
