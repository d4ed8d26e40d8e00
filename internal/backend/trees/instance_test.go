package trees_test

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferryml/ferry/internal/backend/trees"
	"github.com/ferryml/ferry/internal/tensor"
	"github.com/ferryml/ferry/tools/treegen"
)

// generated writes a treegen forest (100 trees of depth 6 over 32 features unless
// smaller is asked) and returns the forest and the file.
func generated(t testing.TB, nTrees, depth, features int) (*treegen.Forest, string) {
	t.Helper()
	f := treegen.Random(7, nTrees, depth, features)
	path := filepath.Join(t.TempDir(), "model.json")
	if err := os.WriteFile(path, f.XGBoostJSON(), 0o644); err != nil {
		t.Fatal(err)
	}
	return f, path
}

func randomRows(seed uint64, n, features int) [][]float64 {
	r := rand.New(rand.NewPCG(seed, 1))
	rows := make([][]float64, n)
	for i := range rows {
		rows[i] = make([]float64, features)
		for j := range rows[i] {
			rows[i][j] = float64(float32(r.NormFloat64()))
			if r.IntN(20) == 0 {
				rows[i][j] = math.NaN()
			}
		}
	}
	return rows
}

// TestGeneratedModelEqualsGeneratorWalk checks a realistic model (100 trees of depth
// 6 over 32 features) against treegen's own walk of the same trees.
func TestGeneratedModelEqualsGeneratorWalk(t *testing.T) {
	forest, path := generated(t, 100, 6, 32)
	in, err := trees.Open(path, trees.Options{OutputDType: tensor.FP64})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	rows := randomRows(1, 500, 32)
	got := execute(t, in, tensor.FP32, rows)
	for r, row := range rows {
		x := make([]float32, len(row))
		for i, v := range row {
			x[i] = float32(v)
		}
		if want := forest.Predict(x); math.Abs(got[r][0]-want) > 1e-6 {
			t.Errorf("row %d: got %.9f, want %.9f", r, got[r][0], want)
		}
	}
}

// TestBatchedEqualsOneByOne: a batch gives every row exactly what it gets alone,
// on one goroutine or several.
func TestBatchedEqualsOneByOne(t *testing.T) {
	_, path := generated(t, 100, 6, 32)
	cases := []struct {
		file     string
		features int
	}{
		{path, 32},
		{filepath.Join("testdata", "xgb_multiclass.json"), 2},
		{filepath.Join("testdata", "lgb_multiclass.txt"), 2},
		{filepath.Join("testdata", "lgb_regression.txt"), 3},
	}
	for _, tc := range cases {
		for _, threads := range []int{1, 4} {
			t.Run(filepath.Base(tc.file), func(t *testing.T) {
				in, err := trees.Open(tc.file, trees.Options{Threads: threads})
				if err != nil {
					t.Fatal(err)
				}
				defer in.Close()
				rows := randomRows(2, 200, tc.features)
				all := execute(t, in, tensor.FP32, rows)
				for r, row := range rows {
					alone := execute(t, in, tensor.FP32, [][]float64{row})[0]
					for k := range alone {
						if all[r][k] != alone[k] {
							t.Fatalf("threads %d row %d output %d: %v in a batch, %v alone", threads, r, k, all[r][k], alone[k])
						}
					}
				}
			})
		}
	}
}

func TestExecuteRejectsBadInputs(t *testing.T) {
	in, err := trees.Open(filepath.Join("testdata", "xgb_regression.json"), trees.Options{})
	if err != nil {
		t.Fatal(err)
	}
	good := batch(tensor.FP32, [][]float64{{1, 2, 3}})
	for _, tc := range []struct {
		name    string
		in      []*tensor.Tensor
		want    []string
		wantErr string
	}{
		{"no input", nil, nil, `want one input "input__0", got []`},
		{"a wrong name", []*tensor.Tensor{{Name: "x", DType: tensor.FP32, Shape: tensor.Shape{1, 3}, Data: good.Data}}, nil,
			`want one input "input__0", got ["x"]`},
		{"two inputs", []*tensor.Tensor{good, good}, nil, `want one input "input__0", got ["input__0" "input__0"]`},
		{"an integer input", []*tensor.Tensor{{Name: trees.InputName, DType: tensor.Int32, Shape: tensor.Shape{1, 3}, Data: good.Data}}, nil,
			`input "input__0": datatype INT32 is not supported (FP32 or FP64)`},
		{"too few features", []*tensor.Tensor{{Name: trees.InputName, DType: tensor.FP32, Shape: tensor.Shape{1, 2}, Data: good.Data[:8]}}, nil,
			`input "input__0": shape [1,2], want [rows, 3]`},
		{"a flat input", []*tensor.Tensor{{Name: trees.InputName, DType: tensor.FP32, Shape: tensor.Shape{3}, Data: good.Data}}, nil,
			`input "input__0": shape [3], want [rows, 3]`},
		{"short data", []*tensor.Tensor{{Name: trees.InputName, DType: tensor.FP32, Shape: tensor.Shape{2, 3}, Data: good.Data}}, nil,
			`input "input__0": 12 bytes for shape [2,3], want 24`},
		{"an unknown output", []*tensor.Tensor{good}, []string{"probabilities"},
			`output "probabilities": the model has one output, "output__0"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := in.Execute(context.Background(), tc.in, tc.want)
			if err == nil || err.Error() != tc.wantErr {
				t.Fatalf("Execute err = %v, want %q", err, tc.wantErr)
			}
		})
	}
	t.Run("an empty batch", func(t *testing.T) {
		out, err := in.Execute(context.Background(), []*tensor.Tensor{{Name: trees.InputName, DType: tensor.FP32, Shape: tensor.Shape{0, 3}}}, nil)
		if err != nil || len(out) != 1 || out[0].Shape[0] != 0 || len(out[0].Data) != 0 {
			t.Fatalf("Execute of 0 rows = %v, %v; want an empty output", out, err)
		}
	})
	t.Run("a cancelled request", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := in.Execute(ctx, []*tensor.Tensor{good}, nil); !errors.Is(err, context.Canceled) {
			t.Fatalf("Execute err = %v, want context.Canceled", err)
		}
	})
	t.Run("after Close", func(t *testing.T) {
		if err := in.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := in.Execute(context.Background(), []*tensor.Tensor{good}, nil); !errors.Is(err, trees.ErrClosed) {
			t.Fatalf("Execute err = %v, want ErrClosed", err)
		}
	})
}

func TestOptionsAreChecked(t *testing.T) {
	m, err := trees.Load(filepath.Join("testdata", "xgb_regression.json"), trees.Unknown)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		opts    trees.Options
		wantErr string
	}{
		{trees.Options{OutputDType: tensor.Int32}, `output "output__0": datatype INT32 is not supported (FP32 or FP64)`},
		{trees.Options{Threads: -1}, `threads: must be ≥ 0, got -1`},
	} {
		if _, err := trees.NewInstance(m, tc.opts); err == nil || err.Error() != tc.wantErr {
			t.Errorf("NewInstance(%+v) err = %v, want %q", tc.opts, err, tc.wantErr)
		}
	}
}

func TestFormats(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    trees.Format
		wantErr bool
	}{
		{"xgboost_json", trees.XGBoostJSON, false},
		{"XGBoost", trees.XGBoostJSON, false},
		{"lightgbm", trees.LightGBM, false},
		{"lightgbm_text", trees.LightGBM, false},
		{"treelite_checkpoint", trees.Unknown, true},
	} {
		got, err := trees.ParseFormat(tc.in)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("ParseFormat(%q) = %v, %v; want %v (error %v)", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
	if _, err := trees.Load(filepath.Join("testdata", "lgb_regression.txt"), trees.XGBoostJSON); err == nil ||
		!strings.Contains(err.Error(), "the model type is xgboost_json but the file is a lightgbm model") {
		t.Errorf("Load of a LightGBM file as XGBoost: err = %v", err)
	}
}
