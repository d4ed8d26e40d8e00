package onnx

import (
	"context"
	"fmt"
	"runtime"

	ort "github.com/yalue/onnxruntime_go"
)

// Buffer is a float32 or int64 tensor in Go memory that RunBuffers reads (an input)
// or ONNX Runtime writes in place (an output). Exactly one of F32 and I64 is set,
// with at least as many elements as Shape has.
type Buffer struct {
	Name  string
	Shape []int64
	F32   []float32
	I64   []int64
}

// RunBuffers runs the model once without copying: inputs are read from, and outputs
// written into, the caller's buffers, which RunBuffers does not keep. Every model input
// must be given; an output that out leaves out is computed and dropped. It exists for
// the LLM engine's step loop, where the per-step copies of Execute (a KV cache in and
// out, [B,S,vocab] logits) would cost as much as the run itself.
//
// A context cancelled during the run stops it between graph nodes.
func (s *Session) RunBuffers(ctx context.Context, in, out []Buffer) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.sess == nil {
		return ErrClosed
	}
	return safely(s.log, func() error { return s.runBuffers(ctx, in, out) })
}

func (s *Session) runBuffers(ctx context.Context, in, out []Buffer) error {
	var pin runtime.Pinner
	defer pin.Unpin()
	inVals := make([]ort.Value, len(s.inputs))
	defer destroyAll(inVals)
	if err := bindBuffers(in, inVals, s.inIndex, &pin, inputErr, "the model has no such input (it takes "+s.inputNames()+")"); err != nil {
		return err
	}
	for i, v := range inVals {
		if v == nil {
			return inputErr(s.inputs[i].Name, "missing: the model needs it")
		}
	}
	outVals := make([]ort.Value, len(s.outputs))
	defer destroyAll(outVals)
	if err := bindBuffers(out, outVals, s.outIdx, &pin, outputErr, "the model has no such output"); err != nil {
		return err
	}
	return s.runGraph(ctx, inVals, outVals)
}

// bindBuffers puts each buffer's value at its name's index in vals; errf names the
// input or output at fault.
func bindBuffers(bufs []Buffer, vals []ort.Value, index map[string]int, pin *runtime.Pinner,
	errf func(name, format string, args ...any) error, unknown string) error {
	for _, b := range bufs {
		i, ok := index[b.Name]
		switch {
		case !ok:
			return errf(b.Name, "%s", unknown)
		case vals[i] != nil:
			return errf(b.Name, "given more than once")
		}
		v, err := bufferValue(b, pin)
		if err != nil {
			return errf(b.Name, "%v", err)
		}
		vals[i] = v
	}
	return nil
}

// bufferValue wraps b's memory, pinned for the run, in an ONNX Runtime value.
func bufferValue(b Buffer, pin *runtime.Pinner) (ort.Value, error) {
	shape := ort.Shape(b.Shape)
	switch {
	case b.F32 != nil && b.I64 == nil:
		if len(b.F32) > 0 {
			pin.Pin(&b.F32[0])
		}
		return ort.NewTensor(shape, b.F32)
	case b.I64 != nil && b.F32 == nil:
		if len(b.I64) > 0 {
			pin.Pin(&b.I64[0])
		}
		return ort.NewTensor(shape, b.I64)
	}
	return nil, fmt.Errorf("a buffer needs exactly one of F32 and I64")
}
