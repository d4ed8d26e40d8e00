package onnxgen

// DataType is an ONNX tensor element type: the TensorProto.DataType enum of
// onnx.proto, used both for TypeProto.Tensor.elem_type and
// TensorProto.data_type.
type DataType int32

// The element types of onnx.proto. The values are fixed by the schema.
const (
	Undefined DataType = 0
	Float     DataType = 1  // float32
	Uint8     DataType = 2  //
	Int8      DataType = 3  //
	Uint16    DataType = 4  //
	Int16     DataType = 5  //
	Int32     DataType = 6  //
	Int64     DataType = 7  //
	String    DataType = 8  // variable-length UTF-8 (or arbitrary bytes)
	Bool      DataType = 9  // one byte per element
	Float16   DataType = 10 // IEEE 754 half precision
	Double    DataType = 11 // float64
	Uint32    DataType = 12 //
	Uint64    DataType = 13 //
	BFloat16  DataType = 16 // bfloat16 (ONNX supports it; KServe V2 has BF16 too)
)

// dataTypeNames maps each type to its onnx.proto enum name and its KServe V2
// (Triton) datatype name.
var dataTypeNames = map[DataType][2]string{
	Float:    {"FLOAT", "FP32"},
	Uint8:    {"UINT8", "UINT8"},
	Int8:     {"INT8", "INT8"},
	Uint16:   {"UINT16", "UINT16"},
	Int16:    {"INT16", "INT16"},
	Int32:    {"INT32", "INT32"},
	Int64:    {"INT64", "INT64"},
	String:   {"STRING", "BYTES"},
	Bool:     {"BOOL", "BOOL"},
	Float16:  {"FLOAT16", "FP16"},
	Double:   {"DOUBLE", "FP64"},
	Uint32:   {"UINT32", "UINT32"},
	Uint64:   {"UINT64", "UINT64"},
	BFloat16: {"BFLOAT16", "BF16"},
}

// String returns the onnx.proto name of the type ("FLOAT", "INT32", ...).
func (d DataType) String() string {
	if n, ok := dataTypeNames[d]; ok {
		return n[0]
	}
	return "UNDEFINED"
}

// V2Name returns the KServe V2 / Triton datatype name of the type ("FP32",
// "BYTES", ...), or "" if V2 has no equivalent.
func (d DataType) V2Name() string { return dataTypeNames[d][1] }

// DataTypeFromV2 returns the ONNX type for a KServe V2 datatype name
// ("FP32", "BYTES", ...).
func DataTypeFromV2(name string) (DataType, bool) {
	for d, n := range dataTypeNames {
		if n[1] == name {
			return d, true
		}
	}
	return Undefined, false
}

// V2Types returns the ONNX element types that the KServe V2 protocol can
// carry, each of which ONNX Runtime's Identity kernel supports. BFloat16 is
// left out because only Triton (as "BF16"), not the V2 spec, has it, though
// ONNX Runtime 1.30's CPU Identity handles it too.
func V2Types() []DataType {
	return []DataType{
		Bool, Uint8, Uint16, Uint32, Uint64, Int8, Int16, Int32, Int64,
		Float16, Float, Double, String,
	}
}
