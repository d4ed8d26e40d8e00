package v2http

import (
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/shm"
	"github.com/ferryml/ferry/internal/tensor"
)

// Parameter names of the binary tensor data extension.
const (
	paramBinarySize   = "binary_data_size"   // request input, response output: bytes in the binary section
	paramBinary       = "binary_data"        // requested output: return it as binary
	paramBinaryOutput = "binary_data_output" // request: return every output as binary
)

// DecodeInferRequest decodes an infer request body without an http.Request, for
// benchmarks and other transports that carry the same bytes. headerLength is the value of
// Inference-Header-Content-Length, or -1 when the header is absent (the whole body is
// JSON). A raw binary body (headerLength 0) needs the model's metadata; the handler
// decodes it with rawRequest instead. Model and Version are left for the caller. Inputs
// in shared memory are refused: reading them needs the server's regions.
func DecodeInferRequest(body []byte, headerLength int64, limits core.Limits) (*core.InferRequest, error) {
	req, _, err := decodeInferRequest(body, headerLength, limits, nil)
	return req, err
}

// decodeInferRequest is DecodeInferRequest reading shared memory inputs from regions. It
// also returns the buffers those inputs were copied into, for shm.Recycle.
func decodeInferRequest(body []byte, headerLength int64, limits core.Limits, regions *shm.Registry) (*core.InferRequest, [][]byte, error) {
	hasHeader := headerLength >= 0
	switch {
	case headerLength == 0:
		return nil, nil, core.Invalidf("a raw binary body (Inference-Header-Content-Length: 0) needs the model's metadata")
	case headerLength < 0:
		headerLength = int64(len(body))
	case headerLength > int64(len(body)):
		return nil, nil, core.Invalidf("Inference-Header-Content-Length %d is larger than the body (%d bytes)", headerLength, len(body))
	}
	req, pending, shared, err := decodeInferJSON(body[:headerLength], limits)
	if err != nil {
		return nil, nil, err
	}
	if err := attachBinary(req, pending, body[headerLength:], hasHeader); err != nil {
		return nil, nil, err
	}
	bufs, err := attachShared(req, shared, regions, limits)
	if err != nil {
		return nil, nil, err
	}
	return req, bufs, nil
}

// pendingBinary is an input whose data follows the JSON header (binary_data_size).
type pendingBinary struct {
	input int
	size  int64
	n     int64 // elements the shape needs
}

// inferDecoder holds the state of one request's JSON decoding.
type inferDecoder struct {
	s       scanner
	limits  core.Limits
	req     *core.InferRequest
	pending []pendingBinary
	shared  []pendingShared
}

// decodeInferJSON decodes the JSON part of an infer request. Inputs that carry
// binary_data_size are returned as pending, in input order, for attachBinary; inputs in
// shared memory as shared, for attachShared.
func decodeInferJSON(buf []byte, limits core.Limits) (*core.InferRequest, []pendingBinary, []pendingShared, error) {
	d := &inferDecoder{s: scanner{buf: buf}, limits: limits, req: &core.InferRequest{}}
	if d.s.peek() != '{' {
		return nil, nil, nil, d.s.errorf("the inference request must be a JSON object, found %s", d.s.describe())
	}
	seen := 0
	err := d.s.object(func(key []byte) error {
		bit := 0
		switch string(key) {
		case "id":
			bit = 1
		case "parameters":
			bit = 2
		case "inputs":
			bit = 4
		case "outputs":
			bit = 8
		}
		if seen&bit != 0 {
			return core.Invalidf("inference request: duplicate field %q", key)
		}
		seen |= bit
		switch string(key) {
		case "id":
			id, err := d.s.str()
			d.req.ID = id
			return err
		case "parameters":
			p, err := d.parameters("request")
			d.req.Parameters = p
			return err
		case "inputs":
			return d.s.array(func(int) error { return d.input() })
		case "outputs":
			return d.s.array(func(int) error { return d.output() })
		}
		return d.s.skip() // other fields (such as "model_name") are not part of the protocol
	})
	if err != nil {
		return nil, nil, nil, err
	}
	if err := d.s.end(); err != nil {
		return nil, nil, nil, err
	}
	if err := checkBoolParam(d.req.Parameters, paramBinaryOutput, "request"); err != nil {
		return nil, nil, nil, err
	}
	return d.req, d.pending, d.shared, nil
}

// input decodes one $request_input.
func (d *inferDecoder) input() error {
	in := inputFields{index: len(d.req.Inputs), binarySize: -1}
	t := &tensor.Tensor{}
	d.req.Inputs = append(d.req.Inputs, t)
	var deferred []byte // data seen before name, shape and datatype
	seen := 0
	err := d.s.object(func(key []byte) error {
		var bit int
		switch string(key) {
		case "name":
			bit = 1
		case "shape":
			bit = 2
		case "datatype":
			bit = 4
		case "parameters":
			bit = 8
		case "data":
			bit = 16
		default:
			return d.s.skip()
		}
		if seen&bit != 0 {
			return &core.InputError{Input: in.label(t), Reason: fmt.Sprintf("duplicate field %q", key)}
		}
		seen |= bit
		return d.inputField(string(key), t, &in, &deferred)
	})
	if err != nil {
		return err
	}
	return d.finishInput(t, &in, deferred)
}

// inputFields tracks what an input object has supplied so far.
type inputFields struct {
	index      int
	dtype      string
	haveShape  bool
	haveData   bool
	binarySize int64 // -1 when the data is in JSON
	shared     *shm.Ref
}

// label names the input in errors, even before its name has been read.
func (in *inputFields) label(t *tensor.Tensor) string {
	if t.Name != "" {
		return t.Name
	}
	return "inputs[" + strconv.Itoa(in.index) + "]"
}

func (d *inferDecoder) inputField(key string, t *tensor.Tensor, in *inputFields, deferred *[]byte) error {
	var err error
	switch key {
	case "name":
		t.Name, err = d.s.str()
	case "datatype":
		in.dtype, err = d.s.str()
	case "shape":
		t.Shape, err = d.shape(in.label(t))
		in.haveShape = true
	case "parameters":
		var p core.Parameters
		if p, err = d.parameters("input " + strconv.Quote(in.label(t))); err == nil {
			err = in.inputParameters(t, p)
		}
	case "data":
		in.haveData = true
		if t.Name == "" || !in.haveShape || in.dtype == "" {
			start := d.s.pos
			if err = d.s.skip(); err == nil {
				*deferred = d.s.buf[start:d.s.pos]
			}
			return err
		}
		return d.data(&d.s, t, in)
	}
	return err
}

// inputParameters applies the transport parameters of an input.
func (in *inputFields) inputParameters(t *tensor.Tensor, p core.Parameters) error {
	if v, ok := p[paramBinarySize]; ok {
		n, ok := v.(int64)
		if !ok || n < 0 {
			return &core.InputError{Input: in.label(t), Reason: fmt.Sprintf("parameter %s must be a non-negative integer, got %v", paramBinarySize, v)}
		}
		in.binarySize = n
	}
	ref, ok, err := shm.RefOf(p)
	if err != nil {
		return &core.InputError{Input: in.label(t), Reason: err.Error()}
	}
	if ok {
		in.shared = &ref
	}
	return nil
}

// data decodes an input's JSON data once its name, shape and datatype are known.
func (d *inferDecoder) data(s *scanner, t *tensor.Tensor, in *inputFields) error {
	n, err := d.checkInput(t, in)
	if err != nil {
		return err
	}
	t.Data, err = decodeData(s, t.Name, t.DType, t.Shape, n)
	return err
}

// checkInput validates the datatype and applies the shape limits, before any allocation
// proportional to the shape.
func (d *inferDecoder) checkInput(t *tensor.Tensor, in *inputFields) (int64, error) {
	if t.DType == tensor.Invalid {
		dt, err := tensor.ParseDType(in.dtype)
		if err != nil {
			return 0, &core.InputError{Input: t.Name, Reason: err.Error()}
		}
		t.DType = dt
	}
	if err := d.limits.CheckShape(t.Name, t.Shape); err != nil {
		return 0, err
	}
	return t.Shape.NumElements()
}

func (d *inferDecoder) finishInput(t *tensor.Tensor, in *inputFields, deferred []byte) error {
	switch {
	case t.Name == "":
		return core.Invalidf("%s: missing \"name\"", in.label(t))
	case !utf8.ValidString(t.Name):
		return core.Invalidf("inputs[%d]: name %q is not valid UTF-8", in.index, t.Name)
	case in.dtype == "":
		return &core.InputError{Input: t.Name, Reason: `missing "datatype"`}
	case !in.haveShape:
		return &core.InputError{Input: t.Name, Reason: `missing "shape"`}
	case in.haveData && in.binarySize >= 0:
		return &core.InputError{Input: t.Name, Reason: `has both "data" and parameter ` + paramBinarySize}
	case in.shared != nil && (in.haveData || in.binarySize >= 0):
		return &core.InputError{Input: t.Name, Reason: "takes its data from shared memory (parameter " + shm.ParamRegion + `), so it must not have "data" or parameter ` + paramBinarySize}
	case !in.haveData && in.binarySize < 0 && in.shared == nil:
		return &core.InputError{Input: t.Name, Reason: `missing "data" (or parameter ` + paramBinarySize + ` for binary data, or ` + shm.ParamRegion + ` for shared memory)`}
	}
	if deferred != nil {
		return d.data(&scanner{buf: deferred}, t, in)
	}
	if in.shared != nil {
		if _, err := d.checkInput(t, in); err != nil {
			return err
		}
		d.shared = append(d.shared, pendingShared{input: in.index, ref: *in.shared})
		return nil
	}
	if in.binarySize >= 0 {
		n, err := d.checkInput(t, in)
		if err != nil {
			return err
		}
		d.pending = append(d.pending, pendingBinary{input: in.index, size: in.binarySize, n: n})
	}
	return nil
}

// shape decodes a shape array of non-negative int64 dimensions.
func (d *inferDecoder) shape(label string) (tensor.Shape, error) {
	shape := tensor.Shape{}
	err := d.s.array(func(i int) error {
		if c := d.s.peek(); c != '-' && (c < '0' || c > '9') {
			return &core.InputError{Input: label, Reason: fmt.Sprintf("shape[%d] must be an integer, found %s", i, d.s.describe())}
		}
		tok, isInt, err := d.s.number()
		if err != nil {
			return err
		}
		v, ok := parseUint(tok)
		if !isInt || tok[0] == '-' || !ok || v > math.MaxInt64 {
			return &core.InputError{Input: label, Reason: fmt.Sprintf("shape[%d] = %s is not a non-negative 64-bit integer", i, tok)}
		}
		if d.limits.MaxRank > 0 && i >= d.limits.MaxRank {
			return &core.InputError{Input: label, Reason: fmt.Sprintf("shape has more than %d dimensions, the rank limit", d.limits.MaxRank)}
		}
		shape = append(shape, int64(v))
		return nil
	})
	return shape, err
}

// output decodes one $request_output.
func (d *inferDecoder) output() error {
	var out core.RequestedOutput
	seen := 0
	err := d.s.object(func(key []byte) error {
		var err error
		switch string(key) {
		case "name":
			if seen&1 != 0 {
				return core.Invalidf("requested output: duplicate field \"name\"")
			}
			seen |= 1
			out.Name, err = d.s.str()
		case "parameters":
			if seen&2 != 0 {
				return core.Invalidf("requested output: duplicate field \"parameters\"")
			}
			seen |= 2
			out.Parameters, err = d.parameters("output")
		default:
			err = d.s.skip()
		}
		return err
	})
	if err != nil {
		return err
	}
	if out.Name == "" {
		return core.Invalidf("outputs[%d]: missing \"name\"", len(d.req.Outputs))
	}
	if !utf8.ValidString(out.Name) {
		return core.Invalidf("outputs[%d]: name %q is not valid UTF-8", len(d.req.Outputs), out.Name)
	}
	what := "output " + strconv.Quote(out.Name)
	if err := checkBoolParam(out.Parameters, paramBinary, what); err != nil {
		return err
	}
	if err := checkSharedOutput(out.Parameters); err != nil {
		return core.Invalidf("%s: %v", what, err)
	}
	d.req.Outputs = append(d.req.Outputs, out)
	return nil
}

// parameters decodes a $parameters object: string, number or boolean values. Integers
// become int64 and other numbers float64, the types core.Parameters documents.
func (d *inferDecoder) parameters(what string) (core.Parameters, error) {
	p := core.Parameters{}
	err := d.s.object(func(key []byte) error {
		k := string(key)
		if _, dup := p[k]; dup {
			return core.Invalidf("%s: duplicate parameter %q", what, k)
		}
		v, err := d.parameterValue(what, k)
		p[k] = v
		return err
	})
	return p, err
}

func (d *inferDecoder) parameterValue(what, k string) (any, error) {
	s := &d.s
	switch c := s.peek(); {
	case c == '"':
		return s.str()
	case c == 't' || c == 'f':
		return s.boolean()
	case c == '-' || (c >= '0' && c <= '9'):
		tok, isInt, err := s.number()
		if err != nil {
			return nil, err
		}
		if isInt {
			if v, err := strconv.ParseInt(string(tok), 10, 64); err == nil {
				return v, nil
			}
		}
		f, err := strconv.ParseFloat(string(tok), 64)
		if err != nil {
			return nil, core.Invalidf("%s: parameter %q: %s is out of range", what, k, tok)
		}
		return f, nil
	}
	return nil, core.Invalidf("%s: parameter %q must be a string, number or boolean, found %s", what, k, s.describe())
}

func checkBoolParam(p core.Parameters, name, what string) error {
	if v, ok := p[name]; ok {
		if _, isBool := v.(bool); !isBool {
			return core.Invalidf("%s: parameter %s must be a boolean, got %v", what, name, v)
		}
	}
	return nil
}
