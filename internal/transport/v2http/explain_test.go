package v2http

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ferryml/ferry/internal/core"
)

// explainingCore is a fakeCore that also explains: it records the request and answers
// a fixed explanation.
type explainingCore struct {
	*fakeCore
	got *core.InferRequest
}

func (c *explainingCore) Explain(_ context.Context, req *core.InferRequest) (*core.ExplainResponse, error) {
	c.got = req
	return &core.ExplainResponse{Model: req.Model, Version: "2", ID: req.ID, Method: core.MethodKernelSHAP, Space: "output",
		Background: core.BackgroundZeros, Exact: true, Coalitions: 2, Features: []string{"x[0]", "x[1]"}, Outputs: []string{"y[0]"},
		Rows: 1, Attributions: []float64{0.25, -0.5}, Expected: []float64{1}, Predictions: []float64{0.75}}, nil
}

// TestExplainDecodesAnInferBodyAndAnswersV2: the explain route takes an infer body
// (model and version from the path) and answers a V2 infer response.
func TestExplainDecodesAnInferBodyAndAnswersV2(t *testing.T) {
	ec := &explainingCore{fakeCore: newFakeCore()}
	srv := httptest.NewServer(serveRoot(New(ec, Options{}), nil))
	t.Cleanup(srv.Close)
	ts := &testServer{Server: srv, core: ec.fakeCore}
	body := `{"id":"r1","inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","data":[1,2]}],"parameters":{"background":"[[0,0]]"}}`
	res := ts.do(t, "POST", "/v2/models/echo/versions/2/explain", []byte(body), nil)
	if res.status != http.StatusOK {
		t.Fatalf("explain: %d %s", res.status, res.body)
	}
	if g := ec.got; g.Model != "echo" || g.Version != "2" || len(g.Inputs) != 1 || g.Inputs[0].Name != "x" || g.Parameters["background"] != "[[0,0]]" {
		t.Errorf("core got %+v", g)
	}
	var got map[string]any
	if err := json.Unmarshal(res.body, &got); err != nil {
		t.Fatal(err)
	}
	var want map[string]any
	_ = json.Unmarshal([]byte(`{"model_name":"echo","model_version":"2","id":"r1",
		"parameters":{"method":"kernel_shap","space":"output","background":"zeros","exact":true,"coalitions":2},
		"outputs":[
		 {"name":"attributions","datatype":"FP64","shape":[1,1,2],"data":[0.25,-0.5]},
		 {"name":"expected_value","datatype":"FP64","shape":[1],"data":[1]},
		 {"name":"predictions","datatype":"FP64","shape":[1,1],"data":[0.75]},
		 {"name":"feature_names","datatype":"BYTES","shape":[2],"data":["x[0]","x[1]"]},
		 {"name":"output_names","datatype":"BYTES","shape":[1],"data":["y[0]"]}]}`), &want)
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("explain answer (-want +got):\n%s", d)
	}
	if v := res.header.Get(VersionHeader); v != "2" {
		t.Errorf("%s = %q", VersionHeader, v)
	}
}

// TestExplainWithoutExplainer: a Core that does not explain answers 501, in JSON.
func TestExplainWithoutExplainer(t *testing.T) {
	ts := newTestServer(t, Options{})
	res := ts.do(t, "POST", "/v2/models/echo/explain", []byte(`{"inputs":[]}`), nil)
	if res.status != http.StatusNotImplemented || string(res.body) != `{"error":"this server does not explain predictions"}` {
		t.Fatalf("explain: %d %s", res.status, res.body)
	}
}
