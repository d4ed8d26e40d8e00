package trees_test

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/ferryml/ferry/internal/backend/backendtest"
	"github.com/ferryml/ferry/internal/backend/trees"
	"github.com/ferryml/ferry/internal/scheduler"
	"github.com/ferryml/ferry/internal/tensor"
)

// TestConformance runs the backend conformance suite on testdata/xgb_regression.json,
// checked against its hand walk (xgbRegression), which is not the code under test.
func TestConformance(t *testing.T) {
	m, err := trees.Load(filepath.Join("testdata", "xgb_regression.json"), trees.XGBoostJSON)
	if err != nil {
		t.Fatal(err)
	}
	backendtest.Run(t, backendtest.Factory{
		Name:         "xgb_regression",
		MaxBatchSize: 16,
		Outputs:      []string{trees.OutputName},
		Open: func(t *testing.T) scheduler.Instance {
			in, err := trees.NewInstance(m, trees.Options{OutputDType: tensor.FP64})
			if err != nil {
				t.Fatalf("NewInstance: %v", err)
			}
			return in
		},
		Inputs: func(rows, seed int) []*tensor.Tensor {
			r := rand.New(rand.NewPCG(uint64(seed), 2))
			x := make([][]float64, rows)
			for i := range x {
				x[i] = []float64{r.Float64()*3 - 1, r.Float64()*4 - 1, r.Float64()*6 - 2}
			}
			return []*tensor.Tensor{batch(tensor.FP32, x)}
		},
		Check: func(t *testing.T, in, out []*tensor.Tensor) {
			x, err := in[0].Float64s()
			if err != nil {
				t.Error(err)
				return
			}
			got, err := out[0].Float64s()
			if err != nil {
				t.Error(err)
				return
			}
			for r := range got {
				row := x[3*r : 3*r+3] // FP32 inputs: already the values the model compares
				if want := xgbRegression(row)[0]; math.Abs(got[r]-want) > 1e-6 {
					t.Errorf("row %d %v: got %.9f, want %.9f", r, row, got[r], want)
				}
			}
		},
	})
}
