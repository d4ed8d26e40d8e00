package onnx

import (
	"fmt"
	"runtime"
	"unsafe"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/ferryml/ferry/internal/tensor"
)

// inputValue wraps a validated input tensor as an ONNX Runtime value. Numeric
// tensors alias t.Data (pinned in pin) unless it is misaligned for its element
// type. The caller destroys the value.
func inputValue(t *tensor.Tensor, pin *runtime.Pinner, strs *stringAPI) (ort.Value, error) {
	if t.DType == tensor.Bytes {
		return stringValue(t, strs)
	}
	if t.DType == tensor.Bool {
		// Any other byte is neither a C++ nor a Go bool; refuse it rather
		// than guess.
		for i, b := range t.Data {
			if b > 1 {
				return nil, inputErr(t.Name, "BOOL element %d is byte %d, want 0 or 1", i, b)
			}
		}
	}
	if len(t.Shape) == 0 {
		return scalarValue(t.DType, t.Data, t.Name)
	}
	data := t.Data
	if len(data) == 0 {
		// The binding refuses an empty buffer even for a zero-size shape.
		data = alignedBytes(1)
	} else if uintptr(unsafe.Pointer(&data[0]))%uintptr(t.DType.Size()) != 0 {
		data = append(alignedBytes(len(data))[:0], data...)
	}
	pin.Pin(&data[0])
	v, err := ort.NewCustomDataTensor(ort.Shape(t.Shape), data, elementType(t.DType))
	if err != nil {
		return nil, fmt.Errorf("onnx: input %q: %w", t.Name, err)
	}
	return v, nil
}

// stringValue copies a BYTES tensor into an ONNX STRING tensor. Each element
// is copied by its length (strs), so elements may hold NUL bytes and any other
// byte; ONNX Runtime's strings are byte strings.
func stringValue(t *tensor.Tensor, strs *stringAPI) (ort.Value, error) {
	if len(t.Shape) == 0 {
		return nil, inputErr(t.Name, "a rank-0 BYTES tensor is not supported by the onnx backend")
	}
	elems, err := tensor.BytesElements(t.Data)
	if err != nil {
		return nil, inputErr(t.Name, "%v", err)
	}
	v, err := ort.NewStringTensor(ort.Shape(t.Shape))
	if err != nil {
		return nil, fmt.Errorf("onnx: input %q: %w", t.Name, err)
	}
	if err := strs.fill(v, t.Data, elems); err != nil {
		v.Destroy()
		return nil, fmt.Errorf("onnx: input %q: %w", t.Name, err)
	}
	return v, nil
}

// scalarValue makes a rank-0 tensor holding the one element in raw.
func scalarValue(d tensor.DType, raw []byte, name string) (ort.Value, error) {
	var v ort.Value
	var err error
	switch d {
	case tensor.Bool:
		v, err = scalar[bool](raw)
	case tensor.Uint8:
		v, err = scalar[uint8](raw)
	case tensor.Uint16:
		v, err = scalar[uint16](raw)
	case tensor.Uint32:
		v, err = scalar[uint32](raw)
	case tensor.Uint64:
		v, err = scalar[uint64](raw)
	case tensor.Int8:
		v, err = scalar[int8](raw)
	case tensor.Int16:
		v, err = scalar[int16](raw)
	case tensor.Int32:
		v, err = scalar[int32](raw)
	case tensor.Int64:
		v, err = scalar[int64](raw)
	case tensor.FP32:
		v, err = scalar[float32](raw)
	case tensor.FP64:
		v, err = scalar[float64](raw)
	default:
		return nil, inputErr(name, "a rank-0 %s tensor is not supported by the onnx backend (onnxruntime_go v1.27)", d)
	}
	if err != nil {
		return nil, fmt.Errorf("onnx: tensor %q: %w", name, err)
	}
	return v, nil
}

func scalar[T ort.TensorData](raw []byte) (ort.Value, error) {
	var x T
	copy(bytesOf(unsafe.Slice(&x, 1)), raw)
	return ort.NewScalar(x)
}

// preallocated is an output buffer Execute made because the binding cannot
// return the output from ONNX Runtime's memory.
type preallocated struct {
	value ort.Value
	data  []byte // the tensor's bytes (nil for a scalar: read from value)
	shape tensor.Shape
}

// preallocate sizes output o from the request's inputs and allocates it.
func preallocate(o outputSpec, in []*tensor.Tensor, pin *runtime.Pinner) (preallocated, error) {
	shape := make(tensor.Shape, len(o.dims))
	for a, d := range o.dims {
		if d.input < 0 {
			shape[a] = d.size
			continue
		}
		t := in[d.input]
		if d.axis >= len(t.Shape) {
			return preallocated{}, outputErr(o.Name, "its dimension %d follows dimension %d of input %q, which has rank %d", a, d.axis, t.Name, len(t.Shape))
		}
		shape[a] = t.Shape[d.axis]
	}
	if len(shape) == 0 {
		v, err := scalarValue(o.DType, nil, o.Name)
		return preallocated{value: v, shape: shape}, err
	}
	n, err := shape.NumElements()
	if err != nil {
		return preallocated{}, outputErr(o.Name, "%v", err)
	}
	size := int(n) * o.DType.Size()
	buf := alignedBytes(max(size, 1))
	pin.Pin(&buf[0])
	v, err := ort.NewCustomDataTensor(ort.Shape(shape), buf, elementType(o.DType))
	if err != nil {
		return preallocated{}, fmt.Errorf("onnx: output %q: %w", o.Name, err)
	}
	return preallocated{value: v, data: buf[:size:size], shape: shape}, nil
}

// outputTensor turns output value v into a tensor that owns its data. For an
// ONNX-Runtime-allocated output the binding has already copied the data into
// a Go slice, which is reused as is.
func outputTensor(o outputSpec, v ort.Value, p preallocated) (*tensor.Tensor, error) {
	if v == nil {
		return nil, fmt.Errorf("onnx: output %q: the run returned no value", o.Name)
	}
	if p.value != nil && p.data != nil {
		return &tensor.Tensor{Name: o.Name, DType: o.DType, Shape: p.shape, Data: p.data}, nil
	}
	dt, data, err := valueBytes(v)
	if err != nil {
		return nil, fmt.Errorf("onnx: output %q: %w", o.Name, err)
	}
	if dt != o.DType {
		return nil, fmt.Errorf("onnx: output %q: the run returned %s, the model declares %s", o.Name, dt, o.DType)
	}
	shape := tensor.Shape(v.GetShape())
	if p.value != nil {
		shape = p.shape
	}
	if shape == nil {
		shape = tensor.Shape{}
	}
	return &tensor.Tensor{Name: o.Name, DType: dt, Shape: shape, Data: data}, nil
}

// valueBytes returns the datatype and raw bytes of a value the binding
// returned, without copying numeric data again.
func valueBytes(v ort.Value) (tensor.DType, []byte, error) {
	switch v := v.(type) {
	case *ort.Tensor[bool]:
		return tensor.Bool, bytesOf(v.GetData()), nil
	case *ort.Tensor[uint8]:
		return tensor.Uint8, bytesOf(v.GetData()), nil
	case *ort.Tensor[uint16]:
		return tensor.Uint16, bytesOf(v.GetData()), nil
	case *ort.Tensor[uint32]:
		return tensor.Uint32, bytesOf(v.GetData()), nil
	case *ort.Tensor[uint64]:
		return tensor.Uint64, bytesOf(v.GetData()), nil
	case *ort.Tensor[int8]:
		return tensor.Int8, bytesOf(v.GetData()), nil
	case *ort.Tensor[int16]:
		return tensor.Int16, bytesOf(v.GetData()), nil
	case *ort.Tensor[int32]:
		return tensor.Int32, bytesOf(v.GetData()), nil
	case *ort.Tensor[int64]:
		return tensor.Int64, bytesOf(v.GetData()), nil
	case *ort.Tensor[float32]:
		return tensor.FP32, bytesOf(v.GetData()), nil
	case *ort.Tensor[float64]:
		return tensor.FP64, bytesOf(v.GetData()), nil
	case *ort.StringTensor:
		return stringBytes(v)
	}
	return scalarBytes(v)
}

func scalarBytes(v ort.Value) (tensor.DType, []byte, error) {
	switch v := v.(type) {
	case *ort.Scalar[bool]:
		return tensor.Bool, elemBytes(v.GetData()), nil
	case *ort.Scalar[uint8]:
		return tensor.Uint8, elemBytes(v.GetData()), nil
	case *ort.Scalar[uint16]:
		return tensor.Uint16, elemBytes(v.GetData()), nil
	case *ort.Scalar[uint32]:
		return tensor.Uint32, elemBytes(v.GetData()), nil
	case *ort.Scalar[uint64]:
		return tensor.Uint64, elemBytes(v.GetData()), nil
	case *ort.Scalar[int8]:
		return tensor.Int8, elemBytes(v.GetData()), nil
	case *ort.Scalar[int16]:
		return tensor.Int16, elemBytes(v.GetData()), nil
	case *ort.Scalar[int32]:
		return tensor.Int32, elemBytes(v.GetData()), nil
	case *ort.Scalar[int64]:
		return tensor.Int64, elemBytes(v.GetData()), nil
	case *ort.Scalar[float32]:
		return tensor.FP32, elemBytes(v.GetData()), nil
	case *ort.Scalar[float64]:
		return tensor.FP64, elemBytes(v.GetData()), nil
	}
	return tensor.Invalid, nil, fmt.Errorf("unexpected value %T (element type %s)", v, onnxTypeName(ort.TensorElementDataType(v.DataType())))
}

// stringBytes serialises a STRING tensor as V2 BYTES (length-prefixed).
func stringBytes(v *ort.StringTensor) (tensor.DType, []byte, error) {
	strs, err := v.GetContents()
	if err != nil {
		return tensor.Invalid, nil, err
	}
	size := 0
	for _, s := range strs {
		size += 4 + len(s)
	}
	data := make([]byte, 0, size)
	for _, s := range strs {
		data = tensor.AppendBytesElement(data, unsafe.Slice(unsafe.StringData(s), len(s)))
	}
	return tensor.Bytes, data, nil
}

// bytesOf views a slice of fixed-size, pointer-free elements as its bytes,
// sharing memory. Go's bool is one byte holding 0 or 1, like ONNX's.
func bytesOf[T ort.TensorData](s []T) []byte {
	if len(s) == 0 {
		return []byte{}
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), len(s)*int(unsafe.Sizeof(s[0])))
}

func elemBytes[T ort.TensorData](x T) []byte { return bytesOf([]T{x}) }

// alignedBytes returns n zero bytes aligned for any element type (8 bytes).
func alignedBytes(n int) []byte {
	words := make([]uint64, (n+7)/8)
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(words))), n)
}
