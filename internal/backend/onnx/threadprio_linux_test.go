package onnx

import (
	"slices"
	"testing"

	"github.com/ferryml/ferry/internal/platform/threadprio"
	"github.com/ferryml/ferry/tools/onnxgen"
)

// With request handling in the background, a session's ONNX Runtime pool threads are
// started in the foreground, where the batched instance's calling thread runs.
func TestSessionPoolThreadsStayInFrontOfRequestHandling(t *testing.T) {
	needORT(t)
	if err := threadprio.Background(); err != nil {
		t.Fatal(err)
	}
	defer threadprio.Reset() //nolint:errcheck // the other tests run in the usual class
	_, before, err := threadprio.Threads()
	if err != nil {
		t.Fatal(err)
	}
	s, err := rt.Open(writeModel(t, onnxgen.MLP(1)), SessionOptions{IntraOpThreads: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	front, _, _ := threadprio.Threads()
	for _, tid := range front {
		if slices.Contains(before, tid) {
			t.Errorf("thread %d, there before the session, moved to the front", tid)
		}
	}
	if len(front) < 2 { // a 3-thread session starts 2 pool threads; the caller is the third
		t.Errorf("%d threads in front after opening a 3-thread session, want its 2 pool threads", len(front))
	}
}
