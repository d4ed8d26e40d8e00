package main

import (
	"fmt"
	"strings"
	"testing"
)

// TestStatsAndMetricsAgree: after successful and failed requests, /v2/models/{m}/stats and
// /metrics report the same counts, and every metric family the issue names is exported.
func TestStatsAndMetricsAgree(t *testing.T) {
	ts := startServer(t, exampleRepo(t))
	const good, bad = 5, 2
	for i := range good {
		code, _, b := httpDo(t, "POST", ts.URL+"/v2/models/simple/infer", "application/json", strings.NewReader(simpleBody(1+i%3)))
		if code != 200 {
			t.Fatalf("infer: %d %s", code, b)
		}
	}
	for range bad { // reaches the model version, then fails its checks
		code, _, _ := httpDo(t, "POST", ts.URL+"/v2/models/simple/infer", "application/json",
			strings.NewReader(`{"inputs":[{"name":"INPUT0","shape":[1,16],"datatype":"INT32","data":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]}]}`))
		if code != 400 {
			t.Fatalf("bad infer answered %d, want 400", code)
		}
	}
	stats, err := ts.rest.Model("simple", "").Stats(t.Context())
	if err != nil || len(stats) != 1 {
		t.Fatalf("stats %v: %v", stats, err)
	}
	st := stats[0]
	wantItems := uint64(1 + 2 + 3 + 1 + 2)
	if st.Success.Count != good || st.Fail.Count != bad || st.InferenceCount != wantItems || st.ExecutionCount != good {
		t.Fatalf("stats: success %d fail %d items %d executions %d; want %d %d %d %d",
			st.Success.Count, st.Fail.Count, st.InferenceCount, st.ExecutionCount, good, bad, wantItems, good)
	}
	_, _, m := httpDo(t, "GET", ts.URL+"/metrics", "", nil)
	metrics := string(m)
	for _, line := range []string{
		fmt.Sprintf(`ferry_request_success_total{model="simple",version="1"} %d`, st.Success.Count),
		fmt.Sprintf(`ferry_request_failure_total{model="simple",version="1"} %d`, st.Fail.Count),
		fmt.Sprintf(`ferry_inference_count_total{model="simple",version="1"} %d`, st.InferenceCount),
		fmt.Sprintf(`ferry_execution_count_total{model="simple",version="1"} %d`, st.ExecutionCount),
		fmt.Sprintf(`ferry_request_duration_seconds_count{model="simple",version="1"} %d`, good),
		`ferry_requests_in_flight{model="simple",version="1"} 0`,
		`ferry_model_state{model="simple",state="READY",version="1"} 1`,
		`ferry_model_load_duration_seconds_count{model="simple",version="1"} 1`,
	} {
		if !strings.Contains(metrics, line) {
			t.Errorf("/metrics lacks %q", line)
		}
	}
	for _, family := range []string{"ferry_request_queue_duration_seconds", "ferry_request_compute_input_duration_seconds",
		"ferry_request_compute_infer_duration_seconds", "ferry_request_compute_output_duration_seconds"} {
		if !strings.Contains(metrics, family+"_bucket{") {
			t.Errorf("/metrics lacks histogram %s", family)
		}
	}
}
