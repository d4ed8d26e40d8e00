package trees_test

import (
	"context"
	"encoding/binary"
	"math"
	"path/filepath"
	"testing"

	"github.com/ferryml/ferry/internal/backend/trees"
	"github.com/ferryml/ferry/internal/tensor"
)

// The expected predictions below are computed by walking the fixtures' trees by hand,
// with each format's own rules, sharing no code with the package or with leaves. The
// trees are copied from testdata/*.json and *.txt into the walkers line for line.

var nan = math.NaN()

// xgbLeft is XGBoost's split rule: x goes left when x < cond, both as float32; a
// missing value (NaN) takes the node's default direction.
func xgbLeft(x, cond float64, defaultLeft bool) bool {
	if math.IsNaN(x) {
		return defaultLeft
	}
	return float32(x) < float32(cond)
}

// lgbLeft is LightGBM's numerical split rule: x goes left when x <= threshold (as
// float64). Missing type "none" reads NaN as 0; "zero" sends 0 (and NaN, read as 0)
// the default way; "nan" sends NaN the default way.
func lgbLeft(x, threshold float64, missing string, defaultLeft bool) bool {
	if math.IsNaN(x) && missing != "nan" {
		x = 0
	}
	if (missing == "zero" && x == 0) || (missing == "nan" && math.IsNaN(x)) {
		return defaultLeft
	}
	return x <= threshold
}

func pick(left bool, l, r float64) float64 {
	if left {
		return l
	}
	return r
}

func softmax(m ...float64) []float64 {
	sum := 0.0
	for _, v := range m {
		sum += math.Exp(v)
	}
	out := make([]float64, len(m))
	for i, v := range m {
		out[i] = math.Exp(v) / sum
	}
	return out
}

// xgb_regression.json: base_score 0.5, three trees.
func xgbRegression(x []float64) []float64 {
	var t0 float64
	if xgbLeft(x[0], 0.5, true) {
		t0 = pick(xgbLeft(x[1], 1.5, false), 0.1, -0.2)
	} else {
		t0 = pick(xgbLeft(x[2], -1.0, true), 0.3, 0.05)
	}
	t1 := -0.4
	if xgbLeft(x[2], 2.0, false) {
		t1 = pick(xgbLeft(x[0], 0.25, true), 0.02, 0.15)
	}
	t2 := pick(xgbLeft(x[1], 0.0, true), 0.07, -0.01)
	return []float64{0.5 + t0 + t1 + t2}
}

// xgb_binary.json: binary:logistic with base_score 0.3, i.e. a base margin of
// logit(0.3) = ln(0.3/0.7).
func xgbBinaryMargin(x []float64) []float64 {
	t0 := 1.2
	if xgbLeft(x[1], 10.0, false) {
		t0 = pick(xgbLeft(x[0], 3.5, true), -0.8, 0.4)
	}
	t1 := pick(xgbLeft(x[0], 1.0, true), -0.3, 0.25)
	return []float64{math.Log(0.3/0.7) + t0 + t1}
}

func xgbBinary(x []float64) []float64 {
	return []float64{1 / (1 + math.Exp(-xgbBinaryMargin(x)[0]))}
}

// xgb_multiclass.json: multi:softprob, 3 classes, two parallel trees per class
// (tree_info [0 0 1 1 2 2]), base_score 0.5 added to every class margin.
func xgbMulticlassMargin(x []float64) []float64 {
	c0 := 0.5 + pick(xgbLeft(x[0], 1.0, true), 0.5, -0.5) + pick(xgbLeft(x[1], 2.0, false), 0.1, 0.2)
	c1 := 0.5 + pick(xgbLeft(x[1], 0.0, false), 0.3, 0.1) + pick(xgbLeft(x[0], 0.5, true), -0.1, 0.05)
	c2 := 0.5 + pick(xgbLeft(x[0], -1.0, false), 0.2, -0.1) + 0.15 // the second tree is a single leaf
	return []float64{c0, c1, c2}
}

func xgbMulticlass(x []float64) []float64 { return softmax(xgbMulticlassMargin(x)...) }

// lgb_regression.txt: three trees, no base score (LightGBM folds it into the leaves).
// decision_type 2 = default left, missing none; 10 = default left, missing NaN;
// 8 = default right, missing NaN; 4 = default right, missing zero.
func lgbRegression(x []float64) []float64 {
	t0 := -0.1
	if lgbLeft(x[0], 0.5, "none", true) {
		t0 = pick(lgbLeft(x[1], 1.5, "nan", true), 0.4, 0.25)
	}
	t1 := pick(lgbLeft(x[2], -0.5, "nan", false), 0.05, 0.12)
	t2 := pick(lgbLeft(x[1], 3, "zero", false), 0.01, -0.03)
	return []float64{t0 + t1 + t2}
}

// lgb_multiclass.txt: multiclass num_class:3, two iterations (trees 0-2, then 3-5,
// class = tree index mod 3); tree 5 is a single leaf.
func lgbMulticlassMargin(x []float64) []float64 {
	c0 := pick(lgbLeft(x[0], 0, "none", true), 0.6, -0.3) + pick(lgbLeft(x[1], 0, "none", true), 0.05, -0.05)
	c1 := pick(lgbLeft(x[1], 1, "none", true), -0.2, 0.4) + pick(lgbLeft(x[0], -1, "none", true), 0.2, 0)
	c2 := pick(lgbLeft(x[0], 2, "none", false), 0.1, 0.5) + 0.15
	return []float64{c0, c1, c2}
}

func lgbMulticlass(x []float64) []float64 { return softmax(lgbMulticlassMargin(x)...) }

type fixture struct {
	file   string
	format trees.Format
	want   func([]float64) []float64
	margin func([]float64) []float64 // nil: margins equal outputs
	rows   [][]float64
}

// fixtures pairs each model with its hand walk and rows that reach every leaf, sit
// exactly on thresholds (XGBoost goes right there, LightGBM left) and are missing.
var fixtures = []fixture{
	{"xgb_regression.json", trees.XGBoostJSON, xgbRegression, nil, [][]float64{
		{0.2, 1.0, 0}, {0.5, 1.5, 2.0}, {nan, nan, nan}, {0.7, -3, -2}, {0.1, 2, 5}, {0.3, 0, 1},
		{0.4999999999, 1.0, 0}, // FP64 input that rounds to 0.5 as float32: XGBoost goes right
	}},
	{"xgb_binary.json", trees.XGBoostJSON, xgbBinary, xgbBinaryMargin, [][]float64{
		{0, 0}, {3.5, 10}, {4, 9}, {nan, nan}, {1, nan}, {0.99, 12},
	}},
	{"xgb_multiclass.json", trees.XGBoostJSON, xgbMulticlass, xgbMulticlassMargin, [][]float64{
		{0, 0}, {1, 2}, {-1, -1}, {0.5, 5}, {nan, nan}, {-2, 1},
	}},
	{"lgb_regression.txt", trees.LightGBM, lgbRegression, nil, [][]float64{
		{0.5, 1.5, -0.5}, {nan, nan, nan}, {0.6, 0, 0}, {0, 2, -1}, {0.5000000001, 4, 3}, {-1, 0, nan},
	}},
	{"lgb_multiclass.txt", trees.LightGBM, lgbMulticlass, lgbMulticlassMargin, [][]float64{
		{0, 1}, {3, -1}, {-2, 5}, {nan, nan}, {2, 0}, {-1, 1},
	}},
}

// TestHandComputedValues pins a few outputs to numbers worked out on paper, so the
// walkers themselves are checked too.
func TestHandComputedValues(t *testing.T) {
	for _, tc := range []struct {
		name string
		got  float64
		want float64
	}{
		// 0.5 + 0.1 (x0<0.5, x1<1.5) + 0.02 (x2<2, x0<0.25) - 0.01 (x1≥0)
		{"xgb regression [0.2 1 0]", xgbRegression([]float64{0.2, 1, 0})[0], 0.61},
		// on every threshold XGBoost goes right: 0.5 + 0.05 - 0.4 - 0.01
		{"xgb regression [0.5 1.5 2]", xgbRegression([]float64{0.5, 1.5, 2})[0], 0.14},
		// all missing: left (default), then right (default) -0.2; right -0.4; left 0.07
		{"xgb regression NaNs", xgbRegression([]float64{nan, nan, nan})[0], -0.03},
		// on every threshold LightGBM goes left: 0.4 + 0.05 + 0.01
		{"lgb regression [0.5 1.5 -0.5]", lgbRegression([]float64{0.5, 1.5, -0.5})[0], 0.46},
		// NaN: read as 0 (left), then missing NaN default left 0.4; default right 0.12; zero → right -0.03
		{"lgb regression NaNs", lgbRegression([]float64{nan, nan, nan})[0], 0.49},
		// class 2 margin: 0.1 (0 ≤ 2) + 0.15
		{"lgb multiclass [0 1] class 2 margin", lgbMulticlassMargin([]float64{0, 1})[2], 0.25},
	} {
		if math.Abs(tc.got-tc.want) > 1e-12 {
			t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}
}

func TestPredictionsEqualHandWalk(t *testing.T) {
	for _, fx := range fixtures {
		t.Run(fx.file, func(t *testing.T) {
			m, err := trees.Load(filepath.Join("testdata", fx.file), trees.Unknown)
			if err != nil {
				t.Fatal(err)
			}
			if m.Format() != fx.format || m.NumFeatures() != len(fx.rows[0]) || m.NumOutputs() != len(fx.want(fx.rows[0])) {
				t.Fatalf("Load: format %v, %d features, %d outputs; want %v, %d, %d", m.Format(), m.NumFeatures(),
					m.NumOutputs(), fx.format, len(fx.rows[0]), len(fx.want(fx.rows[0])))
			}
			for _, dt := range []tensor.DType{tensor.FP64, tensor.FP32} {
				for _, margin := range []bool{false, true} {
					want := fx.want
					if margin && fx.margin != nil {
						want = fx.margin
					}
					in, err := trees.NewInstance(m, trees.Options{OutputMargin: margin, OutputDType: tensor.FP64})
					if err != nil {
						t.Fatal(err)
					}
					got := execute(t, in, dt, fx.rows)
					for r, row := range fx.rows {
						if dt == tensor.FP32 {
							row = roundRow(row)
						}
						checkRow(t, fx.file, dt, margin, row, got[r], want(row))
					}
				}
			}
		})
	}
}

func checkRow(t *testing.T, file string, dt tensor.DType, margin bool, row, got, want []float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s %v margin=%v row %v: %d outputs, want %d", file, dt, margin, row, len(got), len(want))
	}
	for k := range want {
		if math.Abs(got[k]-want[k]) > 1e-6 {
			t.Errorf("%s %v margin=%v row %v: output %d = %.9f, want %.9f", file, dt, margin, row, k, got[k], want[k])
		}
	}
}

func roundRow(row []float64) []float64 {
	out := make([]float64, len(row))
	for i, v := range row {
		out[i] = float64(float32(v))
	}
	return out
}

// execute runs rows through in as one batch of dt and returns FP64 output rows.
func execute(t testing.TB, in *trees.Instance, dt tensor.DType, rows [][]float64) [][]float64 {
	t.Helper()
	out, err := in.Execute(context.Background(), []*tensor.Tensor{batch(dt, rows)}, nil)
	if err != nil {
		t.Fatalf("Execute: %v", err)
	}
	return outputRows(t, out, len(rows))
}

func batch(dt tensor.DType, rows [][]float64) *tensor.Tensor {
	x := &tensor.Tensor{Name: trees.InputName, DType: dt, Shape: tensor.Shape{int64(len(rows)), int64(len(rows[0]))}}
	for _, row := range rows {
		for _, v := range row {
			if dt == tensor.FP32 {
				x.Data = binary.LittleEndian.AppendUint32(x.Data, math.Float32bits(float32(v)))
			} else {
				x.Data = binary.LittleEndian.AppendUint64(x.Data, math.Float64bits(v))
			}
		}
	}
	return x
}

func outputRows(t testing.TB, out []*tensor.Tensor, rows int) [][]float64 {
	t.Helper()
	if len(out) != 1 || out[0].Name != trees.OutputName || len(out[0].Shape) != 2 || out[0].Shape[0] != int64(rows) {
		t.Fatalf("Execute returned %d outputs (first %+v), want %s with %d rows", len(out), out[0], trees.OutputName, rows)
	}
	vals, err := out[0].Float64s()
	if err != nil {
		t.Fatal(err)
	}
	k := int(out[0].Shape[1])
	got := make([][]float64, rows)
	for r := range got {
		got[r] = vals[r*k : (r+1)*k]
	}
	return got
}
