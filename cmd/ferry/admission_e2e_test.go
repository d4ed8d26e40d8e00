package main

// Admission end to end: rate limits (429 + Retry-After, RESOURCE_EXHAUSTED) and load
// shedding (503 + Retry-After, UNAVAILABLE, answered at once) on a real server.

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ferryml/ferry/internal/admission"
	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/internal/modelconfig"
	"github.com/ferryml/ferry/internal/repository"
	"github.com/ferryml/ferry/internal/scheduler"
	"github.com/ferryml/ferry/internal/tensor"
)

// fixedCostBackend runs models that take a fixed time per execution (the config's
// fixed_cost parameter) and copy input x to output y: a model whose capacity is known
// exactly (instances / cost) whatever else the shared machine runs.
func fixedCostBackend() repository.Backend {
	return repository.Backend{Platform: "fixedcost_test", DefaultFilename: "model.bin",
		Open: func(_ context.Context, _ string, cfg *inference.ModelConfig) (scheduler.Instance, error) {
			d, err := modelconfig.ParamDuration(cfg, "fixed_cost", 10*time.Millisecond, false)
			return fixedCost(d), err
		}}
}

type fixedCost time.Duration

func (f fixedCost) Execute(ctx context.Context, in []*tensor.Tensor, _ []string) ([]*tensor.Tensor, error) {
	select {
	case <-time.After(time.Duration(f)):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return []*tensor.Tensor{{Name: "y", DType: in[0].DType, Shape: in[0].Shape, Data: in[0].Data}}, nil
}
func (fixedCost) Close() error { return nil }

// writeFixedCostModel adds a fixed-cost model to repo: instances run at once, each
// execution takes cost; params are more config.pbtxt parameters (key, value, ...).
func writeFixedCostModel(t testing.TB, repo, name string, instances int, cost time.Duration, params ...string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(repo, name, "1"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(repo, name, "1", "model.bin"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`backend: "fixedcost"
input [ { name: "x" data_type: TYPE_FP32 dims: [ 1 ] } ]
output [ { name: "y" data_type: TYPE_FP32 dims: [ 1 ] } ]
instance_group [ { count: %d kind: KIND_CPU } ]
parameters { key: "fixed_cost" value { string_value: "%s" } }
`, instances, cost)
	for i := 0; i+1 < len(params); i += 2 {
		cfg += fmt.Sprintf("parameters { key: %q value { string_value: %q } }\n", params[i], params[i+1])
	}
	if err := os.WriteFile(filepath.Join(repo, name, "config.pbtxt"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
}

// withFixedCost adds the fixed-cost backend; withRateLimits sets --rate-limits.
func withFixedCost(c *serveConfig) {
	c.moreBackends = repository.Backends{"fixedcost": fixedCostBackend()}
}

func withRateLimits(l admission.Config) serverOption {
	return func(c *serveConfig) { c.admission.limits.cfg = l }
}

const fixedCostBody = `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}`

func fixedCostGRPC(model string) *inference.ModelInferRequest {
	return &inference.ModelInferRequest{ModelName: model, Inputs: []*inference.ModelInferRequest_InferInputTensor{
		{Name: "x", Datatype: "FP32", Shape: []int64{1}, Contents: &inference.InferTensorContents{Fp32Contents: []float32{1}}}}}
}

// TestAdmissionRateLimitOverBothTransports: past its bucket the anonymous tenant gets
// 429 with Retry-After over REST and RESOURCE_EXHAUSTED over gRPC, counted by reason.
func TestAdmissionRateLimitOverBothTransports(t *testing.T) {
	repo := t.TempDir()
	writeFixedCostModel(t, repo, "fc", 1, time.Millisecond)
	ts := startServer(t, repo, withFixedCost, withRateLimits(admission.Config{Default: admission.Limits{RequestsPerSecond: 0.5, RequestBurst: 2}}))
	url := ts.URL + "/v2/models/fc/infer"
	for i := range 2 {
		if code, _, b := httpDo(t, "POST", url, "application/json", strings.NewReader(fixedCostBody)); code != http.StatusOK {
			t.Fatalf("request %d of the burst: %d %s", i, code, b)
		}
	}
	code, h, b := httpDo(t, "POST", url, "application/json", strings.NewReader(fixedCostBody))
	if code != http.StatusTooManyRequests || h.Get("Retry-After") != "2" || !strings.Contains(string(b), `tenant: is over its rate limit of 0.5 requests/s`) {
		t.Fatalf("3rd request: %d Retry-After %q %s; want 429, Retry-After 2 and the reason", code, h.Get("Retry-After"), b)
	}
	_, err := ts.GRPC.ModelInfer(t.Context(), fixedCostGRPC("fc"))
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "rate limit") {
		t.Fatalf("gRPC past the limit: %v, want RESOURCE_EXHAUSTED", err)
	}
	_, _, m := httpDo(t, "GET", ts.URL+"/metrics", "", nil)
	if !strings.Contains(string(m), `ferry_admission_refusals_total{reason="rate_limited",tenant=""} 2`) {
		t.Errorf("metrics do not count the 2 refusals:\n%s", grepLines(string(m), "ferry_admission"))
	}
	// A refusal is not the version's failure.
	if strings.Contains(string(m), `ferry_request_failure_total{model="fc"`) && !strings.Contains(string(m), `ferry_request_failure_total{model="fc",version="1"} 0`) {
		t.Errorf("refusals counted as failures:\n%s", grepLines(string(m), "failure"))
	}
}

// TestAdmissionOverloadRefusesAtOnce: with the limit full, a request is refused with
// 503 and Retry-After over REST and UNAVAILABLE over gRPC, at once (not after the
// requests in flight), and those in flight succeed.
func TestAdmissionOverloadRefusesAtOnce(t *testing.T) {
	repo := t.TempDir()
	writeFixedCostModel(t, repo, "slow", 2, 2*time.Second, "shed_min_limit", "2", "shed_max_limit", "2", "shed_latency_objective", "10s")
	ts := startServer(t, repo, withFixedCost)
	url := ts.URL + "/v2/models/slow/infer"
	held := make(chan int, 2)
	for range 2 {
		go func() {
			code, _, _ := httpDo(t, "POST", url, "application/json", strings.NewReader(fixedCostBody))
			held <- code
		}()
	}
	waitInFlight(t, ts, `ferry_admission_in_flight{model="slow",version="1"} 2`)
	start := time.Now()
	code, h, b := httpDo(t, "POST", url, "application/json", strings.NewReader(fixedCostBody))
	took := time.Since(start)
	if code != http.StatusServiceUnavailable || h.Get("Retry-After") != "1" || !strings.Contains(string(b), "model 'slow' is overloaded") {
		t.Fatalf("past the limit: %d Retry-After %q %s; want 503, Retry-After 1, the reason", code, h.Get("Retry-After"), b)
	}
	_, err := ts.GRPC.ModelInfer(t.Context(), fixedCostGRPC("slow"))
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("gRPC past the limit: %v, want UNAVAILABLE", err)
	}
	if took > time.Second { // the requests in flight take 2 s; a queued refusal would wait for them
		t.Errorf("refusal took %s: it waited", took)
	}
	for range 2 {
		if c := <-held; c != http.StatusOK {
			t.Errorf("an admitted request ended with %d", c)
		}
	}
	_, _, m := httpDo(t, "GET", ts.URL+"/metrics", "", nil)
	for _, want := range []string{`ferry_admission_refusals_total{reason="overloaded",tenant=""} 2`, `ferry_admission_concurrency_limit{model="slow",version="1"} 2`} {
		if !strings.Contains(string(m), want) {
			t.Errorf("metrics lack %s:\n%s", want, grepLines(string(m), "ferry_admission"))
		}
	}
}
