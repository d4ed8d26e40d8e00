package onnx

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// dim is one dimension of a graph input or output as the model file declares
// it: a fixed size, a symbolic name (dim_param), or neither.
type dim struct {
	value int64
	param string
	fixed bool
}

// valueShape is a declared shape; known is false when the model gives none
// (ONNX Runtime then reports rank 0, the same as for a scalar).
type valueShape struct {
	dims  []dim
	known bool
}

// graphShapes holds the declared shapes of a model's graph inputs and outputs,
// by name.
type graphShapes struct {
	inputs, outputs map[string]valueShape
}

// Field numbers from onnx.proto (frozen by the ONNX schema).
const (
	modelGraph      = 7  // ModelProto.graph
	graphInput      = 11 // GraphProto.input
	graphOutput     = 12 // GraphProto.output
	valueInfoName   = 1  // ValueInfoProto.name
	valueInfoType   = 2  // ValueInfoProto.type
	typeTensor      = 1  // TypeProto.tensor_type
	tensorTypeShape = 2  // TypeProto.Tensor.shape
	shapeDim        = 1  // TensorShapeProto.dim
	dimValue        = 1  // TensorShapeProto.Dimension.dim_value
	dimParam        = 2  // TensorShapeProto.Dimension.dim_param

	graphNode              = 1  // GraphProto.node
	nodeOpType             = 4  // NodeProto.op_type
	graphInitializer       = 5  // GraphProto.initializer
	graphSparseInitializer = 15 // GraphProto.sparse_initializer
	tensorName             = 8  // TensorProto.name
	sparseValues           = 1  // SparseTensorProto.values
	tensorElemType         = 1  // TypeProto.Tensor.elem_type
	typeSequence           = 4  // TypeProto.sequence_type
	typeMap                = 5  // TypeProto.map_type
	typeOpaque             = 7  // TypeProto.opaque_type
	typeSparseTensor       = 8  // TypeProto.sparse_tensor_type
	typeOptional           = 9  // TypeProto.optional_type
)

var errProto = errors.New("malformed ONNX protobuf")

func parseDim(b []byte) (dim, error) {
	var d dim
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return d, errProto
		}
		b = b[n:]
		switch {
		case num == dimValue && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return d, errProto
			}
			d.value, d.fixed = int64(v), true
			b = b[n:]
			continue
		case num == dimParam && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return d, errProto
			}
			d.param = string(v)
			b = b[n:]
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return d, errProto
		}
		b = b[n:]
	}
	return d, nil
}

// eachField calls f with the number and contents of every length-delimited
// field of the message b, skipping fields of other wire types.
func eachField(b []byte, f func(num protowire.Number, v []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("%w: bad tag", errProto)
		}
		b = b[n:]
		if typ != protowire.BytesType {
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return fmt.Errorf("%w: bad field %d", errProto, num)
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return fmt.Errorf("%w: bad field %d", errProto, num)
		}
		b = b[n:]
		if err := f(num, v); err != nil {
			return err
		}
	}
	return nil
}
