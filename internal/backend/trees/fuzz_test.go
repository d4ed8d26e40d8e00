package trees_test

import (
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/ferryml/ferry/internal/backend/trees"
)

// FuzzParseAndExplain: whatever the model file, Parse and the structure read for
// explanations return an error or a model that predicts and explains without
// panicking, and whose explanations add up to its margins.
func FuzzParseAndExplain(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.*") // the models, not testdata/fuzz
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := trees.Parse(data, trees.Unknown)
		if err != nil || m.NumFeatures() > 1000 || m.NumOutputs() > 100 {
			return
		}
		row := make([]float64, m.NumFeatures())
		for j := range row {
			row[j] = float64(j%3) - 1
		}
		r, err := m.Explain([][]float64{row})
		if err != nil {
			return
		}
		for k := range m.NumOutputs() {
			sum, scale := r.Expected[k], max(1, math.Abs(r.Expected[k]))
			for j := range m.NumFeatures() {
				sum += r.Phi[k*m.NumFeatures()+j]
				scale += math.Abs(r.Phi[k*m.NumFeatures()+j])
			}
			// rounding grows with the terms that cancel (a leaf of 1e11 beside one of 0.1)
			if p := r.Pred[k]; math.Abs(sum-p) > 1e-9*max(scale, math.Abs(p)) && !math.IsNaN(p) && !math.IsInf(p, 0) {
				t.Fatalf("output %d: expected + Σφ = %v, margin %v", k, sum, p)
			}
		}
	})
}
