package lane

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// flatRow decodes the common message, a flat JSON object of numbers, plain strings,
// booleans, nulls and lists of numbers (a feature vector), exactly as encoding/json with
// UseNumber decodes it into a Row, at a fraction of the cost: the streaming lanes
// decode every message, and encoding/json was most of a Kafka lane's CPU. The body is
// copied once into a string whose pieces become the keys and the numbers. ok is false
// for anything else (other nested values, an empty list, escapes, invalid UTF-8,
// syntax errors, text after the object): the caller decodes those with encoding/json,
// which also words the errors.
func flatRow(body []byte) (row Row, ok bool) {
	row = Row{}
	ok = eachFlatField(string(body), func(key string, v span) { row[key] = v.value() })
	if !ok {
		return nil, false
	}
	return row, true
}

// DecodeFlatRow is flatRow for readers whose every line is a row (a batch job's JSON
// lines): the Row encoding/json with UseNumber decodes from body, or ok false for a
// body the caller decodes with encoding/json, which also words its errors.
func DecodeFlatRow(body []byte) (row Row, ok bool) { return flatRow(body) }

// DecodeNumberList is encoding/json's decoding (with UseNumber) of s when s is a
// non-empty, unnested list of numbers and nothing else, spaces aside: the []any of
// json.Number that a CSV cell holding a feature vector ("[0.1, 0.2]", as pandas writes a
// list) becomes. ok is false for anything else, which the caller decodes with
// encoding/json.
func DecodeNumberList(s string) ([]any, bool) {
	v, ok := numericSpan(strings.Trim(s, " \t\n\r")) // JSON's whitespace
	if !ok || v.kind != '[' {
		return nil, false
	}
	return v.value().([]any), true
}

// span is one value of a flat row as written: kind is '"' (a plain string, raw holding
// its contents), '0' (a number), '[' (a non-empty list of numbers, raw holding it,
// brackets and all; eachNumber reads it), 't', 'f' or 'n' (true, false, null).
type span struct {
	kind byte
	raw  string
}

// value is the span as encoding/json with UseNumber decodes it.
func (v span) value() any {
	switch v.kind {
	case '"':
		return v.raw
	case '0':
		return json.Number(v.raw)
	case '[':
		var xs []any
		eachNumber(v.raw, func(n string) bool { xs = append(xs, json.Number(n)); return true })
		return xs
	case 't':
		return true
	case 'f':
		return false
	}
	return nil
}

// eachFlatField calls each with every field of s, a flat JSON object (flatRow's), in
// order, duplicates included; false when s is not one (each may have been called).
// Keys and raw values are pieces of s.
func eachFlatField(s string, each func(key string, v span)) bool {
	i := skipSpace(s, 0)
	if i >= len(s) || s[i] != '{' {
		return false
	}
	i = skipSpace(s, i+1)
	if i < len(s) && s[i] == '}' {
		return skipSpace(s, i+1) == len(s)
	}
	for {
		key, j, ok := plainString(s, i)
		if !ok {
			return false
		}
		i = skipSpace(s, j)
		if i >= len(s) || s[i] != ':' {
			return false
		}
		var v span
		if v, i, ok = scalar(s, skipSpace(s, i+1)); !ok {
			return false
		}
		each(key, v)
		i = skipSpace(s, i)
		switch {
		case i >= len(s):
			return false
		case s[i] == ',':
			i = skipSpace(s, i+1)
		case s[i] == '}':
			return skipSpace(s, i+1) == len(s)
		default:
			return false
		}
	}
}

func skipSpace(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
		i++
	}
	return i
}

// plainString reads a JSON string at s[i] that needs no unescaping: no backslash, no
// control character, valid UTF-8.
func plainString(s string, i int) (v string, end int, ok bool) {
	if i >= len(s) || s[i] != '"' {
		return "", 0, false
	}
	ascii := true
	for j := i + 1; j < len(s); j++ {
		switch c := s[j]; {
		case c == '"':
			v = s[i+1 : j]
			return v, j + 1, ascii || utf8.ValidString(v)
		case c == '\\' || c < 0x20:
			return "", 0, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return "", 0, false
}

// scalar reads a number, a plain string, true, false, null or a list of numbers.
func scalar(s string, i int) (v span, end int, ok bool) {
	if i >= len(s) {
		return span{}, 0, false
	}
	switch c := s[i]; {
	case c == '[':
		end, ok := numberList(s, i, nil)
		if !ok {
			return span{}, 0, false
		}
		return span{'[', s[i:end]}, end, true
	case c == '"':
		str, end, ok := plainString(s, i)
		return span{'"', str}, end, ok
	case c == '-' || '0' <= c && c <= '9':
		end, ok := number(s, i)
		if !ok {
			return span{}, 0, false
		}
		return span{'0', s[i:end]}, end, true
	case len(s)-i >= 4 && s[i:i+4] == "true":
		return span{'t', ""}, i + 4, true
	case len(s)-i >= 5 && s[i:i+5] == "false":
		return span{'f', ""}, i + 5, true
	case len(s)-i >= 4 && s[i:i+4] == "null":
		return span{'n', ""}, i + 4, true
	}
	return span{}, 0, false
}

// number scans JSON's number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func number(s string, i int) (end int, ok bool) {
	if s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && '1' <= s[i] && s[i] <= '9':
		i = digits(s, i)
	default:
		return 0, false
	}
	if i < len(s) && s[i] == '.' {
		j := digits(s, i+1)
		if j == i+1 {
			return 0, false
		}
		i = j
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		j := digits(s, i)
		if j == i {
			return 0, false
		}
		i = j
	}
	return i, true
}

// numberList scans a list of numbers at s[i] ('['), not nested and not empty (the
// general way takes those), whitespace allowed where JSON allows it, and calls each
// (when not nil) with every number as written; false when s holds no such list there
// or each answered false.
func numberList(s string, i int, each func(n string) bool) (end int, ok bool) {
	i = skipSpace(s, i+1)
	for {
		if i >= len(s) || s[i] != '-' && (s[i] < '0' || s[i] > '9') {
			return 0, false
		}
		j, ok := number(s, i)
		if !ok || each != nil && !each(s[i:j]) {
			return 0, false
		}
		i = skipSpace(s, j)
		switch {
		case i >= len(s):
			return 0, false
		case s[i] == ',':
			i = skipSpace(s, i+1)
		case s[i] == ']':
			return i + 1, true
		default:
			return 0, false
		}
	}
}

// eachNumber calls each with every number of a list span's raw text, until each
// answers false; it reports whether each always answered true.
func eachNumber(list string, each func(n string) bool) bool {
	_, ok := numberList(list, 0, each)
	return ok
}

func digits(s string, i int) int {
	for i < len(s) && '0' <= s[i] && s[i] <= '9' {
		i++
	}
	return i
}

// MarshalRow is json.Marshal(row), byte for byte, for the rows the lanes write:
// keys sorted, scalar values and flat slices of them. Numbers are written as
// encoding/json writes them; a string with anything to escape, a NaN or an infinity
// (an error there), or any other type goes to json.Marshal.
func MarshalRow(row map[string]any) ([]byte, error) {
	keys := make([]string, 0, len(row))
	for k := range row {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b, ok := appendJSONList(make([]byte, 0, 32*len(row)+2), '{', '}', keys, func(b []byte, k string) ([]byte, bool) {
		b, ok := appendSimpleString(b, k)
		if !ok {
			return b, false
		}
		return appendJSONValue(append(b, ':'), row[k])
	})
	if !ok {
		return json.Marshal(row)
	}
	return b, nil
}

// appendSimpleString appends s quoted when nothing in it needs escaping by
// encoding/json's rules (which also escape <, > and & for HTML).
func appendSimpleString(b []byte, s string) ([]byte, bool) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return b, false
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"'), true
}

func appendJSONValue(b []byte, v any) ([]byte, bool) {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...), true
	case bool:
		return strconv.AppendBool(b, v), true
	case string:
		return appendSimpleString(b, v)
	case json.Number:
		if v == "" {
			return append(b, '0'), true // as encoding/json writes an empty Number
		}
		if end, ok := number(string(v), 0); !ok || end != len(v) {
			return b, false
		}
		return append(b, v...), true
	case float32:
		return appendJSONFloat(b, float64(v), 32)
	case float64:
		return appendJSONFloat(b, v, 64)
	case int64:
		return strconv.AppendInt(b, v, 10), true
	case uint64:
		return strconv.AppendUint(b, v, 10), true
	case int:
		return strconv.AppendInt(b, int64(v), 10), true
	case []float32:
		return appendJSONSlice(b, v, func(b []byte, f float32) ([]byte, bool) { return appendJSONFloat(b, float64(f), 32) })
	case []float64:
		return appendJSONSlice(b, v, func(b []byte, f float64) ([]byte, bool) { return appendJSONFloat(b, f, 64) })
	case []int64:
		return appendJSONSlice(b, v, func(b []byte, n int64) ([]byte, bool) { return strconv.AppendInt(b, n, 10), true })
	case []uint64:
		return appendJSONSlice(b, v, func(b []byte, n uint64) ([]byte, bool) { return strconv.AppendUint(b, n, 10), true })
	case []bool:
		return appendJSONSlice(b, v, func(b []byte, x bool) ([]byte, bool) { return strconv.AppendBool(b, x), true })
	case []string:
		return appendJSONSlice(b, v, appendSimpleString)
	case []any: // a list as encoding/json decodes it: a feature vector passed through
		return appendJSONSlice(b, v, appendJSONValue)
	}
	return b, false
}

func appendJSONSlice[T any](b []byte, xs []T, each func([]byte, T) ([]byte, bool)) ([]byte, bool) {
	if xs == nil {
		return append(b, "null"...), true
	}
	return appendJSONList(b, '[', ']', xs, each)
}

// appendJSONList appends xs between opening and closing, separated by commas.
func appendJSONList[T any](b []byte, opening, closing byte, xs []T, each func([]byte, T) ([]byte, bool)) ([]byte, bool) {
	b = append(b, opening)
	for i, x := range xs {
		if i > 0 {
			b = append(b, ',')
		}
		var ok bool
		if b, ok = each(b, x); !ok {
			return b, false
		}
	}
	return append(b, closing), true
}

// appendJSONFloat writes f as encoding/json does: the shortest decimal that reads back
// at the given bits, in exponent form below 1e-6 and from 1e21 on, with the
// exponent's leading zero dropped (1e-07 becomes 1e-7).
func appendJSONFloat(b []byte, f float64, bits int) ([]byte, bool) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return b, false
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 {
		if bits == 64 && (abs < 1e-6 || abs >= 1e21) || bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	b = strconv.AppendFloat(b, f, format, -1, bits)
	if format == 'e' {
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, true
}
