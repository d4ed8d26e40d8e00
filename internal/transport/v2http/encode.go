package v2http

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/shm"
	"github.com/ferryml/ferry/internal/tensor"
	"github.com/ferryml/ferry/internal/v2json"
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
	b = v2json.AppendString(b, resp.Model)
	if resp.Version != "" {
		b = append(b, `,"model_version":`...)
		b = v2json.AppendString(b, resp.Version)
	}
	if resp.ID != "" {
		b = append(b, `,"id":`...)
		b = v2json.AppendString(b, resp.ID)
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
	b = append(b, `,"data":`...)
	b, err = appendData(b, t)
	if err != nil {
		return nil, err
	}
	return append(b, '}'), nil
}

// outputHead appends an output object's start: name, datatype and shape.
func outputHead(b []byte, t *tensor.Tensor) ([]byte, error) {
	if err := t.Validate(); err != nil {
		return nil, fmt.Errorf("model returned a malformed output %q: %w", t.Name, err)
	}
	b = append(b, `{"name":`...)
	b = v2json.AppendString(b, t.Name)
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
	b = v2json.AppendString(b, ref.Region)
	b = append(b, `,"`+shm.ParamOffset+`":`...)
	b = strconv.AppendInt(b, ref.Offset, 10)
	b = append(b, `,"`+shm.ParamByteSize+`":`...)
	b = strconv.AppendInt(b, int64(len(t.Data)), 10)
	return append(b, "}}"...), nil
}

// appendData appends an output's elements as its JSON "data" array.
func appendData(b []byte, t *tensor.Tensor) ([]byte, error) {
	b, err := v2json.AppendData(b, t)
	if err != nil {
		return nil, dataError(t.Name, err)
	}
	return b, nil
}

// dataError names the output: an element JSON cannot carry is the client's to avoid
// (400), by asking for the output in binary; a malformed BYTES output is the model's
// fault. (Kept out of appendData, whose errors.As target would escape on every call.)
func dataError(name string, err error) error {
	var ee *v2json.ElementError
	if errors.As(err, &ee) {
		return core.Invalidf("output %q: %v; request the output with %s", name, ee, paramBinary)
	}
	return fmt.Errorf("model returned a malformed output %q: %w", name, err)
}

// EncodeInferResponseJSON is a response's V2 JSON body with every output's data inline,
// for the lanes that write responses somewhere other than an HTTP body (a Kafka topic, a
// Redis stream).
func EncodeInferResponseJSON(resp *core.InferResponse) ([]byte, error) {
	enc, err := encodeInferResponse(&core.InferRequest{}, resp, nil)
	if err != nil {
		return nil, err
	}
	return enc.header, nil
}
