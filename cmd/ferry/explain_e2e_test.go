package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/bits"
	"strings"
	"testing"

	"github.com/ferryml/ferry/tools/onnxgen"
)

// tabularTestConfig is the tabular example's config (tools/modelgen/tabular.go).
const tabularTestConfig = `name: "tabular"
platform: "onnxruntime_onnx"
max_batch_size: 256
input [ { name: "features" data_type: TYPE_FP32 dims: [ 6 ] } ]
output [ { name: "score" data_type: TYPE_FP32 dims: [ 1 ] } ]
instance_group [ { count: 1 kind: KIND_CPU } ]
dynamic_batching { max_queue_delay_microseconds: 500 }
`

func explainRepo(t *testing.T) string {
	repo := t.TempDir()
	writeModel(t, repo, "tabular", 1, onnxgen.Tabular(1), tabularTestConfig)
	writeTreeModel(t, repo, "xgb_binary", "xgb_binary.json", "model.json", "")
	writeTreeModel(t, repo, "lgb_multi", "lgb_multiclass.txt", "model.txt", "")
	return repo
}

// v2Answer is a V2 JSON infer response, as explain and infer answer.
type v2Answer struct {
	ModelName  string         `json:"model_name"`
	Parameters map[string]any `json:"parameters"`
	Outputs    []struct {
		Name     string          `json:"name"`
		Datatype string          `json:"datatype"`
		Shape    []int64         `json:"shape"`
		Data     json.RawMessage `json:"data"`
	} `json:"outputs"`
}

// floats returns the named output's shape and data as numbers.
func (a *v2Answer) floats(t *testing.T, name string) ([]int64, []float64) {
	return outputData[float64](t, a, name)
}

func (a *v2Answer) strings(t *testing.T, name string) []string {
	_, v := outputData[string](t, a, name)
	return v
}

func outputData[T any](t *testing.T, a *v2Answer, name string) ([]int64, []T) {
	t.Helper()
	for _, o := range a.Outputs {
		if o.Name == name {
			var v []T
			if err := json.Unmarshal(o.Data, &v); err != nil {
				t.Fatalf("output %s: %v", name, err)
			}
			return o.Shape, v
		}
	}
	t.Fatalf("no output %q in %+v", name, a.Outputs)
	return nil, nil
}

// inferBody is a V2 JSON request with one FP32 input of rows (and parameters).
func inferBody(input string, rows [][]float64, params map[string]any) []byte {
	var flat []float64
	for _, r := range rows {
		flat = append(flat, r...)
	}
	body := map[string]any{"inputs": []map[string]any{{"name": input, "datatype": "FP32",
		"shape": []int{len(rows), len(rows[0])}, "data": flat}}}
	if params != nil {
		body["parameters"] = params
	}
	b, _ := json.Marshal(body)
	return b
}

// post sends body to /v2/models/model/verb and decodes a 200 answer.
func post(t *testing.T, ts *testServer, model, verb string, body []byte) *v2Answer {
	t.Helper()
	code, _, b := httpDo(t, "POST", ts.URL+"/v2/models/"+model+"/"+verb, "application/json", bytes.NewReader(body))
	if code != 200 {
		t.Fatalf("%s %s: %d %s", verb, model, code, b)
	}
	var a v2Answer
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatalf("%s %s: %v: %s", verb, model, err, b)
	}
	return &a
}

// inferScores runs rows through /infer and returns each row's first output.
func inferScores(t *testing.T, ts *testServer, model, input, output string, rows [][]float64) [][]float64 {
	t.Helper()
	shape, v := post(t, ts, model, "infer", inferBody(input, rows, nil)).floats(t, output)
	per := int(shape[1])
	out := make([][]float64, len(rows))
	for i := range rows {
		out[i] = v[i*per : (i+1)*per]
	}
	return out
}

// bruteShapley is the exact Shapley value of every feature of x for the tabular model,
// with v(S) the mean over bg of the model's score with S's features from x: all 64
// coalitions are evaluated through /infer, and φ_i = Σ_{S∌i} |S|!(F−|S|−1)!/F! ·
// (v(S∪i) − v(S)). It shares no code with the server's KernelSHAP.
func bruteShapley(t *testing.T, ts *testServer, x []float64, bg [][]float64) []float64 {
	feats := len(x)
	var rows [][]float64
	for m := range 1 << feats {
		for _, b := range bg {
			r := make([]float64, feats)
			for j := range r {
				r[j] = b[j]
				if m>>j&1 == 1 {
					r[j] = x[j]
				}
			}
			rows = append(rows, r)
		}
	}
	scores := inferScores(t, ts, "tabular", "features", "score", rows)
	v := make([]float64, 1<<feats)
	for m := range v {
		for k := range bg {
			v[m] += scores[m*len(bg)+k][0] / float64(len(bg))
		}
	}
	fact := func(n int) float64 { g, _ := math.Lgamma(float64(n + 1)); return math.Exp(g) }
	phi := make([]float64, feats)
	for i := range feats {
		for m := range 1 << feats {
			if m>>i&1 == 0 {
				s := bits.OnesCount(uint(m))
				phi[i] += fact(s) * fact(feats-s-1) / fact(feats) * (v[m|1<<i] - v[m])
			}
		}
	}
	return phi
}

// TestExplainTabularAgreesWithBruteForceShapley: KernelSHAP on the ONNX tabular model
// (exact: 6 features) equals the Shapley values computed here from /infer answers
// over all 64 coalitions with the same background, to 1e-6, and is locally accurate.
func TestExplainTabularAgreesWithBruteForceShapley(t *testing.T) {
	ts := startServer(t, explainRepo(t))
	x := [][]float64{{0.5, -1.2, 2.0, 0.3, 1.5, -0.7}, {-1, 0.25, -0.5, 1.75, 0, 2.5}}
	bg := [][]float64{{0, 0, 0, 0, 0, 0}, {1, -1, 0.5, -0.5, 0.25, 1}, {-0.3, 0.8, -1.5, 0.6, -1, 0.1}}
	bgJSON, _ := json.Marshal(bg)
	a := post(t, ts, "tabular", "explain", inferBody("features", x, map[string]any{"background": string(bgJSON)}))
	if a.Parameters["method"] != "kernel_shap" || a.Parameters["background"] != "request" || a.Parameters["exact"] != true {
		t.Errorf("parameters %v, want method kernel_shap, background request, exact", a.Parameters)
	}
	shape, phi := a.floats(t, "attributions")
	if fmt.Sprint(shape) != "[2 1 6]" {
		t.Fatalf("attributions shape %v, want [2 1 6]", shape)
	}
	if names := a.strings(t, "feature_names"); strings.Join(names, ",") != "features[0],features[1],features[2],features[3],features[4],features[5]" {
		t.Errorf("feature_names %v", names)
	}
	_, expected := a.floats(t, "expected_value")
	_, pred := a.floats(t, "predictions")
	bgScores := inferScores(t, ts, "tabular", "features", "score", bg)
	mean := 0.0
	for _, s := range bgScores {
		mean += s[0] / float64(len(bg))
	}
	if math.Abs(expected[0]-mean) > 1e-6 {
		t.Errorf("expected_value %v, mean /infer score over the background %v", expected[0], mean)
	}
	scores := inferScores(t, ts, "tabular", "features", "score", x)
	for i := range x {
		want := bruteShapley(t, ts, x[i], bg)
		t.Logf("row %d: explain %v, brute force %v", i, phi[i*6:(i+1)*6], want)
		sum := expected[0]
		for j := range 6 {
			got := phi[i*6+j]
			if math.Abs(got-want[j]) > 1e-6 {
				t.Errorf("row %d feature %d: explain %v, brute-force Shapley over /infer %v", i, j, got, want[j])
			}
			sum += got
		}
		if math.Abs(sum-scores[i][0]) > 1e-6 || math.Abs(pred[i]-scores[i][0]) > 1e-6 {
			t.Errorf("row %d: expected + Σφ = %v, prediction %v, /infer score %v", i, sum, pred[i], scores[i][0])
		}
	}
}

// TestExplainWithoutBackgroundUsesZeros: with no background, the answer says so and
// explains against the all-zeros row.
func TestExplainWithoutBackgroundUsesZeros(t *testing.T) {
	ts := startServer(t, explainRepo(t))
	x := [][]float64{{1, 2, 3, -1, -2, -3}}
	a := post(t, ts, "tabular", "explain", inferBody("features", x, nil))
	if a.Parameters["background"] != "zeros" {
		t.Errorf("background %v, want zeros", a.Parameters["background"])
	}
	_, expected := a.floats(t, "expected_value")
	zero := inferScores(t, ts, "tabular", "features", "score", [][]float64{make([]float64, 6)})
	if math.Abs(expected[0]-zero[0][0]) > 1e-6 {
		t.Errorf("expected_value %v, score of the zero row %v", expected[0], zero[0][0])
	}
}

// TestExplainTreesIsTreeSHAPInMarginSpace: tree models are explained exactly, in margin
// space: attributions add up to the margin minus the expected margin (1e-6), and the
// margin through the model's link is /infer's answer.
func TestExplainTreesIsTreeSHAPInMarginSpace(t *testing.T) {
	ts := startServer(t, explainRepo(t))
	for _, tc := range []struct {
		model string
		rows  [][]float64
		link  func([]float64) []float64
	}{
		{"xgb_binary", [][]float64{{3, 0.5}, {4, 12}, {math.NaN(), 1}}, func(m []float64) []float64 { return []float64{1 / (1 + math.Exp(-m[0]))} }},
		{"lgb_multi", [][]float64{{0.1, -2}, {1, 1}, {-0.4, 0.3}}, softmaxRow},
	} {
		t.Run(tc.model, func(t *testing.T) {
			rows := tc.rows
			if tc.model == "xgb_binary" {
				rows = rows[:2] // JSON has no NaN
			}
			a := post(t, ts, tc.model, "explain", inferBody("input__0", rows, nil))
			if a.Parameters["method"] != "tree_shap" || a.Parameters["space"] != "margin" {
				t.Fatalf("parameters %v, want tree_shap in margin space", a.Parameters)
			}
			shape, phi := a.floats(t, "attributions")
			outs, feats := int(shape[1]), int(shape[2])
			_, expected := a.floats(t, "expected_value")
			_, pred := a.floats(t, "predictions")
			scores := inferScores(t, ts, tc.model, "input__0", "output__0", rows)
			for i := range rows {
				for k := range outs {
					sum := expected[k]
					for j := range feats {
						sum += phi[(i*outs+k)*feats+j]
					}
					if math.Abs(sum-pred[i*outs+k]) > 1e-6 {
						t.Errorf("row %d output %d: expected + Σφ = %v, margin %v", i, k, sum, pred[i*outs+k])
					}
				}
				got := tc.link(pred[i*outs : (i+1)*outs])
				for k := range outs {
					if math.Abs(got[k]-scores[i][k]) > 1e-6 {
						t.Errorf("row %d output %d: link(margin) %v, /infer %v", i, k, got[k], scores[i][k])
					}
				}
			}
			// KernelSHAP on request explains the same model's output, locally accurate.
			k := post(t, ts, tc.model, "explain", inferBody("input__0", rows[:1], map[string]any{"method": "kernel_shap"}))
			_, kphi := k.floats(t, "attributions")
			_, kexp := k.floats(t, "expected_value")
			sum := kexp[0]
			for j := range feats {
				sum += kphi[j]
			}
			if k.Parameters["method"] != "kernel_shap" || math.Abs(sum-scores[0][0]) > 1e-6 {
				t.Errorf("kernel_shap: %v, expected + Σφ = %v, /infer %v", k.Parameters, sum, scores[0][0])
			}
		})
	}
}

func softmaxRow(m []float64) []float64 {
	sum, out := 0.0, make([]float64, len(m))
	for i, v := range m {
		out[i] = math.Exp(v)
		sum += out[i]
	}
	for i := range out {
		out[i] /= sum
	}
	return out
}

// TestExplainBadInput: what explain cannot take is refused with 400 or 404 and a
// message naming what is wrong.
func TestExplainBadInput(t *testing.T) {
	ts := startServer(t, explainRepo(t))
	five := [][]float64{{1, 2, 3, 4, 5}}
	six := [][]float64{{1, 2, 3, 4, 5, 6}}
	for _, tc := range []struct {
		name, model, body string
		code              int
		want              string
	}{
		{"wrong width", "tabular", string(inferBody("features", five, nil)), 400, "has 5 features; model 'tabular' takes 6"},
		{"rank 3", "tabular", `{"inputs":[{"name":"features","datatype":"FP32","shape":[1,1,6],"data":[1,2,3,4,5,6]}]}`, 400, "explain takes [rows, features] or [features]"},
		{"too many rows", "tabular", `{"inputs":[{"name":"features","datatype":"FP32","shape":[5000,6],"data":[` + strings.Repeat("0,", 29999) + `0]}]}`, 400, "at most 4096 rows"},
		{"BYTES tensor", "tabular", `{"inputs":[{"name":"features","datatype":"BYTES","shape":[1],"data":["a"]}]}`, 400, "BYTES has no numeric value"},
		{"wrong input name", "tabular", `{"inputs":[{"name":"x","datatype":"FP32","shape":[6],"data":[1,2,3,4,5,6]}]}`, 400, `the request has ["x"]`},
		{"unknown model", "nope", string(inferBody("features", six, nil)), 404, "unknown model: 'nope'"},
		{"background not JSON", "tabular", string(inferBody("features", six, map[string]any{"background": "[[1,2"})), 400, `parameter "background"`},
		{"background width", "tabular", string(inferBody("features", six, map[string]any{"background": "[[1,2]]"})), 400, "row 0 has 2 numbers, the model takes 6 features"},
		{"background not a string", "tabular", string(inferBody("features", six, map[string]any{"background": 3})), 400, "want a string holding a JSON array"},
		{"unknown method", "tabular", string(inferBody("features", six, map[string]any{"method": "lime"})), 400, `parameter "method"`},
		{"tree_shap on an MLP", "tabular", string(inferBody("features", six, map[string]any{"method": "tree_shap"})), 400, "no exact explainer"},
		{"malformed JSON", "tabular", `{"inputs":[`, 400, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, b := httpDo(t, "POST", ts.URL+"/v2/models/"+tc.model+"/explain", "application/json", strings.NewReader(tc.body))
			var e struct{ Error string }
			if code != tc.code || json.Unmarshal(b, &e) != nil || e.Error == "" || !strings.Contains(e.Error, tc.want) {
				t.Fatalf("explain %s: %d %s, want %d with %q", tc.body, code, b, tc.code, tc.want)
			}
		})
	}
}
