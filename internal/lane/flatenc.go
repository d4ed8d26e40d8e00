package lane

import "strings"

// FlatEncoder encodes flat rows the way AddFlat reads them, for a reader that holds
// rows before a Builder takes them with AddEncoded (a batch job's JSON or CSV lines,
// read ahead of scoring): each input's elements go straight into bytes, and the fields
// the reader keeps (id columns) come out as flatRow would have decoded them. Without it
// such a reader made a Row map per line, boxing every number of a feature vector, and
// Add then parsed each one again.
//
// A FlatEncoder is not safe for concurrent use.
type FlatEncoder struct {
	b    *Builder
	keep []string
	pass map[string]bool
	kept []Field
}

// NewFlatEncoder encodes rows for the schema's model, keeping the fields keep names.
func (s *Schema) NewFlatEncoder(keep []string) *FlatEncoder {
	pass := make(map[string]bool, len(keep))
	for _, k := range keep {
		pass[k] = true
	}
	return &FlatEncoder{b: s.NewBuilder(), keep: keep, pass: pass}
}

// Encode reads body as AddFlat does. For a row AddFlat would take it appends input i's
// elements to dst[i], sets vals[k] to the value of field keep[k] (nil when the row
// lacks it) and answers true. For any other row it changes nothing and answers false:
// the caller decodes the row and adds it the general way, which also words its errors.
func (e *FlatEncoder) Encode(dst [][]byte, body []byte, vals []any) bool {
	var ok bool
	if e.kept, ok = e.b.readFlat(body, e.pass, e.kept[:0]); !ok {
		return false
	}
	e.appendTo(dst)
	clear(vals)
	for _, f := range e.kept {
		for k, name := range e.keep {
			if name == f.Key {
				// A copy of its text: the value would otherwise hold the whole line's
				// copy in memory for as long as the reader keeps the row.
				vals[k] = span{f.v.kind, strings.Clone(f.v.raw)}.value()
			}
		}
	}
	return true
}

// appendTo appends the row encodeFlat left in the builder to dst, input by input.
func (e *FlatEncoder) appendTo(dst [][]byte) {
	start := 0
	for i, end := range e.b.ends {
		dst[i] = append(dst[i], e.b.vals[start:end]...)
		start = end
	}
}

// EncodeFields is Encode for a row given field by field as text, a CSV line's cells:
// text(f) is field f's, ok false when the row lacks it. Each field the model reads must
// be a JSON number or a non-empty list of numbers, spaces around it aside (the cell a CSV
// reader turns into a json.Number or a list of them); for any other row it changes
// nothing and answers false, and the caller takes the general way.
func (e *FlatEncoder) EncodeFields(dst [][]byte, text func(f string) (string, bool)) bool {
	b := e.b
	if b.places == nil {
		b.indexPlaces()
	}
	for f, places := range b.places {
		s, ok := text(f)
		if !ok {
			return false
		}
		v, ok := numericSpan(strings.TrimSpace(s))
		if !ok {
			return false
		}
		for _, k := range places {
			b.flat[k] = v
		}
	}
	if !b.encodeFlat() {
		return false
	}
	e.appendTo(dst)
	return true
}

// numericSpan is s as a span when it is a JSON number or a list of numbers, whole.
func numericSpan(s string) (span, bool) {
	switch {
	case s == "":
		return span{}, false
	case s[0] == '[':
		end, ok := numberList(s, 0, nil)
		return span{'[', s}, ok && end == len(s)
	}
	end, ok := number(s, 0)
	return span{'0', s}, ok && end == len(s)
}
