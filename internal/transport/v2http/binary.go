package v2http

import (
	"fmt"
	"math"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/tensor"
)

// attachBinary gives each pending input its slice of the binary section, in input
// order, as the binary tensor data extension specifies. The slices alias the body.
// hasSection says whether the request had an Inference-Header-Content-Length header
// splitting the body, for a clearer message when it did not.
func attachBinary(req *core.InferRequest, pending []pendingBinary, bin []byte, hasSection bool) error {
	for _, p := range pending {
		t := req.Inputs[p.input]
		if p.size > int64(len(bin)) {
			if !hasSection {
				return &core.InputError{Input: t.Name, Reason: fmt.Sprintf("%s is %d but the request has no binary data (no Inference-Header-Content-Length header)", paramBinarySize, p.size)}
			}
			return &core.InputError{Input: t.Name, Reason: fmt.Sprintf("%s is %d but only %d bytes of binary data remain", paramBinarySize, p.size, len(bin))}
		}
		data := bin[:p.size:p.size]
		bin = bin[p.size:]
		if err := checkBinary(t.Name, t.DType, t.Shape, p.n, data); err != nil {
			return err
		}
		t.Data = data
	}
	if len(bin) > 0 {
		return core.Invalidf("the binary section has %d bytes after the last input's data (check Inference-Header-Content-Length and each %s)", len(bin), paramBinarySize)
	}
	return nil
}

// checkBinary checks raw tensor bytes against the shape: the exact size for fixed-size
// types, well-formed length prefixes and the element count for BYTES.
func checkBinary(name string, dt tensor.DType, shape tensor.Shape, n int64, data []byte) error {
	if dt == tensor.Bytes {
		got, err := tensor.CountBytesElements(data)
		if err != nil {
			return &core.InputError{Input: name, Reason: "binary data: " + err.Error()}
		}
		if got != n {
			return &core.InputError{Input: name, Reason: fmt.Sprintf("shape %v needs %d BYTES elements, binary data has %d", shape, n, got)}
		}
		return nil
	}
	size := int64(dt.Size())
	if n > math.MaxInt64/size || n*size != int64(len(data)) {
		return &core.InputError{Input: name, Reason: fmt.Sprintf("%s %d does not match shape %v of %s (%d elements of %d bytes)", paramBinarySize, len(data), shape, dt, n, size)}
	}
	return nil
}

// rawInput builds the single input of a raw binary request (Inference-Header-Content-Length:
// 0): the body is the tensor's bytes and the shape comes from the model's metadata. As in
// Triton, a batching model gets a batch of 1, at most one other dimension may be
// variable (it is deduced from the body size), and a BYTES input holds exactly one
// element, sent without a length prefix.
func rawInput(body []byte, in core.TensorMetadata, batching bool, limits core.Limits) (*tensor.Tensor, error) {
	dt, err := tensor.ParseDType(in.DataType)
	if err != nil {
		return nil, fmt.Errorf("model metadata of input %q: %w", in.Name, err)
	}
	shape := tensor.Shape(in.Shape).Clone()
	if batching && len(shape) > 0 {
		shape[0] = 1
	}
	var data []byte
	if dt == tensor.Bytes {
		shape, data, err = rawBytes(body, in.Name, shape)
	} else {
		shape, err = rawShape(len(body), in.Name, dt, shape)
		data = body
	}
	if err != nil {
		return nil, err
	}
	if err := limits.CheckShape(in.Name, shape); err != nil {
		return nil, err
	}
	return &tensor.Tensor{Name: in.Name, DType: dt, Shape: shape, Data: data}, nil
}

func rawBytes(body []byte, name string, shape tensor.Shape) (tensor.Shape, []byte, error) {
	for i, d := range shape {
		if d != 1 && d != -1 {
			return nil, nil, &core.InputError{Input: name, Reason: fmt.Sprintf("a raw binary request can carry one BYTES element, but the model's shape is %v; send a JSON header", tensor.Shape(shape))}
		}
		shape[i] = 1
	}
	if uint64(len(body)) > math.MaxUint32 {
		return nil, nil, &core.InputError{Input: name, Reason: fmt.Sprintf("a BYTES element of %d bytes is too long", len(body))}
	}
	return shape, tensor.AppendBytesElement(make([]byte, 0, len(body)+4), body), nil
}

func rawShape(size int, name string, dt tensor.DType, shape tensor.Shape) (tensor.Shape, error) {
	variable := -1
	known := int64(1)
	for i, d := range shape {
		switch {
		case d >= 0:
			if d != 0 && known > math.MaxInt64/d {
				return nil, &core.InputError{Input: name, Reason: fmt.Sprintf("model shape %v overflows", shape)}
			}
			known *= d
		case variable >= 0:
			return nil, &core.InputError{Input: name, Reason: fmt.Sprintf("model shape %v has more than one variable dimension, so a raw binary request cannot give its shape; send a JSON header", shape)}
		default:
			variable = i
		}
	}
	elems := int64(size) / int64(dt.Size())
	if int64(size)%int64(dt.Size()) != 0 {
		return nil, &core.InputError{Input: name, Reason: fmt.Sprintf("raw binary body of %d bytes is not a whole number of %s elements", size, dt)}
	}
	if variable >= 0 {
		if known == 0 || elems%known != 0 {
			return nil, &core.InputError{Input: name, Reason: fmt.Sprintf("raw binary body of %d %s elements does not fit model shape %v", elems, dt, shape)}
		}
		shape[variable] = elems / known
	} else if elems != known {
		return nil, &core.InputError{Input: name, Reason: fmt.Sprintf("raw binary body has %d %s elements, model shape %v needs %d", elems, dt, shape, known)}
	}
	return shape, nil
}
