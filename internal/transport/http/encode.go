package httpapi

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"
	"unsafe"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/shm"
	"github.com/ferryml/ferry/internal/tensor"
)

// encodedResponse is an infer response ready to write: the JSON header and, in output
// order, the binary sections (which alias the outputs' data).
type encodedResponse struct {
	header []byte
	binary [][]byte
}

func (e *encodedResponse) binarySize() int {
	n := 0
	for _, b := range e.binary {
		n += len(b)
	}
	return n
}

// wantsBinary reports whether an output goes in the binary section: its own binary_data
// parameter decides, else the request's binary_data_output.
func wantsBinary(req *core.InferRequest, name string) bool {
	if v, ok := req.OutputParameters(name)[paramBinary].(bool); ok {
		return v
	}
	v, _ := req.Parameters[paramBinaryOutput].(bool)
	return v
}

// encodeInferResponse writes the $inference_response JSON by hand, appending numbers
// straight from the tensors' bytes. Outputs in shared (written to shared memory, by
// name) carry no data.
func encodeInferResponse(req *core.InferRequest, resp *core.InferResponse, shared map[string]shm.Ref) (*encodedResponse, error) {
	size := 128
	for _, t := range resp.Outputs {
		size += 96 + len(t.Name) + 8*len(t.Shape)
		if _, inShm := shared[t.Name]; !inShm && !wantsBinary(req, t.Name) {
			size += 3 * len(t.Data) // about right for FP32 text; append grows the rest
		}
	}
	b := make([]byte, 0, min(size, 64<<20))
	b = append(b, `{"model_name":`...)
	b = appendJSONString(b, resp.Model)
	if resp.Version != "" {
		b = append(b, `,"model_version":`...)
		b = appendJSONString(b, resp.Version)
	}
	if resp.ID != "" {
		b = append(b, `,"id":`...)
		b = appendJSONString(b, resp.ID)
	}
	if len(resp.Parameters) > 0 {
		p, err := json.Marshal(resp.Parameters)
		if err != nil {
			return nil, fmt.Errorf("response parameters: %w", err)
		}
		b = append(append(b, `,"parameters":`...), p...)
	}
	b = append(b, `,"outputs":[`...)
	enc := &encodedResponse{}
	for i, t := range resp.Outputs {
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		if ref, inShm := shared[t.Name]; inShm {
			b, err = sharedOutput(b, t, ref)
		} else {
			b, err = enc.output(b, t, wantsBinary(req, t.Name))
		}
		if err != nil {
			return nil, err
		}
	}
	enc.header = append(b, "]}"...)
	return enc, nil
}

func (e *encodedResponse) output(b []byte, t *tensor.Tensor, bin bool) ([]byte, error) {
	b, err := outputHead(b, t)
	if err != nil {
		return nil, err
	}
	if bin {
		b = append(b, `,"parameters":{"`+paramBinarySize+`":`...)
		b = strconv.AppendInt(b, int64(len(t.Data)), 10)
		e.binary = append(e.binary, t.Data)
		return append(b, "}}"...), nil
	}
	b = append(b, `,"data":[`...)
	b, err = appendData(b, t)
	if err != nil {
		return nil, err
	}
	return append(b, "]}"...), nil
}

// outputHead appends an output object's start: name, datatype and shape.
func outputHead(b []byte, t *tensor.Tensor) ([]byte, error) {
	if err := t.Validate(); err != nil {
		return nil, fmt.Errorf("model returned a malformed output %q: %w", t.Name, err)
	}
	b = append(b, `{"name":`...)
	b = appendJSONString(b, t.Name)
	b = append(b, `,"datatype":"`...)
	b = append(b, t.DType.String()...)
	b = append(b, `","shape":[`...)
	for i, d := range t.Shape {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, d, 10)
	}
	return append(b, ']'), nil
}

// sharedOutput appends an output written to shared memory: no data, and the
// shared_memory_* parameters saying where it is, its byte size being what was written.
func sharedOutput(b []byte, t *tensor.Tensor, ref shm.Ref) ([]byte, error) {
	b, err := outputHead(b, t)
	if err != nil {
		return nil, err
	}
	b = append(b, `,"parameters":{"`+shm.ParamRegion+`":`...)
	b = appendJSONString(b, ref.Region)
	b = append(b, `,"`+shm.ParamOffset+`":`...)
	b = strconv.AppendInt(b, ref.Offset, 10)
	b = append(b, `,"`+shm.ParamByteSize+`":`...)
	b = strconv.AppendInt(b, int64(len(t.Data)), 10)
	return append(b, "}}"...), nil
}

// appendData appends an output's elements as a flat JSON array body.
func appendData(b []byte, t *tensor.Tensor) ([]byte, error) {
	if t.DType == tensor.Bytes {
		return appendBytesData(b, t)
	}
	size := t.DType.Size()
	le := binary.LittleEndian
	for i := 0; i+size <= len(t.Data); i += size {
		if i > 0 {
			b = append(b, ',')
		}
		v := t.Data[i:]
		switch t.DType {
		case tensor.Bool:
			b = strconv.AppendBool(b, v[0] != 0)
		case tensor.Uint8:
			b = strconv.AppendUint(b, uint64(v[0]), 10)
		case tensor.Uint16:
			b = strconv.AppendUint(b, uint64(le.Uint16(v)), 10)
		case tensor.Uint32:
			b = strconv.AppendUint(b, uint64(le.Uint32(v)), 10)
		case tensor.Uint64:
			b = strconv.AppendUint(b, le.Uint64(v), 10)
		case tensor.Int8:
			b = strconv.AppendInt(b, int64(int8(v[0])), 10)
		case tensor.Int16:
			b = strconv.AppendInt(b, int64(int16(le.Uint16(v))), 10)
		case tensor.Int32:
			b = strconv.AppendInt(b, int64(int32(le.Uint32(v))), 10)
		case tensor.Int64:
			b = strconv.AppendInt(b, int64(le.Uint64(v)), 10)
		default:
			var ok bool
			if b, ok = appendFloat(b, t.DType, v); !ok {
				return nil, core.Invalidf("output %q: element %d is %v, which JSON cannot represent; request the output with %s", t.Name, i/size, floatAt(t.DType, v), paramBinary)
			}
		}
	}
	return b, nil
}

func floatAt(dt tensor.DType, v []byte) float64 {
	switch dt {
	case tensor.FP32:
		return float64(math.Float32frombits(binary.LittleEndian.Uint32(v)))
	case tensor.FP64:
		return math.Float64frombits(binary.LittleEndian.Uint64(v))
	case tensor.FP16:
		return float64(tensor.FP16ToFloat32(binary.LittleEndian.Uint16(v)))
	default:
		return float64(tensor.BF16ToFloat32(binary.LittleEndian.Uint16(v)))
	}
}

// appendFloat appends a float element in its shortest exact form; NaN and infinities
// have no JSON form (ok is false).
func appendFloat(b []byte, dt tensor.DType, v []byte) ([]byte, bool) {
	f := floatAt(dt, v)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return b, false
	}
	bits := 32
	if dt == tensor.FP64 {
		bits = 64
	}
	return strconv.AppendFloat(b, f, 'g', -1, bits), true
}

func appendBytesData(b []byte, t *tensor.Tensor) ([]byte, error) {
	elems, err := tensor.BytesElements(t.Data)
	if err != nil {
		return nil, fmt.Errorf("model returned a malformed output %q: %w", t.Name, err)
	}
	for i, e := range elems {
		if !utf8.Valid(e) {
			return nil, core.Invalidf("output %q: element %d is not valid UTF-8, which a JSON string cannot carry; request the output with %s", t.Name, i, paramBinary)
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, unsafe.String(unsafe.SliceData(e), len(e))) // no copy per element
	}
	return b, nil
}

// appendJSONString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD, as
// encoding/json does; BYTES data is checked before it gets here.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				b = append(b, s[start:i]...)
				b = append(b, `\ufffd`...)
				i++
				start = i
				continue
			}
			i += size
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
		}
		i++
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
