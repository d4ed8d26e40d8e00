package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/ferryml/ferry/internal/tensor"
	"github.com/ferryml/ferry/internal/v2client"
)

// The tree models of these tests are the hand-written fixtures of internal/backend/trees;
// the expected outputs are worked out by hand from their trees (arithmetic in the
// comments), independently of the backend and of leaves.
const treesFixtures = "../../internal/backend/trees/testdata"

// writeTreeModel copies a fixture into repo/name/1/file, with a config when non-empty.
func writeTreeModel(t testing.TB, repo, name, fixture, file, config string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(treesFixtures, fixture))
	if err != nil {
		t.Fatal(err)
	}
	writeTreeFile(t, repo, name, file, data, config)
}

func writeTreeFile(t testing.TB, repo, name, file string, data []byte, config string) {
	t.Helper()
	dir := filepath.Join(repo, name, "1")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, file), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if config != "" {
		if err := os.WriteFile(filepath.Join(repo, name, "config.pbtxt"), []byte(config), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func treesRepo(t *testing.T) string {
	repo := t.TempDir()
	// No config: the backend is picked by the file, everything else auto-completed.
	writeTreeModel(t, repo, "xgb_reg", "xgb_regression.json", "model.json", "")
	writeTreeModel(t, repo, "lgb_multi", "lgb_multiclass.txt", "model.txt", "")
	writeTreeModel(t, repo, "xgb_margin", "xgb_multiclass.json", "model.json", `backend: "tree"
parameters { key: "output_margin" value { string_value: "true" } }`)
	writeTreeModel(t, repo, "lgb_fp64", "lgb_regression.txt", "model.txt", `backend: "trees"
platform: "lightgbm"
input [ { name: "input__0" data_type: TYPE_FP64 } ]`)
	writeTreeModel(t, repo, "xgb_batched", "xgb_regression.json", "model.json", `backend: "trees"
parameters { key: "model_type" value { string_value: "xgboost_json" } }
max_batch_size: 8
dynamic_batching { preferred_batch_size: [ 4 ] max_queue_delay_microseconds: 30000000 }
parameters { key: "adaptive_batching" value { string_value: "false" } }`)
	writeTreeModel(t, repo, "bad_margin", "xgb_regression.json", "model.json", `backend: "trees"
parameters { key: "output_margin" value { string_value: "maybe" } }`)
	writeTreeModel(t, repo, "bad_type", "lgb_regression.txt", "model.txt", `backend: "trees"
parameters { key: "model_type" value { string_value: "xgboost_json" } }
default_model_filename: "model.txt"`)
	return repo
}

// treeCase is one request and its hand-computed answer.
type treeCase struct {
	model string
	fp64  bool
	rows  [][]float64
	want  [][]float64
}

func softmaxOf(m ...float64) []float64 {
	s := 0.0
	for _, v := range m {
		s += math.Exp(v)
	}
	out := make([]float64, len(m))
	for i, v := range m {
		out[i] = math.Exp(v) / s
	}
	return out
}

var treeCases = []treeCase{
	{"xgb_reg", false, [][]float64{{0.125, 1, 0}, {0.5, 1.5, 2}, {0.75, -3, -2}}, [][]float64{
		{0.5 + 0.1 + 0.02 - 0.01},  // base 0.5; x0<0.5, x1<1.5: 0.1; x2<2, x0<0.25: 0.02; x1≥0: -0.01
		{0.5 + 0.05 - 0.4 - 0.01},  // every value on its threshold goes right (x < t is false)
		{0.5 + 0.3 + 0.15 + 0.07}}, // x0≥0.5, x2<-1: 0.3; x2<2, x0≥0.25: 0.15; x1<0: 0.07
	},
	{"lgb_multi", false, [][]float64{{0, 1}, {3, -1}}, [][]float64{
		softmaxOf(0.6-0.05, -0.2+0, 0.1+0.15),   // c0: 0≤0 → 0.6, 1>0 → -0.05; c1: 1≤1 → -0.2, 0>-1 → 0; c2: 0≤2 → 0.1, +0.15
		softmaxOf(-0.3+0.05, -0.2+0, 0.5+0.15)}, // c0: 3>0 → -0.3, -1≤0 → 0.05; c1: -1≤1 → -0.2, 3>-1 → 0; c2: 3>2 → 0.5, +0.15
	},
	{"xgb_margin", false, [][]float64{{0, 0}}, [][]float64{
		{0.5 + 0.5 + 0.1, 0.5 + 0.1 - 0.1, 0.5 - 0.1 + 0.15}}, // base 0.5 each; c0: 0<1, 0<2; c1: 0≥0 → 0.1, 0<0.5 → -0.1; c2: 0≥-1 → -0.1, leaf 0.15
	},
	{"lgb_fp64", true, [][]float64{{0.5000000001, 4, 3}, {0.5, 1.5, -0.5}}, [][]float64{
		{-0.1 + 0.12 - 0.03}, // 0.5000000001 > 0.5 in float64 (as FP32 it would be 0.5 and go left)
		{0.4 + 0.05 + 0.01}}, // LightGBM sends x ≤ t left: every value on its threshold goes left
	},
}

func TestTreeModelsServe(t *testing.T) {
	ts := startServer(t, treesRepo(t))
	for _, tc := range treeCases {
		t.Run(tc.model+" over REST", func(t *testing.T) { treesCheck(t, tc, treesInfer(t, ts, "rest", tc)) })
		t.Run(tc.model+" over gRPC", func(t *testing.T) { treesCheck(t, tc, treesInfer(t, ts, "grpc", tc)) })
	}
	t.Run("missing values over gRPC", func(t *testing.T) {
		// NaN has no JSON form; raw bytes carry it. lgb_regression: x0 NaN is read as 0 (left),
		// x1 NaN takes the default (left): 0.4; x2 NaN default right: 0.12; x1 NaN is zero,
		// default right: -0.03.
		tc := treeCase{"lgb_fp64", true, [][]float64{{math.NaN(), math.NaN(), math.NaN()}}, [][]float64{{0.4 + 0.12 - 0.03}}}
		treesCheck(t, tc, treesInfer(t, ts, "grpc", tc))
	})
	t.Run("backend tree is an alias of trees", func(t *testing.T) {
		code, _, b := httpDo(t, "GET", ts.URL+"/v2/models/xgb_margin/config", "", nil)
		if code != 200 || !strings.Contains(string(b), `"backend":"trees"`) {
			t.Errorf("config of a model whose config.pbtxt says backend \"tree\": %d %s, want backend trees", code, b)
		}
	})
	t.Run("auto-completed configs", func(t *testing.T) {
		for _, m := range []string{"xgb_reg", "lgb_multi", "lgb_fp64"} {
			code, _, b := httpDo(t, "GET", ts.URL+"/v2/models/"+m+"/config", "", nil)
			if code != 200 {
				t.Fatalf("config %s: %d %s", m, code, b)
			}
			// One instance per core by default: the golden says so whatever the machine.
			b = bytes.ReplaceAll(b, fmt.Appendf(nil, `"count":%d,`, runtime.NumCPU()), []byte(`"count":"NumCPU",`))
			restGolden(t, "config_trees_"+m, b)
		}
	})
	t.Run("broken configs are reported", func(t *testing.T) {
		index := repositoryIndex(t, ts.URL)
		want := map[string]string{
			"bad_margin": `parameters["output_margin"]: must be true or false (or 1 or 0), got "maybe"`,
			"bad_type":   "the model type is xgboost_json but the file is a lightgbm model",
		}
		for _, m := range index {
			if w, ok := want[m.Name]; ok {
				if m.State != "UNAVAILABLE" || !strings.Contains(m.Reason, w) {
					t.Errorf("%s: state %s, reason %q; want UNAVAILABLE with %q", m.Name, m.State, m.Reason, w)
				}
				delete(want, m.Name)
			}
		}
		if len(want) > 0 {
			t.Errorf("index %+v lacks %v", index, want)
		}
	})
}

// TestTreeModelsBatch: concurrent one-row requests over REST and gRPC share executions
// (preferred batch 4, a queue delay far longer than the test, waited out as Triton does),
// and each still gets its own row's answer.
func TestTreeModelsBatch(t *testing.T) {
	ts := startServer(t, treesRepo(t))
	const requests = 16
	var wg sync.WaitGroup
	for i := range requests {
		wg.Go(func() {
			row := []float64{0.25 * float64(i%4), float64(i%3) - 1, float64(i%5) - 2}
			tc := treeCase{model: "xgb_batched", rows: [][]float64{row}, want: [][]float64{xgbRegressionByHand(row)}}
			if i%2 == 0 {
				treesCheck(t, tc, treesInfer(t, ts, "rest", tc))
			} else {
				treesCheck(t, tc, treesInfer(t, ts, "grpc", tc))
			}
		})
	}
	wg.Wait()
	st := modelStats(t, ts, "xgb_batched")
	if st.InferenceCount != requests || st.ExecutionCount >= requests {
		t.Errorf("%d requests ran as %d inferences in %d executions; want %d inferences in fewer executions",
			requests, st.InferenceCount, st.ExecutionCount, requests)
	}
	t.Logf("%d requests in %d executions", requests, st.ExecutionCount)
}

// xgbRegressionByHand walks xgb_regression.json's three trees (x < t goes left).
func xgbRegressionByHand(x []float64) []float64 {
	lt := func(v, t float64) bool { return float32(v) < float32(t) }
	t0 := 0.05
	switch {
	case lt(x[0], 0.5) && lt(x[1], 1.5):
		t0 = 0.1
	case lt(x[0], 0.5):
		t0 = -0.2
	case lt(x[2], -1):
		t0 = 0.3
	}
	t1 := -0.4
	if lt(x[2], 2) {
		t1 = 0.15
		if lt(x[0], 0.25) {
			t1 = 0.02
		}
	}
	t2 := -0.01
	if lt(x[1], 0) {
		t2 = 0.07
	}
	return []float64{0.5 + t0 + t1 + t2}
}

func treesCheck(t *testing.T, tc treeCase, got [][]float64) {
	t.Helper()
	if len(got) != len(tc.want) {
		t.Fatalf("%s: %d rows back, want %d", tc.model, len(got), len(tc.want))
	}
	for r := range tc.want {
		if len(got[r]) != len(tc.want[r]) {
			t.Fatalf("%s row %d: %d outputs, want %d", tc.model, r, len(got[r]), len(tc.want[r]))
		}
		for k := range tc.want[r] {
			if math.Abs(got[r][k]-tc.want[r][k]) > 1e-6 {
				t.Errorf("%s row %v output %d = %.9f, want %.9f", tc.model, tc.rows[r], k, got[r][k], tc.want[r][k])
			}
		}
	}
}

func (tc treeCase) datatype() string {
	if tc.fp64 {
		return "FP64"
	}
	return "FP32"
}

// treesInfer sends the case's rows over proto (REST as JSON, gRPC as raw contents) and
// returns output__0's rows.
func treesInfer(t *testing.T, ts *testServer, proto string, tc treeCase) [][]float64 {
	t.Helper()
	x := &tensor.Tensor{Name: "input__0", DType: tensor.FP32, Shape: tensor.Shape{int64(len(tc.rows)), int64(len(tc.rows[0]))}}
	if tc.fp64 {
		x.DType = tensor.FP64
	}
	for _, row := range tc.rows {
		for _, v := range row {
			if tc.fp64 {
				x.Data = binary.LittleEndian.AppendUint64(x.Data, math.Float64bits(v))
			} else {
				x.Data = binary.LittleEndian.AppendUint32(x.Data, math.Float32bits(float32(v)))
			}
		}
	}
	resp, err := ts.v2(proto, tc.model, "").Infer(t.Context(), &v2client.Request{Inputs: []*tensor.Tensor{x}})
	if err != nil {
		t.Fatalf("%s infer over %s: %v", tc.model, proto, err)
	}
	y := resp.Output("output__0")
	if len(resp.Outputs) != 1 || y == nil || y.DType != tensor.FP32 || len(y.Shape) != 2 {
		t.Fatalf("%s infer over %s: outputs %v", tc.model, proto, resp.Outputs)
	}
	vals := make([]float64, len(y.Data)/4)
	for i := range vals {
		vals[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(y.Data[4*i:])))
	}
	return treesRows(vals, int(y.Shape[1]))
}

func treesRows(vals []float64, width int) [][]float64 {
	if width <= 0 {
		panic(fmt.Sprintf("output width %d", width))
	}
	var rows [][]float64
	for len(vals) >= width {
		rows = append(rows, vals[:width])
		vals = vals[width:]
	}
	return rows
}
