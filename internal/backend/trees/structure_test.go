package trees_test

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferryml/ferry/internal/backend/trees"
)

// rowsNearSplits are rows that land on, just below and just above typical thresholds,
// zeros and NaNs (missing values), and random values, so every branch rule is met.
func rowsNearSplits(rng *rand.Rand, features, n int) [][]float64 {
	special := []float64{0, math.NaN(), 0.5, 1.5, -0.5, 1, 3.5, 10, math.Nextafter(0.5, 1), math.Nextafter(3.5, 0), -3, 3}
	rows := make([][]float64, n)
	for i := range rows {
		rows[i] = make([]float64, features)
		for j := range rows[i] {
			if rng.IntN(2) == 0 {
				rows[i][j] = special[rng.IntN(len(special))]
			} else {
				rows[i][j] = rng.NormFloat64() * 4
			}
		}
	}
	return rows
}

// TestStructureReproducesPredictions: on every testdata model, the structure parsed
// for TreeSHAP predicts the same margins as the backend (leaves plus base score), and
// the attributions add up to margin − expected value within 1e-6.
func TestStructureReproducesPredictions(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.*") // the models, not testdata/fuzz
	if len(files) < 5 {
		t.Fatalf("found %d testdata models", len(files))
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			m, err := trees.Load(path, trees.Unknown)
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(11, 12))
			rows := rowsNearSplits(rng, m.NumFeatures(), 500)
			flat := make([]float64, 0, len(rows)*m.NumFeatures())
			for _, r := range rows {
				flat = append(flat, r...)
			}
			margins := make([]float64, len(rows)*m.NumOutputs())
			if err := m.Predict(flat, len(rows), margins, true, 1); err != nil {
				t.Fatal(err)
			}
			r, err := m.Explain(rows)
			if err != nil {
				t.Fatal(err)
			}
			outs, feats := m.NumOutputs(), m.NumFeatures()
			for i := range rows {
				for k := range outs {
					want := margins[i*outs+k]
					if got := r.Pred[i*outs+k]; math.Abs(got-want) > 1e-6 {
						t.Fatalf("row %v output %d: structure margin %v, backend %v", rows[i], k, got, want)
					}
					sum := r.Expected[k]
					for j := range feats {
						sum += r.Phi[(i*outs+k)*feats+j]
					}
					if math.Abs(sum-want) > 1e-6 {
						t.Fatalf("row %v output %d: expected + Σφ = %v, margin %v", rows[i], k, sum, want)
					}
				}
			}
		})
	}
}

// TestStructureWithoutCoversExplainsNothing: a model that serves but lacks node covers
// (sum_hessian dropped, LightGBM counts and weights dropped) still loads and predicts,
// and Explain names what is missing.
func TestStructureWithoutCoversExplainsNothing(t *testing.T) {
	for _, tc := range []struct{ file, drop, want string }{
		{"xgb_binary.json", `"sum_hessian"`, "sum_hessian"},
		{"lgb_regression.txt", "leaf_count=", "leaf_count nor leaf_weight"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			text := strings.ReplaceAll(string(data), tc.drop, `"unused_`+strings.Trim(tc.drop, `"=`)+`"`)
			if !strings.HasPrefix(tc.drop, `"`) { // LightGBM: drop both cover lines
				text = strings.NewReplacer("leaf_count=", "unused_count=", "leaf_weight=", "unused_weight=").Replace(string(data))
			}
			m, err := trees.Parse([]byte(text), trees.Unknown)
			if err != nil {
				t.Fatalf("Parse without covers: %v", err)
			}
			_, err = m.Explain([][]float64{make([]float64, m.NumFeatures())})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Explain() = %v, want an error naming %q", err, tc.want)
			}
		})
	}
}
