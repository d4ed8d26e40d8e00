package tensor

import "fmt"

// DType is a V2 (Open Inference Protocol) tensor datatype.
type DType uint8

// The V2 datatypes. Invalid is the zero value so an unset DType is never mistaken for one.
const (
	Invalid DType = iota
	Bool
	Uint8
	Uint16
	Uint32
	Uint64
	Int8
	Int16
	Int32
	Int64
	FP16
	FP32
	FP64
	BF16
	Bytes
)

var dtypeNames = [...]string{
	Invalid: "INVALID", Bool: "BOOL", Uint8: "UINT8", Uint16: "UINT16", Uint32: "UINT32",
	Uint64: "UINT64", Int8: "INT8", Int16: "INT16", Int32: "INT32", Int64: "INT64",
	FP16: "FP16", FP32: "FP32", FP64: "FP64", BF16: "BF16", Bytes: "BYTES",
}

var dtypeSizes = [...]int{
	Bool: 1, Uint8: 1, Uint16: 2, Uint32: 4, Uint64: 8, Int8: 1, Int16: 2, Int32: 4,
	Int64: 8, FP16: 2, FP32: 4, FP64: 8, BF16: 2, Bytes: 0,
}

// String returns the V2 name ("FP32", "BYTES", ...).
func (d DType) String() string {
	if int(d) < len(dtypeNames) {
		return dtypeNames[d]
	}
	return fmt.Sprintf("DType(%d)", uint8(d))
}

// Size is the width of one element in bytes; 0 for BYTES, whose elements vary.
func (d DType) Size() int {
	if int(d) < len(dtypeSizes) {
		return dtypeSizes[d]
	}
	return 0
}

// Valid reports whether d is one of the V2 datatypes.
func (d DType) Valid() bool { return d > Invalid && d <= Bytes }

// ParseDType maps a V2 datatype name to its DType.
func ParseDType(s string) (DType, error) {
	for d := Bool; d <= Bytes; d++ {
		if dtypeNames[d] == s {
			return d, nil
		}
	}
	return Invalid, fmt.Errorf("unknown datatype %q", s)
}
