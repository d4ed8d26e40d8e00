package onnx

import (
	"testing"

	"github.com/ferryml/ferry/tools/onnxgen"
)

// FuzzParseGraph feeds the model-file reader arbitrary bytes: a model file is the
// user's, and a broken one must be refused (or passed on to ONNX Runtime), never crash
// the server. What it accepts has named values of a known kind.
// FuzzOpTypes: any bytes give operator types or an error, never a panic or a hang.
func FuzzOpTypes(f *testing.F) {
	for _, m := range [][]byte{onnxgen.Simple(), onnxgen.GPT(onnxgen.GPTConfig{Layers: 1, Heads: 1, Dim: 8, Vocab: 10, MaxPos: 4, Seed: 1}), {}} {
		f.Add(m)
	}
	f.Fuzz(func(t *testing.T, model []byte) {
		if ops, err := opTypes(model); err == nil && ops == nil {
			t.Fatal("no error and no map")
		}
	})
}

func FuzzParseGraph(f *testing.F) {
	for _, m := range [][]byte{onnxgen.Simple(), onnxgen.Accumulator(), overridableModel(), reduceSumModel(), {}} {
		f.Add(m)
	}
	f.Fuzz(func(t *testing.T, model []byte) {
		decl, err := parseGraph(model)
		if err != nil || !decl.complete {
			return
		}
		for _, v := range append(decl.inputs, decl.outputs...) {
			if v.OrtValueType == 0 {
				t.Fatalf("value %q accepted without a kind", v.Name)
			}
			if _, ok := decl.shapes.outputs[v.Name]; !ok {
				if _, ok := decl.shapes.inputs[v.Name]; !ok {
					t.Fatalf("value %q has no declared shape entry", v.Name)
				}
			}
		}
	})
}
