package modelconfig

import (
	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/internal/tensor"
)

// configToV2 maps Triton's TYPE_* enum to V2 datatypes; TYPE_STRING is BYTES.
var configToV2 = [...]tensor.DType{
	inference.DataType_TYPE_BOOL:   tensor.Bool,
	inference.DataType_TYPE_UINT8:  tensor.Uint8,
	inference.DataType_TYPE_UINT16: tensor.Uint16,
	inference.DataType_TYPE_UINT32: tensor.Uint32,
	inference.DataType_TYPE_UINT64: tensor.Uint64,
	inference.DataType_TYPE_INT8:   tensor.Int8,
	inference.DataType_TYPE_INT16:  tensor.Int16,
	inference.DataType_TYPE_INT32:  tensor.Int32,
	inference.DataType_TYPE_INT64:  tensor.Int64,
	inference.DataType_TYPE_FP16:   tensor.FP16,
	inference.DataType_TYPE_FP32:   tensor.FP32,
	inference.DataType_TYPE_FP64:   tensor.FP64,
	inference.DataType_TYPE_STRING: tensor.Bytes,
	inference.DataType_TYPE_BF16:   tensor.BF16,
}

// v2ToConfig is the inverse of configToV2.
var v2ToConfig = [...]inference.DataType{
	tensor.Bool:   inference.DataType_TYPE_BOOL,
	tensor.Uint8:  inference.DataType_TYPE_UINT8,
	tensor.Uint16: inference.DataType_TYPE_UINT16,
	tensor.Uint32: inference.DataType_TYPE_UINT32,
	tensor.Uint64: inference.DataType_TYPE_UINT64,
	tensor.Int8:   inference.DataType_TYPE_INT8,
	tensor.Int16:  inference.DataType_TYPE_INT16,
	tensor.Int32:  inference.DataType_TYPE_INT32,
	tensor.Int64:  inference.DataType_TYPE_INT64,
	tensor.FP16:   inference.DataType_TYPE_FP16,
	tensor.FP32:   inference.DataType_TYPE_FP32,
	tensor.FP64:   inference.DataType_TYPE_FP64,
	tensor.BF16:   inference.DataType_TYPE_BF16,
	tensor.Bytes:  inference.DataType_TYPE_STRING,
}

// DType converts a config data type (TYPE_FP32, ...) to its V2 datatype
// (TYPE_STRING is BYTES). TYPE_INVALID and values outside the enum give
// tensor.Invalid.
func DType(t inference.DataType) tensor.DType {
	if t < 0 || int(t) >= len(configToV2) {
		return tensor.Invalid
	}
	return configToV2[t]
}

// ConfigType converts a V2 datatype to the config data type (BYTES is
// TYPE_STRING). tensor.Invalid and unknown values give TYPE_INVALID.
func ConfigType(d tensor.DType) inference.DataType {
	if int(d) >= len(v2ToConfig) {
		return inference.DataType_TYPE_INVALID
	}
	return v2ToConfig[d]
}
