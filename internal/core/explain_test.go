package core

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/ferryml/ferry/internal/explain"
	"github.com/ferryml/ferry/internal/scheduler"
	"github.com/ferryml/ferry/internal/tensor"
)

const linIO = `input { name: "x" data_type: TYPE_INT32 dims: [ 3 ] }
output { name: "y" data_type: TYPE_INT32 dims: [ 1 ] }`

// linFn is y = 2·x0 − x1 + 3·x2 over INT32 rows of 3, one row per request (the model
// does not batch).
func linFn() *ensFn {
	return &ensFn{run: func(_ context.Context, in map[string][]int32) (map[string][]int32, error) {
		x := in["x"]
		if len(x) != 3 {
			return nil, errors.New("want one row of 3")
		}
		return map[string][]int32{"y": {2*x[0] - x[1] + 3*x[2]}}, nil
	}}
}

// exactFn is a fake instance with an exact explainer that answers fixed numbers, or err.
type exactFn struct {
	*ensFn
	err error
}

func (f *exactFn) ExplainExact(rows [][]float64) (*explain.Result, error) {
	if f.err != nil {
		return nil, f.err
	}
	return &explain.Result{Rows: len(rows), Outputs: 1, Features: 3, Phi: []float64{1, 2, 3}, Expected: []float64{4},
		Pred: []float64{10}, Exact: true, Space: "margin", Link: "identity"}, nil
}

func explainReq(model string, params Parameters, rows ...int32) *InferRequest {
	t := ensVec("x", rows...)
	t.Shape = tensor.Shape{int64(len(rows) / 3), 3}
	return &InferRequest{Model: model, Inputs: []*tensor.Tensor{t}, Parameters: params}
}

// TestExplainKernelThroughInfer: an INT32 model without an exact explainer is explained
// by KernelSHAP through Infer, one row per request; on a linear model the attributions
// are w_i (x_i − E_bg[x_i]), against the request's, the model's or the zero background.
func TestExplainKernelThroughInfer(t *testing.T) {
	s := ensServer(t, map[string]string{"lin": linIO}, map[string]*ensFn{"lin": linFn()})
	w := []float64{2, -1, 3}
	for _, tc := range []struct {
		name     string
		params   Parameters
		modelBg  [][]float64
		wantFrom string
		mean     []float64
	}{
		{"zeros", nil, nil, BackgroundZeros, []float64{0, 0, 0}},
		{"request", Parameters{"background": "[[1,1,1],[3,5,7]]"}, [][]float64{{9, 9, 9}}, BackgroundRequest, []float64{2, 3, 4}},
		{"model", nil, [][]float64{{1, 0, 2}}, BackgroundModel, []float64{1, 0, 2}},
		{"model background of the wrong width", nil, [][]float64{{1, 0}}, BackgroundZeros, []float64{0, 0, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s.background = func(string, string) [][]float64 { return tc.modelBg }
			r, err := s.Explain(context.Background(), explainReq("lin", tc.params, 5, 6, 7, -1, 0, 2))
			if err != nil {
				t.Fatal(err)
			}
			if r.Method != MethodKernelSHAP || r.Background != tc.wantFrom || r.Rows != 2 || r.Fallback != "" {
				t.Fatalf("method %s background %s rows %d fallback %q", r.Method, r.Background, r.Rows, r.Fallback)
			}
			x := [][]float64{{5, 6, 7}, {-1, 0, 2}}
			for i := range x {
				for j := range 3 {
					if got, want := r.Attributions[i*3+j], w[j]*(x[i][j]-tc.mean[j]); math.Abs(got-want) > 1e-9 {
						t.Errorf("row %d feature %d: %v, want %v", i, j, got, want)
					}
				}
			}
			if strings.Join(r.Features, ",") != "x[0],x[1],x[2]" || strings.Join(r.Outputs, ",") != "y[0]" {
				t.Errorf("features %v outputs %v", r.Features, r.Outputs)
			}
		})
	}
}

// TestExplainUsesTheExactExplainer: an instance that explains exactly is asked (tree
// SHAP); one whose explainer fails is explained by KernelSHAP, saying why, unless the
// request insists on tree_shap.
func TestExplainUsesTheExactExplainer(t *testing.T) {
	good, bad := &exactFn{ensFn: linFn()}, &exactFn{ensFn: linFn(), err: errors.New("no node covers")}
	s := ensServer(t, map[string]string{"good": linIO, "bad": linIO}, nil)
	for name, inst := range map[string]*exactFn{"good": good, "bad": bad} {
		m := s.repo.(*ensRepo).models[name]
		m.sched = newTestScheduler(t, name, inst)
		s.repo.(*ensRepo).models[name] = m
	}
	r, err := s.Explain(context.Background(), explainReq("good", nil, 1, 2, 3))
	if err != nil || r.Method != MethodTreeSHAP || r.Space != "margin" || r.Attributions[2] != 3 || r.Outputs[0] != "y[0]" {
		t.Fatalf("good: %+v, %v", r, err)
	}
	r, err = s.Explain(context.Background(), explainReq("bad", nil, 1, 2, 3))
	if err != nil || r.Method != MethodKernelSHAP || r.Fallback != "no node covers" {
		t.Fatalf("bad: %+v, %v", r, err)
	}
	_, err = s.Explain(context.Background(), explainReq("bad", Parameters{"method": "tree_shap"}, 1, 2, 3))
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "no node covers") {
		t.Fatalf("bad with tree_shap: %v", err)
	}
}

func TestExplainRefusesWhatItCannotEncode(t *testing.T) {
	s := ensServer(t, map[string]string{"lin": linIO}, map[string]*ensFn{"lin": linFn()})
	for _, tc := range []struct {
		bg, want string
	}{
		{"[[0.5,0,0]]", "0.5"},
		{"[[1e10,0,0]]", "INT32"},
	} {
		_, err := s.Explain(context.Background(), explainReq("lin", Parameters{"background": tc.bg}, 1, 2, 3))
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("background %s: %v, want an invalid-request error naming %q", tc.bg, err, tc.want)
		}
	}
}

// FuzzBackgroundRows: any parameter text gives rows of the model's width or an
// ErrInvalid error, never a panic.
func FuzzBackgroundRows(f *testing.F) {
	for _, s := range []string{"[[1,2,3]]", "[1,2,3]", "[]", "[[1,2],[3]]", `"x"`, "[[1e400,0,0]]", "null", "[[null,1,2]]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		rows, ok, err := backgroundRows(Parameters{"background": text}, 3)
		if err != nil {
			if !errors.Is(err, ErrInvalid) || ok {
				t.Fatalf("%q: %v (ok %v)", text, err, ok)
			}
			return
		}
		if !ok || len(rows) == 0 {
			t.Fatalf("%q: ok %v, %d rows", text, ok, len(rows))
		}
		for _, r := range rows {
			if len(r) != 3 {
				t.Fatalf("%q: row of %d", text, len(r))
			}
		}
	})
}

func newTestScheduler(t *testing.T, name string, inst scheduler.Instance) *scheduler.Scheduler {
	s := scheduler.New(name, []scheduler.Instance{inst}, scheduler.Options{})
	t.Cleanup(func() { s.Close() })
	return s
}
