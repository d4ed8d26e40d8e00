package v2client

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/ferryml/ferry/internal/tensor"
	"github.com/ferryml/ferry/internal/v2json"
)

// HeaderLength is the binary tensor data extension's header: the size of the JSON part
// of a body whose tensors follow as raw bytes.
const HeaderLength = "Inference-Header-Content-Length"

type restTensor struct {
	Name       string          `json:"name"`
	Shape      []int64         `json:"shape"`
	Datatype   string          `json:"datatype"`
	Parameters map[string]any  `json:"parameters"`
	Data       json.RawMessage `json:"data"`
}

type restResponse struct {
	ModelName    string         `json:"model_name"`
	ModelVersion string         `json:"model_version"`
	ID           string         `json:"id"`
	Parameters   map[string]any `json:"parameters"`
	Outputs      []restTensor   `json:"outputs"`
}

// DecodeREST reads a 200 answer to an inference request: hlen is its
// Inference-Header-Content-Length header ("" for a JSON-only body).
func DecodeREST(hlen string, b []byte) (*Response, error) {
	n := len(b)
	if hlen != "" {
		v, err := strconv.Atoi(hlen)
		if err != nil || v < 0 || v > len(b) {
			return nil, fmt.Errorf("%s %q does not fit a body of %d bytes", HeaderLength, hlen, len(b))
		}
		n = v
	}
	var r restResponse
	if err := json.Unmarshal(b[:n], &r); err != nil {
		return nil, err
	}
	resp := &Response{ModelName: r.ModelName, ModelVersion: r.ModelVersion, ID: r.ID, Parameters: r.Parameters,
		Outputs: make([]*tensor.Tensor, 0, len(r.Outputs))}
	bin := b[n:]
	for _, o := range r.Outputs {
		t, rest, err := o.tensor(bin)
		if err != nil {
			return nil, fmt.Errorf("output %q: %w", o.Name, err)
		}
		bin = rest
		resp.Outputs = append(resp.Outputs, t)
	}
	return resp, nil
}

// tensor builds the output, taking its bytes from the front of bin when it names a
// binary_data_size; it returns what is left of bin.
func (o restTensor) tensor(bin []byte) (*tensor.Tensor, []byte, error) {
	dt, err := tensor.ParseDType(o.Datatype)
	if err != nil {
		return nil, nil, err
	}
	var data []byte
	if size, ok := o.Parameters["binary_data_size"].(float64); ok {
		if size < 0 || size > float64(len(bin)) || size != float64(int(size)) {
			return nil, nil, fmt.Errorf("binary_data_size %v but %d bytes remain", size, len(bin))
		}
		data, bin = bin[:int(size):int(size)], bin[int(size):]
	} else if data, err = rawFromJSON(dt, o.Data); err != nil {
		return nil, nil, err
	}
	t := &tensor.Tensor{Name: o.Name, DType: dt, Shape: o.Shape, Data: data}
	if err := t.Validate(); err != nil {
		return nil, nil, err
	}
	return t, bin, nil
}

// rawFromJSON converts a JSON `data` value (flat or nested) to little-endian elements.
func rawFromJSON(dt tensor.DType, data json.RawMessage) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("data: %v", err)
	}
	flat, err := v2json.Flatten(nil, v)
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	out := make([]byte, 0, len(flat)*max(dt.Size(), 0))
	for i, e := range flat {
		if out, err = v2json.AppendValue(out, dt, e); err != nil {
			return nil, fmt.Errorf("data[%d]: %w", i, err)
		}
	}
	return out, nil
}

// restMeta reads a metadata answer's tensors.
func restMeta(ts []restTensor) ([]TensorMeta, error) {
	out := make([]TensorMeta, len(ts))
	for i, t := range ts {
		dt, err := tensor.ParseDType(t.Datatype)
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %w", t.Name, err)
		}
		out[i] = TensorMeta{Name: t.Name, DType: dt, Shape: t.Shape}
	}
	return out, nil
}
