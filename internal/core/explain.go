package core

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"

	"github.com/ferryml/ferry/internal/explain"
	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/internal/tensor"
)

// ExactExplainer is implemented by backend instances that explain their own
// predictions exactly: the trees backend runs TreeSHAP over its node structure, in
// margin space. Explain reaches it through the lease's scheduler; an error (a model
// without node covers, say) makes Explain fall back to KernelSHAP.
type ExactExplainer interface {
	ExplainExact(rows [][]float64) (*explain.Result, error)
}

// The explanation methods, as ExplainResponse.Method and the "method" request
// parameter name them.
const (
	MethodTreeSHAP   = "tree_shap"
	MethodKernelSHAP = "kernel_shap"
)

// MaxExplainRows bounds the rows of one explain request: TreeSHAP runs on the request's
// own goroutine (about 1 ms per row for 100 trees of depth 6), outside the batcher.
const MaxExplainRows = 4096

// Where KernelSHAP's background rows came from (ExplainResponse.Background).
const (
	BackgroundRequest = "request" // the "background" request parameter
	BackgroundModel   = "model"   // Options.Background (the drift baseline)
	BackgroundZeros   = "zeros"   // neither: one row of zeros
)

// ExplainResponse holds the attributions of an explain request: for each of Rows
// rows, each explained output column and each feature, how much the feature moved the
// output from Expected. For each row and output, Expected + Σ attributions =
// Predictions (local accuracy).
type ExplainResponse struct {
	Model, Version, ID string
	Method             string // MethodTreeSHAP or MethodKernelSHAP
	// Space is "margin" (TreeSHAP: the raw margin, before Link) or "output" (KernelSHAP:
	// the outputs as /infer returns them); Link turns the margin into the output.
	Space, Link string
	// Background is where KernelSHAP's background came from; "" for TreeSHAP, whose
	// expectation is over the training data the node covers count.
	Background string
	// Exact is false when KernelSHAP sampled coalitions (more than 12 features);
	// Coalitions is how many it evaluated per row.
	Exact      bool
	Coalitions int
	// Fallback says why a model with an exact explainer was explained by KernelSHAP.
	Fallback string
	Features []string // "NAME[j]", the input's columns
	Outputs  []string // "NAME[k]", the explained output columns
	Rows     int
	// Attributions is [Rows][len(Outputs)][len(Features)], row-major.
	Attributions []float64
	Expected     []float64 // [len(Outputs)]
	Predictions  []float64 // [Rows][len(Outputs)]: what was explained
}

// Explain answers POST /v2/models/{m}[/versions/{v}]/explain, whose body is an infer
// request with one numeric input, [rows, features] or [features]. A version whose
// instances explain exactly (ExactExplainer) gets TreeSHAP; any other gets KernelSHAP
// over this server's own inference path (Infer, in batches: batching, admission and
// metrics apply), against the "background" parameter's rows (a JSON array of rows in
// a string), else Options.Background's, else a row of zeros.
func (s *Server) Explain(ctx context.Context, req *InferRequest) (*ExplainResponse, error) {
	l, err := s.acquire(ctx, req.Model, req.Version)
	if err != nil {
		return nil, err
	}
	defer l.Release()
	if req.Prepare != nil { // a raw binary body takes its shape from the model
		if err := req.Prepare(s.metadata(l), l.Config.GetMaxBatchSize() > 0); err != nil {
			return nil, err
		}
	}
	in, rows, err := explainRows(l.Config, req.Inputs)
	if err != nil {
		return nil, err
	}
	method, err := explainMethod(req.Parameters)
	if err != nil {
		return nil, err
	}
	resp := &ExplainResponse{Model: l.Model, Version: l.Version, ID: req.ID, Rows: len(rows)}
	for j := range len(rows[0]) {
		resp.Features = append(resp.Features, fmt.Sprintf("%s[%d]", in.GetName(), j))
	}
	if method != MethodKernelSHAP {
		found, err := s.explainExact(l, rows, resp)
		switch {
		case found && err == nil:
			return resp, nil
		case method == MethodTreeSHAP:
			why := "the model's backend has no exact explainer"
			if err != nil {
				why = err.Error()
			}
			return nil, Invalidf("parameter \"method\": %s is not available for model '%s' version %s: %s", MethodTreeSHAP, l.Model, l.Version, why)
		case err != nil:
			resp.Fallback = err.Error()
		}
	}
	if err := s.explainKernel(ctx, l, req, in, rows, resp); err != nil {
		return nil, err
	}
	return resp, nil
}

// explainMethod reads the "method" parameter ("" lets the model decide).
func explainMethod(p Parameters) (string, error) {
	v, ok := p["method"]
	if !ok {
		return "", nil
	}
	m, _ := v.(string)
	if m != MethodTreeSHAP && m != MethodKernelSHAP {
		return "", Invalidf("parameter \"method\": want %q or %q, got %v", MethodTreeSHAP, MethodKernelSHAP, v)
	}
	return m, nil
}

// explainExact runs the version's exact explainer, if its instances have one (found);
// err says why it could not explain this model (no node covers, say).
func (s *Server) explainExact(l *Lease, rows [][]float64, resp *ExplainResponse) (found bool, err error) {
	var ex ExactExplainer
	if l.Scheduler != nil {
		if inst := l.Scheduler.Instances(); len(inst) > 0 {
			ex, _ = inst[0].(ExactExplainer)
		}
	}
	if ex == nil {
		return false, nil
	}
	r, err := ex.ExplainExact(rows)
	if err != nil {
		return true, err
	}
	resp.Method = MethodTreeSHAP
	out := "output"
	if o := l.Config.GetOutput(); len(o) > 0 {
		out = o[0].GetName()
	}
	for k := range r.Outputs {
		resp.Outputs = append(resp.Outputs, fmt.Sprintf("%s[%d]", out, k))
	}
	resp.fill(r)
	return true, nil
}

func (r *ExplainResponse) fill(res *explain.Result) {
	r.Space, r.Link, r.Exact, r.Coalitions = res.Space, res.Link, res.Exact, res.Coalitions
	r.Attributions, r.Expected, r.Predictions = res.Phi, res.Expected, res.Pred
}

// explainRows checks that the request has the model's one input, numeric, shaped
// [rows, features] or [features] with the model's width, and returns it as rows.
func explainRows(cfg *inference.ModelConfig, inputs []*tensor.Tensor) (*inference.ModelInput, [][]float64, error) {
	if n := len(cfg.GetInput()); n != 1 {
		return nil, nil, Invalidf("explain needs a model with one input; model '%s' has %d", cfg.GetName(), n)
	}
	in := cfg.GetInput()[0]
	if len(inputs) != 1 || inputs[0].Name != in.GetName() {
		names := make([]string, len(inputs))
		for i, t := range inputs {
			names[i] = t.Name
		}
		return nil, nil, &InputError{Input: in.GetName(), Reason: fmt.Sprintf("explain takes exactly this one input of model '%s'; the request has %q", cfg.GetName(), names)}
	}
	t := inputs[0]
	if t.DType == tensor.Bytes || !t.DType.Valid() {
		return nil, nil, &InputError{Input: t.Name, Reason: fmt.Sprintf("datatype %s has no numeric value to explain; send FP32, FP64 or an integer type", t.DType)}
	}
	if err := t.Validate(); err != nil {
		return nil, nil, &InputError{Input: t.Name, Reason: err.Error()}
	}
	if len(t.Shape) < 1 || len(t.Shape) > 2 || t.Shape[len(t.Shape)-1] < 1 || len(t.Shape) == 2 && t.Shape[0] < 1 {
		return nil, nil, &InputError{Input: t.Name, Reason: fmt.Sprintf("shape %v: explain takes [rows, features] or [features]", t.Shape)}
	}
	feats := int(t.Shape[len(t.Shape)-1])
	if len(t.Shape) == 2 && t.Shape[0] > MaxExplainRows {
		return nil, nil, &InputError{Input: t.Name, Reason: fmt.Sprintf("shape %v: explain takes at most %d rows per request", t.Shape, MaxExplainRows)}
	}
	if want := modelWidth(in); want > 0 && feats != want {
		return nil, nil, &InputError{Input: t.Name, Reason: fmt.Sprintf("shape %v has %d features; model '%s' takes %d", t.Shape, feats, cfg.GetName(), want)}
	}
	vals, err := t.Float64s()
	if err != nil {
		return nil, nil, &InputError{Input: t.Name, Reason: err.Error()}
	}
	rows := make([][]float64, len(vals)/feats)
	for i := range rows {
		rows[i] = vals[i*feats : (i+1)*feats]
	}
	return in, rows, nil
}

// modelWidth is the number of features in one row of the input (its dims without the
// batch dimension, multiplied out), or -1 when a dimension is variable.
func modelWidth(in *inference.ModelInput) int {
	n := 1
	for _, d := range in.GetDims() {
		if d < 0 {
			return -1
		}
		n *= int(d)
	}
	return n
}

// backgroundRows reads the "background" parameter: a JSON array of rows (or one row)
// of feats numbers, in a string (V2 parameters are scalars).
func backgroundRows(p Parameters, feats int) ([][]float64, bool, error) {
	v, ok := p["background"]
	if !ok {
		return nil, false, nil
	}
	text, ok := v.(string)
	if !ok {
		return nil, false, Invalidf("parameter \"background\": want a string holding a JSON array of rows, got %v", v)
	}
	var rows [][]float64
	if err := json.Unmarshal([]byte(text), &rows); err != nil {
		var row []float64
		if json.Unmarshal([]byte(text), &row) != nil {
			return nil, false, Invalidf("parameter \"background\": want a JSON array of rows of %d numbers: %v", feats, err)
		}
		rows = [][]float64{row}
	}
	if len(rows) == 0 {
		return nil, false, Invalidf("parameter \"background\": no rows")
	}
	for i, r := range rows {
		if len(r) != feats {
			return nil, false, Invalidf("parameter \"background\": row %d has %d numbers, the model takes %d features", i, len(r), feats)
		}
	}
	return rows, true, nil
}

// callError is an error of the model itself during KernelSHAP, which keeps its kind
// (unavailable, deadline, ...); the others KernelSHAP returns are the request's.
type callError struct{ err error }

func (e *callError) Error() string { return e.err.Error() }
func (e *callError) Unwrap() error { return e.err }

func explainError(err error) error {
	var ce *callError
	if errors.As(err, &ce) {
		return ce.err
	}
	return Invalidf("explain: %v", err)
}

// InferResponse is the explanation as a V2 inference response, so V2 clients read it
// as they read /infer's answers: outputs "attributions" [rows, outputs, features],
// "expected_value" [outputs] and "predictions" [rows, outputs], all FP64, and
// "feature_names" [features] and "output_names" [outputs] as BYTES; parameters
// "method", "space", "link", "background", "exact", "coalitions" and "fallback" (the
// empty ones left out).
func (r *ExplainResponse) InferResponse() *InferResponse {
	outs, feats := int64(len(r.Outputs)), int64(len(r.Features))
	p := Parameters{"method": r.Method, "space": r.Space, "exact": r.Exact}
	for k, v := range map[string]string{"link": r.Link, "background": r.Background, "fallback": r.Fallback} {
		if v != "" {
			p[k] = v
		}
	}
	if r.Coalitions > 0 {
		p["coalitions"] = int64(r.Coalitions)
	}
	return &InferResponse{Model: r.Model, Version: r.Version, ID: r.ID, Parameters: p, Outputs: []*tensor.Tensor{
		fp64Tensor("attributions", tensor.Shape{int64(r.Rows), outs, feats}, r.Attributions),
		fp64Tensor("expected_value", tensor.Shape{outs}, r.Expected),
		fp64Tensor("predictions", tensor.Shape{int64(r.Rows), outs}, r.Predictions),
		bytesTensor("feature_names", r.Features),
		bytesTensor("output_names", r.Outputs),
	}}
}

func fp64Tensor(name string, shape tensor.Shape, vals []float64) *tensor.Tensor {
	data := make([]byte, 0, 8*len(vals))
	for _, v := range vals {
		data = binary.LittleEndian.AppendUint64(data, math.Float64bits(v))
	}
	return &tensor.Tensor{Name: name, DType: tensor.FP64, Shape: shape, Data: data}
}

func bytesTensor(name string, vals []string) *tensor.Tensor {
	var data []byte
	for _, v := range vals {
		data = tensor.AppendBytesElement(data, []byte(v))
	}
	return &tensor.Tensor{Name: name, DType: tensor.Bytes, Shape: tensor.Shape{int64(len(vals))}, Data: data}
}
