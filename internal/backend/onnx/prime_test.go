package onnx

import (
	"bytes"
	"testing"

	"github.com/ferryml/ferry/tools/onnxgen"
)

// prime.onnx is what its generator makes, so it can be made again.
func TestPrimeModelIsGenerated(t *testing.T) {
	if want := onnxgen.Identity(onnxgen.Float, "prime"); !bytes.Equal(primeModel, want) {
		t.Errorf("prime.onnx (%d bytes) differs from onnxgen.Identity(onnxgen.Float, \"prime\") (%d bytes); regenerate it", len(primeModel), len(want))
	}
}

// The runtime has paid ONNX Runtime's one-time costs before its first Open: the first
// session of a model grows the C heap by no more than a second, identical one.
func TestFirstSessionPaysNoOneTimeCosts(t *testing.T) {
	needORT(t)
	if rt.perSession <= 0 {
		t.Errorf("the runtime measured %d bytes per session, want > 0", rt.perSession)
	}
	model := onnxgen.MLP(3)
	path := writeModel(t, model)
	var grew [2]int64
	for i := range grew {
		before := HeapInUse()
		s, err := rt.Open(path, SessionOptions{IntraOpThreads: 1, NoMemArena: true})
		if err != nil {
			t.Fatal(err)
		}
		grew[i] = HeapInUse() - before
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("first session %d bytes, second %d, floor %d", grew[0], grew[1], int64(len(model))+rt.perSession)
	if grew[0] > grew[1]+grew[1]/20 {
		t.Errorf("the first session grew the C heap by %d bytes, the second by %d: the first pays one-time costs", grew[0], grew[1])
	}
}
