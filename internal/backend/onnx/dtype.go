package onnx

import (
	"fmt"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/ferryml/ferry/internal/tensor"
)

// dtypeOf maps an ONNX tensor element type to its V2 datatype; ok is false for
// the ONNX types V2 cannot carry (complex, float8, int4, ...).
func dtypeOf(t ort.TensorElementDataType) (d tensor.DType, ok bool) {
	switch t {
	case ort.TensorElementDataTypeBool:
		return tensor.Bool, true
	case ort.TensorElementDataTypeUint8:
		return tensor.Uint8, true
	case ort.TensorElementDataTypeUint16:
		return tensor.Uint16, true
	case ort.TensorElementDataTypeUint32:
		return tensor.Uint32, true
	case ort.TensorElementDataTypeUint64:
		return tensor.Uint64, true
	case ort.TensorElementDataTypeInt8:
		return tensor.Int8, true
	case ort.TensorElementDataTypeInt16:
		return tensor.Int16, true
	case ort.TensorElementDataTypeInt32:
		return tensor.Int32, true
	case ort.TensorElementDataTypeInt64:
		return tensor.Int64, true
	case ort.TensorElementDataTypeFloat16:
		return tensor.FP16, true
	case ort.TensorElementDataTypeFloat:
		return tensor.FP32, true
	case ort.TensorElementDataTypeDouble:
		return tensor.FP64, true
	case ort.TensorElementDataTypeBFloat16:
		return tensor.BF16, true
	case ort.TensorElementDataTypeString:
		return tensor.Bytes, true
	}
	return tensor.Invalid, false
}

// elementType is the inverse of dtypeOf.
func elementType(d tensor.DType) ort.TensorElementDataType {
	switch d {
	case tensor.Bool:
		return ort.TensorElementDataTypeBool
	case tensor.Uint8:
		return ort.TensorElementDataTypeUint8
	case tensor.Uint16:
		return ort.TensorElementDataTypeUint16
	case tensor.Uint32:
		return ort.TensorElementDataTypeUint32
	case tensor.Uint64:
		return ort.TensorElementDataTypeUint64
	case tensor.Int8:
		return ort.TensorElementDataTypeInt8
	case tensor.Int16:
		return ort.TensorElementDataTypeInt16
	case tensor.Int32:
		return ort.TensorElementDataTypeInt32
	case tensor.Int64:
		return ort.TensorElementDataTypeInt64
	case tensor.FP16:
		return ort.TensorElementDataTypeFloat16
	case tensor.FP32:
		return ort.TensorElementDataTypeFloat
	case tensor.FP64:
		return ort.TensorElementDataTypeDouble
	case tensor.BF16:
		return ort.TensorElementDataTypeBFloat16
	case tensor.Bytes:
		return ort.TensorElementDataTypeString
	}
	return ort.TensorElementDataTypeUndefined
}

// onnxTypeName names an ONNX element type the way onnx.proto does ("FLOAT16"),
// for messages about types V2 has no name for.
func onnxTypeName(t ort.TensorElementDataType) string {
	const prefix = "ONNX_TENSOR_ELEMENT_DATA_TYPE_"
	s := t.String()
	if len(s) > len(prefix) && s[:len(prefix)] == prefix {
		return s[len(prefix):]
	}
	return fmt.Sprintf("element type %d", int(t))
}
