package lane

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
)

// slowRow is what DecodeMessage does for a row without the fast path.
func slowRow(body []byte) (Row, error) { return slowDecode[Row](string(body)) }

// slowDecode is encoding/json with UseNumber: one value of s and nothing after it.
func slowDecode[T any](s string) (T, error) {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v T
	if err := dec.Decode(&v); err != nil {
		return v, err
	}
	if dec.More() {
		return v, errMore
	}
	return v, nil
}

var errMore = bytes.ErrTooLarge // any error: the test only asks whether there was one

var flatRowCases = []struct {
	body string
	fast bool // flatRow takes it; else it leaves it to encoding/json
}{
	{`{"id":7,"age":4.5,"income":0.1,"late":1,"name":"ann","ok":true,"no":false,"x":null}`, true},
	{` { "a" : -0.5e+3 , "b":0 ,"c":1E9}  `, true},
	{"{\"\t\":1}", false}, // a control character in a key: encoding/json refuses it
	{`{}`, true},
	{` {} `, true},
	{`{"a":1,"a":2}`, true},     // the last wins, as in encoding/json
	{`{"é":"ü"}`, true},         // UTF-8
	{"{\"a\":\"\xff\"}", false}, // invalid UTF-8: encoding/json replaces it
	{`{"a":"x\"y"}`, false},     // an escape
	{`{"a":[1,2]}`, true},       // a list of numbers
	{`{"a":[ -1.5e3 ,0, 2 ],"b":"x"}`, true},
	{`{"a":[]}`, false},      // empty: left to encoding/json
	{`{"a":[1,[2]]}`, false}, // nested
	{`{"a":[1,"x"]}`, false}, // not all numbers
	{`{"a":[1,]}`, false},    // a trailing comma
	{`{"a":[1 2]}`, false},   // no comma
	{`{"a":[01]}`, false},    // not a JSON number
	{`{"a":[1}`, false},      // unclosed
	{`{"a":[1,2`, false},     // unclosed
	{`{"a":[true]}`, false},  // not a number
	{`{"a":{"b":1}}`, false}, // nested
	{`{"inputs":[{"name":"x"}]}`, false},
	{`{"a":01}`, false},
	{`{"a":1.}`, false},
	{`{"a":.5}`, false},
	{`{"a":1e}`, false},
	{`{"a":-}`, false},
	{`{"a":tru}`, false},
	{`{"a":truex}`, false},
	{`{"a":1,}`, false},
	{`{"a" 1}`, false},
	{`{"a":1}{"b":2}`, false},
	{`{"a":1} x`, false},
	{`null`, false},
	{`[1]`, false},
	{``, false},
	{`{"a":1`, false},
	{`{"a`, false},
}

func TestFlatRowMatchesEncodingJSON(t *testing.T) {
	for _, tc := range flatRowCases {
		row, ok := flatRow([]byte(tc.body))
		if ok != tc.fast {
			t.Errorf("flatRow(%q) ok = %v, want %v", tc.body, ok, tc.fast)
		}
		if ok {
			checkSame(t, []byte(tc.body), row)
		}
	}
}

func checkSame(t *testing.T, body []byte, fast Row) {
	t.Helper()
	slow, err := slowRow(body)
	if err != nil {
		t.Fatalf("flatRow took %q, which encoding/json refuses: %v", body, err)
	}
	if !reflect.DeepEqual(fast, slow) {
		t.Fatalf("flatRow(%q) = %#v, encoding/json %#v", body, fast, slow)
	}
}

// FuzzFlatRow: whatever the fast path takes, encoding/json decodes to the same row.
func FuzzFlatRow(f *testing.F) {
	for _, tc := range flatRowCases {
		f.Add([]byte(tc.body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if row, ok := flatRow(body); ok {
			checkSame(t, body, row)
		}
	})
}

// BenchmarkDecodeRow is a Kafka benchmark row decoded by DecodeMessage's fast path
// and by encoding/json, in one run:
//
//	go test -run=NONE -bench=DecodeRow ./internal/lane/
func BenchmarkDecodeRow(b *testing.B) {
	body := []byte(`{"id":12345,"age":4.5,"income":0.1,"debt_ratio":0.2,"tenure":0.3,"late_payments":1,"utilization":0.5}`)
	var slow float64
	b.Run("encoding_json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := slowRow(body); err != nil {
				b.Fatal(err)
			}
		}
		slow = float64(b.Elapsed()) / float64(b.N)
	})
	b.Run("flatRow", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := flatRow(body); !ok {
				b.Fatal("not taken")
			}
		}
		if slow > 0 {
			b.ReportMetric(slow/(float64(b.Elapsed())/float64(b.N)), "x_encoding_json")
		}
	})
}

var marshalRowCases = []map[string]any{
	{"id": json.Number("12345"), "score": float32(0.25), "p": []float32{0.1, 0.9, 1e-7, 3e21}, "label": "yes"},
	{"a": float64(1e-7), "b": 1e21, "c": -0.0, "d": 123456789.0, "e": float64(1) / 3},
	{"n": nil, "t": true, "f": []bool{true, false}, "i": int64(-5), "u": uint64(1 << 63), "s": []string{"x", "y"}},
	{"html": "<b>&"},              // escaped by encoding/json: left to it
	{"nan": math.NaN()},           // an error from encoding/json
	{"bad": json.Number("1.2.3")}, // an error from encoding/json
	{"empty": json.Number("")},
	{"e": []int64{}, "nilslice": []float64(nil)},
	{"v": []any{json.Number("1"), json.Number("-2.5e3")}, "w": []any{}, "x": []any(nil), "y": []any{"a", nil, []any{true}}},
	{"v": []any{json.Number("1"), map[string]any{"a": 1}}}, // left to encoding/json
	{"ü": 1.5},
	{},
}

func TestMarshalRowMatchesEncodingJSON(t *testing.T) {
	for _, row := range marshalRowCases {
		checkMarshal(t, row)
	}
}

func checkMarshal(t *testing.T, row map[string]any) {
	t.Helper()
	got, gerr := MarshalRow(row)
	want, werr := json.Marshal(row)
	if (gerr != nil) != (werr != nil) || !bytes.Equal(got, want) {
		t.Fatalf("MarshalRow(%#v) = %s, %v; encoding/json %s, %v", row, got, gerr, want, werr)
	}
}

// FuzzMarshalRow: rows of the types the lanes write encode as encoding/json encodes them.
func FuzzMarshalRow(f *testing.F) {
	f.Add("id", "7", float32(0.5), 1e-9, int64(3), "x")
	f.Fuzz(func(t *testing.T, key, num string, f32 float32, f64 float64, n int64, s string) {
		checkMarshal(t, map[string]any{key: json.Number(num), key + "f": f32, key + "d": f64, key + "n": n,
			key + "s": s, key + "v": []float32{f32, float32(f64)}, key + "w": []float64{f64, float64(f32)},
			key + "l": []any{json.Number(num), s, f64}})
	})
}

var numberListCases = []struct {
	s  string
	ok bool
}{
	{`[1,2.5,-3e2]`, true}, {` [ 0.1 , 0.2 ] `, true}, {`[-0]`, true}, {`[1E+2,1e-2]`, true},
	{`[]`, false}, {`[[1]]`, false}, {`[1,"a"]`, false}, {`[01]`, false}, {`[1,]`, false},
	{`[1] x`, false}, {`[1`, false}, {`1`, false}, {``, false}, {`[1,2] [3]`, false}, {`[.5]`, false}, {`[+1]`, false},
	{`[true]`, false}, {`[null]`, false}, {"[1,\t2\n]", true},
}

// TestDecodeNumberList: every list it takes decodes as encoding/json decodes it; what
// it refuses is left to encoding/json.
func TestDecodeNumberList(t *testing.T) {
	for _, c := range numberListCases {
		v, ok := DecodeNumberList(c.s)
		if ok != c.ok {
			t.Fatalf("DecodeNumberList(%q) ok %v, want %v", c.s, ok, c.ok)
		}
		if ok {
			checkSameList(t, c.s, v)
		}
	}
}

func checkSameList(t *testing.T, s string, fast []any) {
	t.Helper()
	slow, err := slowDecode[any](s)
	if err != nil {
		t.Fatalf("DecodeNumberList took %q, which encoding/json refuses: %v", s, err)
	}
	if !reflect.DeepEqual(any(fast), slow) {
		t.Fatalf("DecodeNumberList(%q) = %#v, encoding/json %#v", s, fast, slow)
	}
}

// FuzzDecodeNumberList: whatever DecodeNumberList takes, encoding/json decodes the same.
func FuzzDecodeNumberList(f *testing.F) {
	for _, c := range numberListCases {
		f.Add(c.s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if v, ok := DecodeNumberList(s); ok {
			checkSameList(t, s, v)
		}
	})
}
