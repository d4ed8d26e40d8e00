package v2grpc

import (
	"encoding/binary"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/internal/shm"
	"github.com/ferryml/ferry/internal/tensor"
)

// decodeInfer converts a ModelInferRequest into core's request. Every input is checked
// against its own datatype and shape and against lim before any tensor data is
// allocated; raw_input_contents are used in place, without copying. Inputs in shared
// memory are copied out of their regions.
func decodeInfer(req *inference.ModelInferRequest, lim core.Limits, regions *shm.Registry) (*core.InferRequest, error) {
	inputs, raw := req.GetInputs(), req.GetRawInputContents()
	shared, err := sharedInputs(inputs)
	if err != nil {
		return nil, err
	}
	if err := checkRawCount(len(raw), len(inputs), len(shared)); err != nil {
		return nil, err
	}
	params, err := decodeParams(req.GetParameters())
	if err != nil {
		return nil, core.Invalidf("request %v", err)
	}
	out := &core.InferRequest{
		Model:      req.GetModelName(),
		Version:    req.GetModelVersion(),
		ID:         req.GetId(),
		Parameters: params,
		Inputs:     make([]*tensor.Tensor, len(inputs)),
	}
	seen := make(map[string]bool, len(inputs))
	next := 0 // the next raw_input_contents entry
	for i, in := range inputs {
		var t *tensor.Tensor
		if ref, ok := shared[i]; ok {
			t, err = decodeSharedInput(i, in, ref, lim, regions)
		} else {
			var data []byte
			if len(raw) > 0 {
				data = raw[next]
				next++
			}
			t, err = decodeInput(i, in, len(raw) > 0, data, lim)
		}
		if err != nil {
			return nil, err
		}
		if seen[t.Name] {
			return nil, &core.InputError{Input: t.Name, Reason: "appears more than once in inputs"}
		}
		seen[t.Name] = true
		out.Inputs[i] = t
	}
	out.Outputs, err = decodeOutputs(req.GetOutputs())
	if err != nil {
		return nil, err
	}
	return out, nil
}

// checkRawCount applies Triton's rule: raw_input_contents carries every input that is
// not in shared memory, in order, or none.
func checkRawCount(raw, inputs, shared int) error {
	switch {
	case raw == 0 || raw == inputs-shared:
		return nil
	case shared == 0:
		return core.Invalidf("raw_input_contents has %d entries for %d inputs; it must hold one entry per input, in the order of inputs, or none", raw, inputs)
	}
	return core.Invalidf("raw_input_contents has %d entries for %d inputs not in shared memory; it must hold one entry per such input, in the order of inputs, or none", raw, inputs-shared)
}

func decodeOutputs(outs []*inference.ModelInferRequest_InferRequestedOutputTensor) ([]core.RequestedOutput, error) {
	if len(outs) == 0 {
		return nil, nil
	}
	res := make([]core.RequestedOutput, len(outs))
	seen := make(map[string]bool, len(outs))
	for i, o := range outs {
		name := o.GetName()
		if name == "" {
			return nil, core.Invalidf("outputs[%d]: name is required", i)
		}
		if seen[name] {
			return nil, core.Invalidf("output %q is requested more than once", name)
		}
		seen[name] = true
		params, err := decodeParams(o.GetParameters())
		if err == nil {
			_, _, err = shm.OutputRefOf(params)
		}
		if err != nil {
			return nil, core.Invalidf("output %q: %v", name, err)
		}
		res[i] = core.RequestedOutput{Name: name, Parameters: params}
	}
	return res, nil
}

// decodeInput checks and converts inputs[i]. useRaw says the request carries its data in
// raw_input_contents, of which raw is this input's entry.
func decodeInput(i int, in *inference.ModelInferRequest_InferInputTensor, useRaw bool, raw []byte, lim core.Limits) (*tensor.Tensor, error) {
	t, n, err := inputHead(i, in, lim)
	if err != nil {
		return nil, err
	}
	name, dt, shape := t.Name, t.DType, t.Shape
	bad := func(format string, args ...any) error {
		return &core.InputError{Input: name, Reason: fmt.Sprintf(format, args...)}
	}
	var data []byte
	if useRaw {
		if in.GetContents() != nil {
			return nil, bad("contents must not be set when the request uses raw_input_contents")
		}
		data, err = rawData(i, dt, shape, n, raw)
	} else {
		data, err = typedData(dt, shape, n, in.GetContents())
	}
	if err != nil {
		return nil, bad("%v", err)
	}
	t.Data = data
	return t, nil
}

// inputHead checks inputs[i]'s name, datatype and shape (against lim) and returns the
// tensor without data, and its element count.
func inputHead(i int, in *inference.ModelInferRequest_InferInputTensor, lim core.Limits) (*tensor.Tensor, int64, error) {
	name := in.GetName()
	if name == "" {
		return nil, 0, core.Invalidf("inputs[%d]: name is required", i)
	}
	dt, err := tensor.ParseDType(in.GetDatatype())
	if err != nil {
		return nil, 0, &core.InputError{Input: name, Reason: err.Error()}
	}
	shape := tensor.Shape(in.GetShape())
	if err := lim.CheckShape(name, shape); err != nil {
		return nil, 0, err
	}
	n, err := shape.NumElements() // cannot fail after CheckShape; kept for safety
	if err != nil {
		return nil, 0, &core.InputError{Input: name, Reason: err.Error()}
	}
	return &tensor.Tensor{Name: name, DType: dt, Shape: shape}, n, nil
}

// rawData checks raw_input_contents[i] against the shape: the exact byte size for
// fixed-size types, whole length prefixes and the element count for BYTES.
func rawData(i int, dt tensor.DType, shape tensor.Shape, n int64, raw []byte) ([]byte, error) {
	if dt == tensor.Bytes {
		got, err := tensor.CountBytesElements(raw)
		if err != nil {
			return nil, fmt.Errorf("raw_input_contents[%d]: %w", i, err)
		}
		if got != n {
			return nil, fmt.Errorf("shape %v needs %d BYTES elements, raw_input_contents[%d] holds %d", shape, n, i, got)
		}
		return raw, nil
	}
	size := int64(dt.Size())
	if n > math.MaxInt64/size {
		return nil, fmt.Errorf("shape %v of %s: byte size overflows", shape, dt)
	}
	if want := n * size; int64(len(raw)) != want {
		return nil, fmt.Errorf("raw_input_contents[%d] has %d bytes, shape %v of %s needs %d", i, len(raw), shape, dt, want)
	}
	return raw, nil
}

// contentsField names the InferTensorContents field that carries each datatype, as
// Triton's grpc_service.proto assigns them. FP16 and BF16 have none: raw only.
var contentsField = map[tensor.DType]string{
	tensor.Bool: "bool_contents", tensor.Int8: "int_contents", tensor.Int16: "int_contents",
	tensor.Int32: "int_contents", tensor.Int64: "int64_contents", tensor.Uint8: "uint_contents",
	tensor.Uint16: "uint_contents", tensor.Uint32: "uint_contents", tensor.Uint64: "uint64_contents",
	tensor.FP32: "fp32_contents", tensor.FP64: "fp64_contents", tensor.Bytes: "bytes_contents",
}

// typedData converts typed contents to raw little-endian bytes. The value count is
// checked against the shape first, so the allocation is bounded by what the client
// actually sent; narrow integer types are range-checked instead of truncated.
func typedData(dt tensor.DType, shape tensor.Shape, n int64, c *inference.InferTensorContents) ([]byte, error) {
	if c == nil {
		if n == 0 {
			return nil, nil
		}
		return nil, fmt.Errorf("no data: set contents or raw_input_contents")
	}
	counts := []struct {
		field string
		n     int
	}{
		{"bool_contents", len(c.BoolContents)}, {"int_contents", len(c.IntContents)},
		{"int64_contents", len(c.Int64Contents)}, {"uint_contents", len(c.UintContents)},
		{"uint64_contents", len(c.Uint64Contents)}, {"fp32_contents", len(c.Fp32Contents)},
		{"fp64_contents", len(c.Fp64Contents)}, {"bytes_contents", len(c.BytesContents)},
	}
	want, ok := contentsField[dt]
	got := 0
	for _, f := range counts {
		switch {
		case f.n == 0:
		case !ok:
			return nil, fmt.Errorf("%s data can only be sent in raw_input_contents, got %s", dt, f.field)
		case f.field != want:
			return nil, fmt.Errorf("datatype %s takes %s, got %s", dt, want, f.field)
		default:
			got = f.n
		}
	}
	if int64(got) != n {
		if !ok {
			return nil, fmt.Errorf("%s data can only be sent in raw_input_contents", dt)
		}
		return nil, fmt.Errorf("shape %v needs %d values, got %d in %s", shape, n, got, want)
	}
	if n == 0 {
		return nil, nil
	}
	return convertTyped(dt, c)
}

func convertTyped(dt tensor.DType, c *inference.InferTensorContents) ([]byte, error) {
	le := binary.LittleEndian
	switch dt {
	case tensor.Bool:
		out := make([]byte, len(c.BoolContents))
		for i, v := range c.BoolContents {
			if v {
				out[i] = 1
			}
		}
		return out, nil
	case tensor.Int8, tensor.Int16, tensor.Int32:
		return convertInts(dt, c.IntContents)
	case tensor.Uint8, tensor.Uint16, tensor.Uint32:
		return convertUints(dt, c.UintContents)
	case tensor.Int64:
		out := make([]byte, 0, 8*len(c.Int64Contents))
		for _, v := range c.Int64Contents {
			out = le.AppendUint64(out, uint64(v))
		}
		return out, nil
	case tensor.Uint64:
		out := make([]byte, 0, 8*len(c.Uint64Contents))
		for _, v := range c.Uint64Contents {
			out = le.AppendUint64(out, v)
		}
		return out, nil
	case tensor.FP32:
		out := make([]byte, 0, 4*len(c.Fp32Contents))
		for _, v := range c.Fp32Contents {
			out = le.AppendUint32(out, math.Float32bits(v))
		}
		return out, nil
	case tensor.FP64:
		out := make([]byte, 0, 8*len(c.Fp64Contents))
		for _, v := range c.Fp64Contents {
			out = le.AppendUint64(out, math.Float64bits(v))
		}
		return out, nil
	case tensor.Bytes:
		size := 0
		for _, e := range c.BytesContents {
			size += 4 + len(e)
		}
		out := make([]byte, 0, size)
		for _, e := range c.BytesContents {
			out = tensor.AppendBytesElement(out, e)
		}
		return out, nil
	}
	return nil, fmt.Errorf("%s data can only be sent in raw_input_contents", dt)
}

func convertInts(dt tensor.DType, vs []int32) ([]byte, error) {
	lo, hi := int32(math.MinInt32), int32(math.MaxInt32)
	switch dt {
	case tensor.Int8:
		lo, hi = math.MinInt8, math.MaxInt8
	case tensor.Int16:
		lo, hi = math.MinInt16, math.MaxInt16
	}
	out := make([]byte, 0, dt.Size()*len(vs))
	for i, v := range vs {
		if v < lo || v > hi {
			return nil, fmt.Errorf("int_contents[%d] = %d is out of range for %s", i, v, dt)
		}
		out = appendLE(out, uint64(uint32(v)), dt.Size())
	}
	return out, nil
}

func convertUints(dt tensor.DType, vs []uint32) ([]byte, error) {
	hi := uint32(math.MaxUint32)
	switch dt {
	case tensor.Uint8:
		hi = math.MaxUint8
	case tensor.Uint16:
		hi = math.MaxUint16
	}
	out := make([]byte, 0, dt.Size()*len(vs))
	for i, v := range vs {
		if v > hi {
			return nil, fmt.Errorf("uint_contents[%d] = %d is out of range for %s", i, v, dt)
		}
		out = appendLE(out, uint64(v), dt.Size())
	}
	return out, nil
}

// appendLE appends the low size bytes of v, little-endian.
func appendLE(b []byte, v uint64, size int) []byte {
	for range size {
		b = append(b, byte(v))
		v >>= 8
	}
	return b
}

// sharedInputs reads the shared memory parameters of every input: the Ref of each input
// in shared memory, by index (nil when none is).
func sharedInputs(inputs []*inference.ModelInferRequest_InferInputTensor) (map[int]shm.Ref, error) {
	var refs map[int]shm.Ref
	for i, in := range inputs {
		ref, ok, err := sharedRef(in.GetParameters())
		if err != nil {
			return nil, &core.InputError{Input: inputLabel(i, in), Reason: err.Error()}
		}
		if ok {
			if refs == nil {
				refs = map[int]shm.Ref{}
			}
			refs[i] = ref
		}
	}
	return refs, nil
}

// sharedRef reads a tensor's shared memory parameters; ok is false when it has none.
func sharedRef(params map[string]*inference.InferParameter) (shm.Ref, bool, error) {
	found := false // look before decoding, which sorts and allocates, for every input of every request
	for k := range params {
		found = found || strings.HasPrefix(k, "shared_memory_")
	}
	if !found {
		return shm.Ref{}, false, nil
	}
	p, err := decodeParams(params)
	if err != nil {
		return shm.Ref{}, false, err
	}
	return shm.RefOf(p)
}

func inputLabel(i int, in *inference.ModelInferRequest_InferInputTensor) string {
	if in.GetName() != "" {
		return in.GetName()
	}
	return fmt.Sprintf("inputs[%d]", i)
}

// decodeSharedInput checks inputs[i] and copies its data out of its region. As in
// Triton, an input in shared memory must not also carry contents. A BYTES input may be
// as large as a gRPC message.
func decodeSharedInput(i int, in *inference.ModelInferRequest_InferInputTensor, ref shm.Ref, lim core.Limits, regions *shm.Registry) (*tensor.Tensor, error) {
	t, _, err := inputHead(i, in, lim)
	if err != nil {
		return nil, err
	}
	if in.GetContents() != nil {
		return nil, &core.InputError{Input: t.Name, Reason: "takes its data from shared memory (parameter " + shm.ParamRegion + "), so contents must not be set"}
	}
	if t.Data, err = regions.ReadTensor(ref, t.DType, t.Shape, int64(lim.MaxGRPCMessageSize)); err != nil {
		return nil, &core.InputError{Input: t.Name, Reason: err.Error()}
	}
	return t, nil
}

// decodeParams converts InferParameters to core.Parameters (bool, int64, float64,
// string). A uint64 becomes an int64 when it fits and is refused when it does not.
func decodeParams(params map[string]*inference.InferParameter) (core.Parameters, error) {
	if len(params) == 0 {
		return nil, nil
	}
	out := make(core.Parameters, len(params))
	for _, k := range slices.Sorted(maps.Keys(params)) {
		switch v := params[k].GetParameterChoice().(type) {
		case *inference.InferParameter_BoolParam:
			out[k] = v.BoolParam
		case *inference.InferParameter_Int64Param:
			out[k] = v.Int64Param
		case *inference.InferParameter_StringParam:
			out[k] = v.StringParam
		case *inference.InferParameter_DoubleParam:
			out[k] = v.DoubleParam
		case *inference.InferParameter_Uint64Param:
			if v.Uint64Param > math.MaxInt64 {
				return nil, fmt.Errorf("parameter %q: uint64 value %d does not fit in int64", k, v.Uint64Param)
			}
			out[k] = int64(v.Uint64Param)
		default:
			return nil, fmt.Errorf("parameter %q has no value", k)
		}
	}
	return out, nil
}
