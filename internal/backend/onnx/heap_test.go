package onnx

import (
	"testing"

	"github.com/ferryml/ferry/tools/onnxgen"
)

// A session's weights live in the C heap: HeapInUse grows by about their size while the
// session is open and falls back when it closes.
func TestHeapInUseFollowsASession(t *testing.T) {
	needORT(t)
	const in, out = 1024, 1024 // a 4 MiB initializer
	w := make([]float32, in*out)
	for i := range w {
		w[i] = float32(i%97) * 0.01
	}
	model := onnxgen.NewModel("weights").Input("x", onnxgen.Float, onnxgen.Sym("batch"), onnxgen.Fixed(in)).
		InitializerFloat32("w", []int64{in, out}, w).
		Node("MatMul", []string{"x", "w"}, []string{"y"}).
		Output("y", onnxgen.Float, onnxgen.Sym("batch"), onnxgen.Fixed(out)).Bytes()
	path := writeModel(t, model)
	const weights = in * out * 4
	// The first session of a process also fills ONNX Runtime's caches (kernel registries):
	// open one first, so the figures below are the session's own.
	first, err := rt.Open(path, SessionOptions{IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}

	before := HeapInUse()
	s, err := rt.Open(path, SessionOptions{IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	open := HeapInUse()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	closed := HeapInUse()
	// The runtime's other threads may free a few small buffers meanwhile (a fresh-clone
	// run saw the heap grow by 6 KB less than the weights): 1% of slack below.
	if grew := open - before; grew < weights-weights/100 || grew > 2*weights {
		t.Errorf("opening a session with %d bytes of weights grew the C heap by %d bytes, want %d..%d", weights, grew, weights-weights/100, 2*weights)
	}
	if left := closed - before; left > weights/4 {
		t.Errorf("after Close the C heap holds %d bytes more than before the session, want under %d", left, weights/4)
	}
}
