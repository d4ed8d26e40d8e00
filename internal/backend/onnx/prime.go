package onnx

import (
	_ "embed"
	"fmt"

	ort "github.com/yalue/onnxruntime_go"
)

// primeModel is a one-node model (FP32 Identity, onnxgen.Identity(onnxgen.Float,
// "prime"); prime_test.go checks the two agree).
//
//go:embed prime.onnx
var primeModel []byte

// prime pays ONNX Runtime's one-time costs, then measures what a session costs at the
// least. The first session a process creates also builds ONNX Runtime's kernel registries
// and other process-wide caches (about 1.3 MiB of C heap, kept until exit); a memory
// budget that measures model loads would charge them to whichever model loads first.
// prime opens and runs the tiny model twice and returns the C heap the second session
// held once open: the fixed part of every session (graph, kernels, allocator and
// thread-pool objects), with no weights.
func prime() (perSession int64, err error) {
	so, err := sessionOptions(SessionOptions{IntraOpThreads: 1, NoMemArena: true})
	if err != nil {
		return 0, err
	}
	defer so.Destroy()
	for i := range 2 {
		before := HeapInUse()
		held, err := primeOnce(so)
		if err != nil {
			return 0, fmt.Errorf("onnx: priming ONNX Runtime with a one-node model: %w", err)
		}
		if i == 1 {
			perSession = max(held-before, 0)
		}
	}
	return perSession, nil
}

// primeOnce opens the prime model, runs it once and closes it; it returns HeapInUse
// once the session was open, before its run.
func primeOnce(so *ort.SessionOptions) (int64, error) {
	sess, err := ort.NewDynamicAdvancedSessionWithONNXData(primeModel, []string{"INPUT0"}, []string{"OUTPUT0"}, so)
	if err != nil {
		return 0, err
	}
	defer sess.Destroy()
	held := HeapInUse()
	in, err := ort.NewTensor(ort.NewShape(1, 1), []float32{0})
	if err != nil {
		return 0, err
	}
	defer in.Destroy()
	out := []ort.Value{nil}
	if err := sess.Run([]ort.Value{in}, out); err != nil {
		return 0, err
	}
	if out[0] != nil {
		out[0].Destroy()
	}
	return held, nil
}
