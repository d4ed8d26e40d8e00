package lane

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"slices"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/tensor"
	"github.com/ferryml/ferry/internal/transport/v2http"
)

// Split cuts a response to a request of n rows into n rows of outputs: out[i][j] is row
// i's piece of output j, its batch dimension dropped for a batching model. The pieces
// share the response's memory.
func (s *Schema) Split(resp *core.InferResponse, n int) ([][]*tensor.Tensor, error) {
	out := make([][]*tensor.Tensor, n)
	for i := range out {
		out[i] = make([]*tensor.Tensor, len(resp.Outputs))
	}
	if !s.Batching {
		if n != 1 {
			return nil, fmt.Errorf("model %q does not batch; a response holds one row, not %d", s.Model, n)
		}
		copy(out[0], resp.Outputs)
		return out, nil
	}
	ones := slices.Repeat([]int64{1}, n)
	for j, t := range resp.Outputs {
		pieces, err := tensor.Split(t, ones)
		if err != nil {
			return nil, fmt.Errorf("output %q: %w", t.Name, err)
		}
		for i, p := range pieces {
			p.Shape = p.Shape[1:]
			out[i][j] = p
		}
	}
	return out, nil
}

// Value is a row's output as JSON and Parquet writers want it: a scalar when it holds
// one element, else a flat slice. FP32, FP16 and BF16 become float32; FP64 float64;
// signed integers int64; unsigned uint64; BOOL bool; BYTES string.
func Value(t *tensor.Tensor) (any, error) {
	if t.DType == tensor.Bytes {
		elems, err := tensor.BytesElements(t.Data)
		if err != nil {
			return nil, err
		}
		strs := make([]string, len(elems))
		for i, e := range elems {
			strs[i] = string(e)
		}
		if len(strs) == 1 {
			return strs[0], nil
		}
		return strs, nil
	}
	size := t.DType.Size()
	if size == 0 || len(t.Data)%size != 0 {
		return nil, fmt.Errorf("output %q: %d bytes of %s", t.Name, len(t.Data), t.DType)
	}
	n := len(t.Data) / size
	switch t.DType {
	case tensor.FP32, tensor.FP16, tensor.BF16:
		return collapse(decode(t.Data, n, size, func(b []byte) float32 { return float32At(t.DType, b) })), nil
	case tensor.FP64:
		return collapse(decode(t.Data, n, size, func(b []byte) float64 { return math.Float64frombits(binary.LittleEndian.Uint64(b)) })), nil
	case tensor.Bool:
		return collapse(decode(t.Data, n, size, func(b []byte) bool { return b[0] != 0 })), nil
	case tensor.Uint8, tensor.Uint16, tensor.Uint32, tensor.Uint64:
		return collapse(decode(t.Data, n, size, func(b []byte) uint64 { return uintAt(b, size) })), nil
	}
	return collapse(decode(t.Data, n, size, func(b []byte) int64 { return intAt(b, size) })), nil
}

func decode[T any](data []byte, n, size int, at func([]byte) T) []T {
	out := make([]T, n)
	for i := range out {
		out[i] = at(data[i*size:])
	}
	return out
}

func collapse[T any](xs []T) any {
	if len(xs) == 1 {
		return xs[0]
	}
	return xs
}

func float32At(dt tensor.DType, b []byte) float32 {
	le := binary.LittleEndian
	switch dt {
	case tensor.FP16:
		return tensor.FP16ToFloat32(le.Uint16(b))
	case tensor.BF16:
		return tensor.BF16ToFloat32(le.Uint16(b))
	}
	return math.Float32frombits(le.Uint32(b))
}

func uintAt(b []byte, size int) uint64 {
	var u uint64
	for k := range size {
		u |= uint64(b[k]) << (8 * k)
	}
	return u
}

// intAt sign-extends a little-endian integer of size bytes.
func intAt(b []byte, size int) int64 {
	shift := 64 - 8*size
	return int64(uintAt(b, size)<<shift) >> shift
}

// DecodeMessage reads one streamed message: a V2 JSON infer request (an object with an
// "inputs" array) comes back as req, model and version left for the caller; anything
// else must be a flat JSON object, which comes back as a row with numbers as
// json.Number.
//
// Two fast paths come before the general decoding, each taking only what it would
// decode exactly alike: flat rows (flatRow), and V2 requests that v2http decodes on
// their own with at least one input. The general path decodes a V2 body twice (into
// a map to find "inputs", then with v2http), about nine times the work of the fast path
// (BenchmarkDecodeV2Message).
func DecodeMessage(body []byte, limits core.Limits) (req *core.InferRequest, row Row, err error) {
	// flatRow copies the body before it finds out whether it is a flat row, so a V2 body
	// (which always names "inputs") skips it. v2http refuses duplicate fields, trailing
	// text and invalid JSON, so a body it decodes with inputs has exactly one "inputs"
	// key holding an array: the general path would call it V2 and decode it with the
	// same call. Anything else, errors included, takes the general path, which words
	// them as before.
	if !bytes.Contains(body, inputsKey) {
		if row, ok := flatRow(body); ok {
			return nil, row, nil
		}
	} else if req, err := v2http.DecodeInferRequest(body, -1, limits); err == nil && len(req.Inputs) > 0 {
		return req, nil, nil
	}
	return decodeGeneric(body, limits)
}

var inputsKey = []byte(`"inputs"`)

// decodeGeneric is DecodeMessage for every message: the whole body into a map, then,
// for a V2 request, v2http's decoding.
func decodeGeneric(body []byte, limits core.Limits) (req *core.InferRequest, row Row, err error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&row); err != nil {
		return nil, nil, fmt.Errorf("message is not a JSON object: %w", err)
	}
	if dec.More() {
		return nil, nil, fmt.Errorf("message holds more than one JSON value")
	}
	if _, isV2 := row["inputs"].([]any); isV2 {
		req, err := v2http.DecodeInferRequest(body, -1, limits)
		if err != nil {
			return nil, nil, fmt.Errorf("V2 request: %w", err)
		}
		return req, nil, nil
	}
	if row == nil {
		return nil, nil, fmt.Errorf("message is JSON null, not an object")
	}
	return nil, row, nil
}

// EncodeResponse is a response's V2 JSON body, every output inline.
func EncodeResponse(resp *core.InferResponse) ([]byte, error) {
	return v2http.EncodeInferResponseJSON(resp)
}
