package main

// End-to-end tests of the trace and logging extensions over REST and gRPC: a real Ferry,
// its real core and settings, and (for logging) the logger newLogger builds.

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"

	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/internal/settings"
)

// traceJSON fetches or posts a trace setting over REST and decodes the answer.
func traceJSON(t *testing.T, ts *testServer, method, path, body string) (int, map[string]any) {
	t.Helper()
	code, _, b := restCall(t, ts, method, path, body)
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s %s: %v: %s", method, path, err, b)
	}
	return code, v
}

// grpcTrace is a TraceSetting answer as a plain map, for comparing with REST's.
func grpcTrace(t *testing.T, ts *testServer, req *inference.TraceSettingRequest) map[string][]string {
	t.Helper()
	res, err := ts.GRPC.TraceSetting(t.Context(), req)
	if err != nil {
		t.Fatalf("TraceSetting(%v): %v", req, err)
	}
	out := map[string][]string{}
	for k, v := range res.GetSettings() {
		out[k] = v.GetValue()
	}
	return out
}

func TestTraceSettingsOverRESTAndGRPC(t *testing.T) {
	ts := startServer(t, exampleRepo(t))
	code, global := traceJSON(t, ts, "GET", "/v2/trace/setting", "")
	wantGlobal := map[string]any{"trace_level": []any{"OFF"}, "trace_rate": "1000", "trace_count": "-1",
		"log_frequency": "0", "trace_file": "", "trace_mode": "opentelemetry"}
	if diff := cmp.Diff(wantGlobal, global); code != 200 || diff != "" {
		t.Fatalf("GET /v2/trace/setting: %d (-want +got):\n%s", code, diff)
	}

	// A model's own settings, set over REST, are what gRPC reports and what the tracer's
	// seam (Sample) acts on; the global setting and other models keep theirs.
	code, simple := traceJSON(t, ts, "POST", "/v2/models/simple/trace/setting", `{"trace_level":["TIMESTAMPS","TENSORS"],"trace_rate":"2","trace_count":"3"}`)
	if code != 200 || simple["trace_rate"] != "2" || simple["trace_count"] != "3" {
		t.Fatalf("POST simple's trace settings: %d %v", code, simple)
	}
	want := map[string][]string{"trace_level": {"TIMESTAMPS", "TENSORS"}, "trace_rate": {"2"}, "trace_count": {"3"},
		"log_frequency": {"0"}, "trace_file": {""}, "trace_mode": {"opentelemetry"}}
	if diff := cmp.Diff(want, grpcTrace(t, ts, &inference.TraceSettingRequest{ModelName: "simple"})); diff != "" {
		t.Errorf("gRPC TraceSetting(simple) after the REST POST (-want +got):\n%s", diff)
	}
	if got := grpcTrace(t, ts, &inference.TraceSettingRequest{ModelName: "mlp"})["trace_level"]; !cmp.Equal(got, []string{"OFF"}) {
		t.Errorf("mlp's trace_level = %v, want the global OFF", got)
	}
	traced := 0
	for range 10 {
		if l, ok := ts.trace.Sample("simple"); ok {
			traced++
			if l != settings.TraceTimestamps|settings.TraceTensors {
				t.Errorf("Sample(simple) level = %v", l.Names())
			}
		}
	}
	if traced != 3 {
		t.Errorf("10 requests of simple at trace_rate 2 and trace_count 3: %d traced, want 3", traced)
	}
	if _, ok := ts.trace.Sample("mlp"); ok {
		t.Error("Sample(mlp) traced, with the global trace_level OFF")
	}

	// gRPC: a global change reaches simple's rate, which follows it once cleared (an
	// empty value list, as Triton's clients send it).
	grpcTrace(t, ts, &inference.TraceSettingRequest{Settings: map[string]*inference.TraceSettingRequest_SettingValue{"trace_rate": {Value: []string{"50"}}}})
	got := grpcTrace(t, ts, &inference.TraceSettingRequest{ModelName: "simple", Settings: map[string]*inference.TraceSettingRequest_SettingValue{"trace_rate": {}}})
	if !cmp.Equal(got["trace_rate"], []string{"50"}) || !cmp.Equal(got["trace_level"], []string{"TIMESTAMPS", "TENSORS"}) {
		t.Errorf("simple after clearing its rate = %v, want rate 50 (the global one) and its own levels", got)
	}
	// REST null clears the level too.
	_, simple = traceJSON(t, ts, "POST", "/v2/models/simple/trace/setting", `{"trace_level":null}`)
	if diff := cmp.Diff([]any{"OFF"}, simple["trace_level"]); diff != "" {
		t.Errorf("simple's trace_level after null (-want +got):\n%s", diff)
	}

	// Errors name what is wrong; an unknown model is not found, on both transports.
	code, _, b := restCall(t, ts, "GET", "/v2/models/nope/trace/setting", "")
	restWantError(t, "GET nope's trace settings", code, b, http.StatusNotFound, "Request for unknown model: 'nope' is not found")
	_, err := ts.GRPC.TraceSetting(t.Context(), &inference.TraceSettingRequest{ModelName: "nope"})
	e2eWantStatus(t, "TraceSetting(nope)", err, codes.NotFound, "Request for unknown model: 'nope'")
	code, _, b = restCall(t, ts, "POST", "/v2/trace/setting", `{"trace_count":"-5"}`)
	restWantError(t, "POST trace_count -5", code, b, http.StatusBadRequest, `trace_count: want -1 (no limit) or an integer from 0 to 2147483647, got "-5"`)
	_, err = ts.GRPC.TraceSetting(t.Context(), &inference.TraceSettingRequest{Settings: map[string]*inference.TraceSettingRequest_SettingValue{"trace_file": {Value: []string{"/tmp/t.json"}}}})
	e2eWantStatus(t, "TraceSetting(trace_file)", err, codes.InvalidArgument, "trace_file: trace file location can not be updated")
}

// lockedLog is a log the server writes while the test reads it.
type lockedLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) has(parts ...string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range strings.Split(l.b.String(), "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all && line != "" {
			return true
		}
	}
	return false
}

// TestLogVerboseLevelShowsDebugLines: the server's log (newLogger's, at --log-level
// info) shows the per-request debug lines only while log_verbose_level is above 0, set
// over REST or gRPC; the answers report the settings.
func TestLogVerboseLevelShowsDebugLines(t *testing.T) {
	var out lockedLog
	log, level, err := newLogger("json", "info", &out)
	if err != nil {
		t.Fatal(err)
	}
	ts := startServerLogging(t, exampleRepo(t), log.Handler(), func(c *serveConfig) { c.level = level })
	debugLine := func(path string) []string {
		return []string{`"level":"DEBUG"`, `"msg":"http request"`, `"path":"` + path + `"`}
	}

	restCall(t, ts, "GET", "/v2/health/ready", "")
	if out.has(debugLine("/v2/health/ready")...) {
		t.Fatal("a debug line was logged at log level info")
	}
	code, _, b := restCall(t, ts, "POST", "/v2/logging", `{"log_verbose_level":1}`)
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil || code != 200 {
		t.Fatalf("POST /v2/logging: %d %s", code, b)
	}
	want := map[string]any{"log_file": "", "log_info": true, "log_warning": true, "log_error": true, "log_verbose_level": 1.0, "log_format": "ISO8601"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("POST /v2/logging (-want +got):\n%s", diff)
	}
	restCall(t, ts, "GET", "/v2/health/live", "")
	if !out.has(debugLine("/v2/health/live")...) {
		t.Errorf("no debug line for GET /v2/health/live at log_verbose_level 1; log:\n%s", out.b.String())
	}
	if _, err := ts.GRPC.ServerLive(t.Context(), &inference.ServerLiveRequest{}); err != nil {
		t.Fatal(err)
	}
	if !out.has(`"msg":"grpc request"`, `"method":"/inference.GRPCInferenceService/ServerLive"`) {
		t.Errorf("no debug line for the ServerLive RPC at log_verbose_level 1")
	}

	// Back to 0 over gRPC: the debug lines stop.
	res, err := ts.GRPC.LogSettings(t.Context(), &inference.LogSettingsRequest{Settings: map[string]*inference.LogSettingsRequest_SettingValue{
		"log_verbose_level": {ParameterChoice: &inference.LogSettingsRequest_SettingValue_Uint32Param{Uint32Param: 0}}}})
	if err != nil || res.GetSettings()["log_verbose_level"].GetUint32Param() != 0 || !res.GetSettings()["log_info"].GetBoolParam() {
		t.Fatalf("LogSettings(log_verbose_level 0) = %v, %v", res, err)
	}
	restCall(t, ts, "GET", "/v2/models/simple/ready", "")
	if out.has(debugLine("/v2/models/simple/ready")...) {
		t.Error("a debug line was logged after log_verbose_level went back to 0")
	}

	code, _, b = restCall(t, ts, "POST", "/v2/logging", `{"log_info":"no"}`)
	restWantError(t, "POST log_info as a string", code, b, http.StatusBadRequest, `log_info: want a boolean, got string "no"`)
}

// TestTraceSettingsOfAModelNotLoaded: a model the repository has but has not loaded
// (explicit mode) may have trace settings, kept for when it serves; only a name the
// repository does not know is not found.
func TestTraceSettingsOfAModelNotLoaded(t *testing.T) {
	ts := startServer(t, exampleRepo(t), func(c *serveConfig) { c.mode = "explicit"; c.loadModels = []string{"simple"} })
	code, got := traceJSON(t, ts, "POST", "/v2/models/mlp/trace/setting", `{"trace_level":["TIMESTAMPS"]}`)
	if code != 200 || !cmp.Equal(got["trace_level"], []any{"TIMESTAMPS"}) {
		t.Errorf("POST mlp's trace settings, mlp not loaded: %d %v, want 200 and its level", code, got)
	}
	if got := grpcTrace(t, ts, &inference.TraceSettingRequest{ModelName: "mlp"})["trace_level"]; !cmp.Equal(got, []string{"TIMESTAMPS"}) {
		t.Errorf("gRPC TraceSetting(mlp), mlp not loaded: trace_level %v, want [TIMESTAMPS]", got)
	}
}
