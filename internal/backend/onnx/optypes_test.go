package onnx

import (
	"testing"

	"github.com/ferryml/ferry/tools/onnxgen"
)

// OpTypes reads the main graph's operators from the file: the LLM engine tells a
// GroupQueryAttention decoder from an Optimum one by it, before opening a session.
func TestOpTypes(t *testing.T) {
	cfg := onnxgen.GPTConfig{Layers: 1, Heads: 2, Dim: 16, Vocab: 50, MaxPos: 16, Seed: 1, LastLogitsOnly: true}
	plain := writeModel(t, onnxgen.GPT(cfg))
	cfg.SharedKV = true
	shared := writeModel(t, onnxgen.GPT(cfg))
	for _, c := range []struct {
		path string
		gqa  bool
	}{{plain, false}, {shared, true}} {
		ops, err := OpTypes(c.path)
		if err != nil {
			t.Fatal(err)
		}
		if ops["GroupQueryAttention"] != c.gqa || !ops["MatMul"] || !ops["LayerNormalization"] {
			t.Errorf("%s: GroupQueryAttention %v (want %v), MatMul %v, LayerNormalization %v", c.path, ops["GroupQueryAttention"], c.gqa, ops["MatMul"], ops["LayerNormalization"])
		}
	}
	if _, err := OpTypes(writeModel(t, []byte{0x3a, 0xff})); err == nil {
		t.Error("a truncated model: no error")
	}
	if _, err := OpTypes(t.TempDir() + "/missing.onnx"); err == nil {
		t.Error("a missing file: no error")
	}
}
