package shm

import (
	"fmt"
	"math"

	"github.com/ferryml/ferry/internal/tensor"
)

// The tensor parameters of the shared memory extension, on a request input or a
// requested output (and echoed on a response output).
const (
	ParamRegion   = "shared_memory_region"    // string: a registered region's name
	ParamOffset   = "shared_memory_offset"    // int64, optional (0): where the tensor starts in the region
	ParamByteSize = "shared_memory_byte_size" // int64: the tensor's size in bytes
)

// Ref says where in a region a tensor's bytes are, or go.
type Ref struct {
	Region string
	Offset int64
	Size   int64
}

// RefOf reads the shared memory parameters of one tensor from its parameters (values as
// the transports decode them: string, int64, float64, bool). ok is false when the tensor
// has none of them. As in Triton, the region and the byte size go together and the
// offset is optional.
func RefOf(params map[string]any) (ref Ref, ok bool, err error) {
	region, hasRegion := params[ParamRegion]
	size, hasSize := params[ParamByteSize]
	offset, hasOffset := params[ParamOffset]
	if !hasRegion && !hasSize && !hasOffset {
		return Ref{}, false, nil
	}
	if !hasRegion || !hasSize {
		return Ref{}, false, invalidf("parameters %s and %s must be given together", ParamRegion, ParamByteSize)
	}
	if ref.Region, ok = region.(string); !ok || ref.Region == "" {
		return Ref{}, false, invalidf("parameter %s must be a non-empty string, got %v", ParamRegion, region)
	}
	if ref.Size, err = nonNegative(ParamByteSize, size); err != nil {
		return Ref{}, false, err
	}
	if hasOffset {
		if ref.Offset, err = nonNegative(ParamOffset, offset); err != nil {
			return Ref{}, false, err
		}
	}
	return ref, true, nil
}

func nonNegative(name string, v any) (int64, error) {
	n, ok := v.(int64)
	if !ok || n < 0 {
		return 0, invalidf("parameter %s must be a non-negative integer, got %v", name, v)
	}
	return n, nil
}

// Params is the response form of a Ref for an output of size bytes.
func (ref Ref) Params(size int) map[string]any {
	return map[string]any{ParamRegion: ref.Region, ParamOffset: ref.Offset, ParamByteSize: int64(size)}
}

// ReadTensor copies an input's bytes out of its region into a Go buffer (see Recycle), after
// checking that the byte size is what the shape and datatype need (for BYTES, the
// serialized size with the 4-byte length prefixes, whose element count must match).
// The shape's element limit bounds fixed-size types; maxBytes (0: none) bounds BYTES,
// whose size the shape does not say, so a huge region cannot make the server allocate
// what it was never meant to.
func (r *Registry) ReadTensor(ref Ref, dt tensor.DType, shape tensor.Shape, maxBytes int64) ([]byte, error) {
	n, err := shape.NumElements()
	if err != nil {
		return nil, invalidf("%v", err)
	}
	if dt != tensor.Bytes {
		size := int64(dt.Size())
		if size == 0 || n > math.MaxInt64/size || n*size != ref.Size {
			return nil, invalidf("%s %d does not match shape %v of %s (%d elements of %d bytes)", ParamByteSize, ref.Size, shape, dt, n, size)
		}
	} else if maxBytes > 0 && ref.Size > maxBytes {
		return nil, invalidf("%s %d is over the limit of %d bytes for a BYTES tensor", ParamByteSize, ref.Size, maxBytes)
	}
	l, err := r.Acquire(ref.Region, ref.Offset, ref.Size)
	if err != nil {
		return nil, err
	}
	defer l.Release()
	buf := Buffer(ref.Size)
	if err := l.CopyOut(buf); err != nil {
		return nil, err
	}
	if dt == tensor.Bytes {
		got, err := tensor.CountBytesElements(buf)
		if err != nil {
			return nil, invalidf("BYTES data in shared memory region %q: %v", ref.Region, err)
		}
		if got != n {
			return nil, invalidf("shape %v needs %d BYTES elements, shared memory region %q holds %d", shape, n, ref.Region, got)
		}
	}
	return buf, nil
}

// WriteTensor copies an output's bytes into its region. The region's byte size must
// hold them.
func (r *Registry) WriteTensor(ref Ref, t *tensor.Tensor) error {
	if err := t.Validate(); err != nil {
		return fmt.Errorf("model returned a malformed output %q: %w", t.Name, err)
	}
	if int64(len(t.Data)) > ref.Size {
		return invalidf("output %q needs %d bytes but %s is %d", t.Name, len(t.Data), ParamByteSize, ref.Size)
	}
	l, err := r.Acquire(ref.Region, ref.Offset, ref.Size)
	if err != nil {
		return invalidf("output %q: %v", t.Name, err)
	}
	defer l.Release()
	if err := l.CopyIn(t.Data); err != nil {
		return invalidf("output %q: %v", t.Name, err)
	}
	return nil
}

// OutputRefOf is RefOf for a requested output, which also must not ask for the
// classification extension: a class list is not the tensor the region was sized for.
func OutputRefOf(params map[string]any) (Ref, bool, error) {
	ref, ok, err := RefOf(params)
	if _, classify := params["classification"]; ok && classify {
		return Ref{}, false, invalidf("an output in shared memory cannot also take parameter classification")
	}
	return ref, ok, err
}

// WriteOutputs copies each output that its requested parameters (paramsOf(name), as
// checked by OutputRefOf when the request was decoded) send to shared memory into its
// region, and returns where each went by output name (nil when none did), for the
// response. Outputs are written in order; the first failure stops the copying.
func (r *Registry) WriteOutputs(outputs []*tensor.Tensor, paramsOf func(name string) map[string]any) (map[string]Ref, error) {
	var refs map[string]Ref
	for _, t := range outputs {
		if t == nil {
			continue // the transport's encoder reports it
		}
		ref, ok, err := OutputRefOf(paramsOf(t.Name))
		if err != nil {
			return nil, invalidf("output %q: %v", t.Name, err)
		}
		if !ok {
			continue
		}
		if err := r.WriteTensor(ref, t); err != nil {
			return nil, err
		}
		if refs == nil {
			refs = map[string]Ref{}
		}
		refs[t.Name] = ref
	}
	return refs, nil
}
