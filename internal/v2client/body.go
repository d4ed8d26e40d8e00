package v2client

import (
	"fmt"
	"math"
	"strconv"

	"github.com/ferryml/ferry/internal/tensor"
	"github.com/ferryml/ferry/internal/v2json"
)

// Body is one encoded REST inference request. Every body opens with the request's
// parameters, `{"parameters":{`, so that WithParameters can add some (a sequence's step)
// without encoding the tensors again.
type Body struct {
	data      []byte
	headerLen int    // the JSON part's length when binary: tensors follow it as raw bytes
	hlen      string // headerLen in decimal, for the header that says it
	header    map[string]string
	binary    bool
}

const bodyOpening = `{"parameters":{`

// Len is the body's size in bytes.
func (b Body) Len() int { return len(b.data) }

// EncodeREST encodes r as a REST request body: JSON, or with r.Binary the binary tensor
// data extension (a JSON header, then each input's bytes).
func EncodeREST(r *Request) (Body, error) {
	if err := r.check(); err != nil {
		return Body{}, err
	}
	b := []byte(bodyOpening)
	b, err := appendParams(b, r.Parameters)
	if err != nil {
		return Body{}, err
	}
	if r.Binary && r.Outputs == nil {
		if len(r.Parameters) > 0 {
			b = append(b, ',')
		}
		b = append(b, `"binary_data_output":true`...)
	}
	b = append(b, '}')
	if r.ID != "" {
		b = append(b, `,"id":`...)
		b = v2json.AppendString(b, r.ID)
	}
	b = append(b, `,"inputs":[`...)
	for i, t := range r.Inputs {
		if i > 0 {
			b = append(b, ',')
		}
		if r.InputRegions != nil {
			b = appendRegion(appendTensorHeader(b, t), r.InputRegions[i])
			continue
		}
		if b, err = appendInput(b, t, r.Binary); err != nil {
			return Body{}, err
		}
	}
	b = append(b, ']')
	if r.Outputs != nil {
		b = append(b, `,"outputs":[`...)
		for i, name := range r.Outputs {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"name":`...)
			b = v2json.AppendString(b, name)
			switch {
			case r.OutputRegions != nil:
				b = appendRegion(b, r.OutputRegions[i])
				continue
			case r.Binary:
				b = append(b, `,"parameters":{"binary_data":true}`...)
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = append(b, '}')
	if !r.Binary || r.InputRegions != nil {
		return Body{data: b, header: r.Header}, nil
	}
	h := len(b)
	for _, t := range r.Inputs {
		b = append(b, t.Data...)
	}
	return Body{data: b, headerLen: h, hlen: strconv.Itoa(h), binary: true, header: r.Header}, nil
}

// appendInput appends one input: name, shape, datatype, then its data as a JSON array
// or, binary, its size (the bytes follow the header).
func appendInput(b []byte, t *tensor.Tensor, binary bool) ([]byte, error) {
	b = appendTensorHeader(b, t)
	if binary {
		b = append(b, `,"parameters":{"binary_data_size":`...)
		b = strconv.AppendInt(b, int64(len(t.Data)), 10)
		return append(b, "}}"...), nil
	}
	b = append(b, `,"data":`...)
	b, err := v2json.AppendData(b, t)
	if err != nil {
		return nil, fmt.Errorf("input %q: %w", t.Name, err)
	}
	return append(b, '}'), nil
}

// appendRegion appends a tensor's shared memory parameters and closes the tensor.
func appendRegion(b []byte, r Region) []byte {
	b = append(b, `,"parameters":{`...)
	b, _ = appendParams(b, r.params()) // strings and integers always encode
	return append(b, "}}"...)
}

// appendTensorHeader opens a tensor: name, shape and datatype.
func appendTensorHeader(b []byte, t *tensor.Tensor) []byte {
	b = append(b, `{"name":`...)
	b = v2json.AppendString(b, t.Name)
	b = append(b, `,"shape":[`...)
	for i, d := range t.Shape {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, d, 10)
	}
	b = append(b, `],"datatype":"`...)
	b = append(b, t.DType.String()...)
	return append(b, '"')
}

// appendParams appends ps as the members of a JSON object (no braces).
func appendParams(b []byte, ps []Param) ([]byte, error) {
	for i, p := range ps {
		if i > 0 {
			b = append(b, ',')
		}
		b = v2json.AppendString(b, p.Key)
		b = append(b, ':')
		switch v := p.Value.(type) {
		case bool:
			b = strconv.AppendBool(b, v)
		case string:
			b = v2json.AppendString(b, v)
		case int:
			b = strconv.AppendInt(b, int64(v), 10)
		case int64:
			b = strconv.AppendInt(b, v, 10)
		case uint64:
			b = strconv.AppendUint(b, v, 10)
		case float64:
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, fmt.Errorf("parameter %q: %v has no JSON form", p.Key, v)
			}
			b = strconv.AppendFloat(b, v, 'g', -1, 64)
		default:
			return nil, fmt.Errorf("parameter %q: a %T value (want bool, string, int64, uint64 or float64)", p.Key, p.Value)
		}
	}
	return b, nil
}

// WithParameters is b with ps added to the request's parameters: a new body sharing
// nothing with b, which stays valid. With no ps it is b itself.
func (b Body) WithParameters(ps ...Param) (Body, error) {
	if len(ps) == 0 {
		return b, nil
	}
	add, err := appendParams(nil, ps)
	if err != nil {
		return Body{}, err
	}
	at := len(bodyOpening)
	if b.data[at] != '}' {
		add = append(add, ',')
	}
	out := make([]byte, 0, len(b.data)+len(add))
	out = append(append(append(out, b.data[:at]...), add...), b.data[at:]...)
	h := b.headerLen
	if b.binary {
		h += len(add)
	}
	return Body{data: out, headerLen: h, hlen: strconv.Itoa(h), binary: b.binary, header: b.header}, nil
}
