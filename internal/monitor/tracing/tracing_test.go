package tracing

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	"github.com/ferryml/ferry/internal/monitor/tracing/otlptest"
)

const (
	incomingTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	incomingSpan  = "00f067aa0ba902b7"
	traceparent   = "00-" + incomingTrace + "-" + incomingSpan + "-01"
)

// clearEnv unsets every variable Setup reads, so the machine's environment does not
// leak into a test; t.Setenv restores them afterwards.
func clearEnv(t *testing.T) {
	for _, k := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL",
		"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG", "OTEL_SDK_DISABLED",
		"OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES", "OTEL_TRACES_EXPORTER"} {
		t.Setenv(k, "")
	}
}

// setup turns tracing on towards rc over proto and returns the flush, which the test
// calls before reading the receiver (and cleanup calls again, harmlessly).
func setup(t *testing.T, rc *otlptest.Receiver, proto string, env ...string) func() {
	t.Helper()
	clearEnv(t)
	if proto == "grpc" {
		t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+rc.GRPCAddr)
	} else {
		t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", rc.HTTPURL)
	}
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", proto)
	for i := 0; i+1 < len(env); i += 2 {
		t.Setenv(env[i], env[i+1])
	}
	shutdown, err := Setup(context.Background(), "ferry-test", "v0.0.1", nil)
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	if !Enabled() || Tracer() == nil {
		t.Fatal("Setup with an endpoint left tracing off")
	}
	flush := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	}
	t.Cleanup(flush)
	return flush
}

// testMux answers like the V2 routes: 200, a 4xx and a 5xx on routes with patterns.
func testMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v2/models/{model}/infer", func(w http.ResponseWriter, r *http.Request) {
		switch r.PathValue("model") {
		case "bad":
			http.Error(w, "bad input", http.StatusBadRequest)
		case "broken":
			http.Error(w, "broken", http.StatusInternalServerError)
		default:
			_, _ = io.WriteString(w, "{}")
		}
	})
	return mux
}

func traced(mux *http.ServeMux) http.Handler {
	return HTTP(func(r *http.Request) string { _, p := mux.Handler(r); return p })(mux)
}

func post(t *testing.T, url string, header ...string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader("{}"))
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestTracingIsOffWithoutAnEndpoint(t *testing.T) {
	for _, tc := range []struct{ name, env, value string }{
		{"no endpoint", "", ""},
		{"OTEL_SDK_DISABLED", "OTEL_SDK_DISABLED", "true"},
		{"OTEL_TRACES_EXPORTER none", "OTEL_TRACES_EXPORTER", "none"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clearEnv(t)
			if tc.env != "" {
				t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
				t.Setenv(tc.env, tc.value)
			}
			shutdown, err := Setup(context.Background(), "ferry", "v", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer shutdown(context.Background())
			if Enabled() || Tracer() != nil {
				t.Fatal("tracing on")
			}
			mux := testMux()
			if h := HTTP(nil)(mux); h != http.Handler(mux) {
				t.Errorf("HTTP wrapped the handler (%T) while tracing is off", h)
			}
			if opts := GRPCServerOptions(); opts != nil {
				t.Errorf("GRPCServerOptions = %d options while tracing is off", len(opts))
			}
		})
	}
}

func TestSetupRefusesWhatItCannotExport(t *testing.T) {
	for _, tc := range []struct{ env, value, want string }{
		{"OTEL_EXPORTER_OTLP_PROTOCOL", "http/json", `OTEL_EXPORTER_OTLP_PROTOCOL "http/json": want grpc or http/protobuf`},
		{"OTEL_TRACES_EXPORTER", "zipkin", `OTEL_TRACES_EXPORTER "zipkin": Ferry exports traces over otlp or none`},
	} {
		clearEnv(t)
		t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
		t.Setenv(tc.env, tc.value)
		_, err := Setup(context.Background(), "ferry", "v", nil)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s=%s: Setup err = %v, want %q", tc.env, tc.value, err, tc.want)
		}
		if Enabled() {
			t.Fatalf("%s=%s: tracing on after an error", tc.env, tc.value)
		}
	}
}

// The server span continues the caller's trace, is named by the route pattern, carries
// the HTTP conventions' attributes, and is an Error only for a 5xx; over both protocols.
func TestHTTPServerSpansReachTheReceiver(t *testing.T) {
	for _, proto := range []string{"grpc", "http/protobuf"} {
		t.Run(proto, func(t *testing.T) {
			rc := otlptest.Start(t)
			flush := setup(t, rc, proto, "OTEL_SERVICE_NAME", "ferry-e2e", "OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test")
			srv := httptest.NewServer(traced(testMux()))
			defer srv.Close()
			if got := post(t, srv.URL+"/metrics"); got != 404 {
				t.Fatalf("POST /metrics: %d", got)
			}
			for model, want := range map[string]int{"ok": 200, "bad": 400, "broken": 500} {
				if got := post(t, srv.URL+"/v2/models/"+model+"/infer", "traceparent", traceparent, "tracestate", "vendor=x"); got != want {
					t.Fatalf("POST %s: status %d, want %d", model, got, want)
				}
			}
			flush()
			spans := otlptest.Named(rc.Spans(), "POST /v2/models/{model}/infer")
			if len(spans) != 3 || len(rc.Spans()) != 3 { // none for /metrics
				t.Fatalf("got %d infer spans, want 3:\n%s", len(spans), otlptest.Dump(rc.Spans()))
			}
			for _, s := range spans {
				if s.TraceID != incomingTrace || s.ParentID != incomingSpan || s.Kind != tracepb.Span_SPAN_KIND_SERVER {
					t.Errorf("span %s: trace %s parent %s kind %v, want %s %s SERVER", s.Attrs["url.path"], s.TraceID, s.ParentID, s.Kind, incomingTrace, incomingSpan)
				}
				if s.TraceState != "vendor=x" {
					t.Errorf("span %s: tracestate %q, want vendor=x", s.Attrs["url.path"], s.TraceState)
				}
				if s.Service != "ferry-e2e" || s.Resource["deployment.environment"] != "test" || s.Resource["service.version"] != "v0.0.1" {
					t.Errorf("resource %v: want service.name from OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES added", s.Resource)
				}
				if s.Attrs["http.request.method"] != "POST" || s.Attrs["http.route"] != "/v2/models/{model}/infer" || s.Attrs["url.scheme"] != "http" {
					t.Errorf("attributes %v", s.Attrs)
				}
				wantErr := s.Attrs["http.response.status_code"] == "500"
				if gotErr := s.Status == tracepb.Status_STATUS_CODE_ERROR; gotErr != wantErr {
					t.Errorf("status %s: span status %v (Error only for 5xx)", s.Attrs["http.response.status_code"], s.Status)
				}
			}
		})
	}
}

// An invalid traceparent is ignored: the request is served and starts a trace of its
// own (monitoring.md §2.3, §6.1.7); a bad tracestate does not spoil a good traceparent.
func TestInvalidTraceContextStartsANewTrace(t *testing.T) {
	rc := otlptest.Start(t)
	flush := setup(t, rc, "grpc")
	srv := httptest.NewServer(traced(testMux()))
	defer srv.Close()
	bad := map[string][]string{
		"version ff":          {"traceparent", "ff-" + incomingTrace + "-" + incomingSpan + "-01"},
		"zero trace id":       {"traceparent", "00-00000000000000000000000000000000-" + incomingSpan + "-01"},
		"zero parent id":      {"traceparent", "00-" + incomingTrace + "-0000000000000000-01"},
		"uppercase hex":       {"traceparent", "00-" + strings.ToUpper(incomingTrace) + "-" + incomingSpan + "-01"},
		"short":               {"traceparent", "00-" + incomingTrace[:30] + "-" + incomingSpan + "-01"},
		"long for version 00": {"traceparent", traceparent + "-extra"},
		"two traceparents":    {"traceparent", traceparent, "traceparent", "00-" + strings.Repeat("ab", 16) + "-" + incomingSpan + "-01"},
		"control characters":  {"traceparent", "00-" + incomingTrace + "-" + incomingSpan + "-01\tjunk"},
	}
	for name, h := range bad {
		if got := post(t, srv.URL+"/v2/models/"+strings.ReplaceAll(name, " ", "_")+"/infer", h...); got != 200 {
			t.Errorf("%s: status %d, want 200", name, got)
		}
	}
	var members []string
	for i := range 33 {
		members = append(members, "k"+string(rune('a'+i%26))+strings.Repeat("x", i/26)+"=v")
	}
	if got := post(t, srv.URL+"/v2/models/good_parent/infer", "traceparent", traceparent, "tracestate", strings.Join(members, ",")); got != 200 {
		t.Fatalf("33 tracestate members: status %d", got)
	}
	flush()
	for _, s := range rc.Spans() {
		path := s.Attrs["url.path"]
		if path == "/v2/models/good_parent/infer" {
			if s.ParentID != incomingSpan || s.TraceID != incomingTrace {
				t.Errorf("a bad tracestate dropped a good traceparent: trace %s parent %s", s.TraceID, s.ParentID)
			}
			continue
		}
		if s.ParentID != "" || s.TraceID == incomingTrace {
			t.Errorf("%s: invalid traceparent was used: trace %s parent %s", path, s.TraceID, s.ParentID)
		}
	}
	if n := len(rc.Spans()); n != len(bad)+1 {
		t.Errorf("%d spans, want %d:\n%s", n, len(bad)+1, otlptest.Dump(rc.Spans()))
	}
}

// Sampling is the SDK's, from OTEL_TRACES_SAMPLER: parent-based with ratio 0 traces
// what a sampled caller traces and nothing else.
func TestSamplerFollowsTheEnvironment(t *testing.T) {
	rc := otlptest.Start(t)
	flush := setup(t, rc, "grpc", "OTEL_TRACES_SAMPLER", "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG", "0")
	srv := httptest.NewServer(traced(testMux()))
	defer srv.Close()
	post(t, srv.URL+"/v2/models/root/infer")
	post(t, srv.URL+"/v2/models/unsampled/infer", "traceparent", "00-"+incomingTrace+"-"+incomingSpan+"-00")
	post(t, srv.URL+"/v2/models/sampled/infer", "traceparent", traceparent)
	flush()
	spans := rc.Spans()
	if len(spans) != 1 || spans[0].Attrs["url.path"] != "/v2/models/sampled/infer" {
		t.Fatalf("want only the sampled caller's span, got:\n%s", otlptest.Dump(spans))
	}
}

// gRPC calls get a SERVER span with the RPC conventions' attributes, joined to the
// traceparent in their metadata.
func TestGRPCServerSpans(t *testing.T) {
	rc := otlptest.Start(t)
	flush := setup(t, rc, "http/protobuf")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(GRPCServerOptions()...)
	healthpb.RegisterHealthServer(gs, health.NewServer())
	go gs.Serve(ln) //nolint:errcheck // ends with Stop
	defer gs.Stop()
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := metadata.AppendToOutgoingContext(context.Background(), "traceparent", traceparent)
	if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: "nope"}); err == nil {
		t.Fatal("unknown service: no error")
	}
	flush()
	spans := otlptest.Named(rc.Spans(), "grpc.health.v1.Health/Check")
	if len(spans) != 2 {
		t.Fatalf("want 2 Check spans:\n%s", otlptest.Dump(rc.Spans()))
	}
	for _, s := range spans {
		if s.TraceID != incomingTrace || s.ParentID != incomingSpan || s.Kind != tracepb.Span_SPAN_KIND_SERVER ||
			s.Attrs["rpc.system"] != "grpc" || s.Attrs["rpc.service"] != "grpc.health.v1.Health" || s.Attrs["rpc.method"] != "Check" {
			t.Errorf("span: %+v", s)
		}
		if s.Status == tracepb.Status_STATUS_CODE_ERROR { // OK, and NOT_FOUND is the client's
			t.Errorf("status code %s made the span an Error", s.Attrs["rpc.grpc.status_code"])
		}
	}
}

// A collector that does not answer delays no request: spans wait in the bounded queue
// and are dropped, and shutdown gives up at its deadline.
func TestDeadCollectorDoesNotDelayRequests(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0") // accepts, never answers
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	clearEnv(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+ln.Addr().String())
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
	shutdown, err := Setup(context.Background(), "ferry", "v", nil)
	if err != nil {
		t.Fatal(err)
	}
	h := traced(testMux())
	start := time.Now()
	for range 5000 {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v2/models/ok/infer", strings.NewReader("{}")))
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("5000 requests took %v with a dead collector", took)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_ = shutdown(ctx) // the collector never answers: an error is expected, not a hang
	if Enabled() {
		t.Error("tracing still on after shutdown")
	}
}

// TestRootRatioIsDecidedBeforeAnySpan: under parentbased_traceidratio the server
// layer decides roots itself; about the ratio of callers without a trace context are
// traced, and a caller's sampled parent is always followed.
func TestRootRatioIsDecidedBeforeAnySpan(t *testing.T) {
	rc := otlptest.Start(t)
	flush := setup(t, rc, "grpc", "OTEL_TRACES_SAMPLER", "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG", "0.25")
	srv := httptest.NewServer(traced(testMux()))
	defer srv.Close()
	const n = 400
	for range n {
		post(t, srv.URL+"/v2/models/root/infer")
	}
	for range 5 {
		post(t, srv.URL+"/v2/models/sampled/infer", "traceparent", traceparent)
	}
	flush()
	var roots, followed int
	for _, s := range rc.Spans() {
		switch s.Attrs["url.path"] {
		case "/v2/models/root/infer":
			roots++
		case "/v2/models/sampled/infer":
			followed++
		}
	}
	if roots < n/4-40 || roots > n/4+40 || followed != 5 {
		t.Fatalf("%d of %d roots traced (want about %d) and %d of 5 sampled callers followed", roots, n, n/4, followed)
	}
}
