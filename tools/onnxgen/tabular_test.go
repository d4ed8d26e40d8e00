package onnxgen_test

import (
	"bytes"
	"math"
	"testing"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/ferryml/ferry/tools/onnxgen"
)

// TestTabular: the model loads in ONNX Runtime, answers one probability per row
// that depends on every feature, and is deterministic in its seed.
func TestTabular(t *testing.T) {
	if !bytes.Equal(onnxgen.Tabular(1), onnxgen.Tabular(1)) || bytes.Equal(onnxgen.Tabular(1), onnxgen.Tabular(2)) {
		t.Fatal("Tabular is not a function of its seed")
	}
	needORT(t)
	s := newSession(t, onnxgen.Tabular(1), []string{"features"}, []string{"score"})
	const feats = 6
	rows := [][]float32{make([]float32, feats)}
	for j := range feats { // each row moves one feature from row 0
		r := make([]float32, feats)
		r[j] = 2
		rows = append(rows, r)
	}
	var x []float32
	for _, r := range rows {
		x = append(x, r...)
	}
	y := data[float32](t, run(t, s, 1, tensor(t, ort.NewShape(int64(len(rows)), feats), x))[0], ort.NewShape(int64(len(rows)), 1))
	for i, p := range y {
		if !(p > 0 && p < 1) {
			t.Errorf("row %d: score %v, want a probability", i, p)
		}
		if i > 0 && math.Abs(float64(p-y[0])) < 1e-4 {
			t.Errorf("feature %d does not move the score (%v vs %v)", i-1, p, y[0])
		}
	}
	t.Logf("scores %v", y)
}
