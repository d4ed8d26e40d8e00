package main

import (
	"context"
	"fmt"
	"strings"
	"testing"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc/metadata"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/internal/monitor/tracing/otlptest"
)

// traceIDs are a caller's trace and span ids; traceparent formats them as sampled.
type traceIDs struct{ trace, span string }

func (c traceIDs) traceparent() string { return "00-" + c.trace + "-" + c.span + "-01" }

// callerIDs makes the ids of a caller's span, distinct per n.
func callerIDs(n int) traceIDs {
	return traceIDs{trace: fmt.Sprintf("%032x", 0xabc000+n), span: fmt.Sprintf("%016x", 0xdef000+n)}
}

// startTestTracing turns tracing on towards an OTLP receiver of the test, over proto
// ("grpc" or "http/protobuf"), as the OTEL_* environment does for ferry serve; call it
// before startServer. flush exports what is queued and turns tracing off.
func startTestTracing(t *testing.T, proto string) (rc *otlptest.Receiver, flush func()) {
	t.Helper()
	rc = otlptest.Start(t)
	for _, k := range []string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_TRACES_SAMPLER",
		"OTEL_TRACES_SAMPLER_ARG", "OTEL_SDK_DISABLED", "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES", "OTEL_TRACES_EXPORTER"} {
		t.Setenv(k, "")
	}
	endpoint := rc.HTTPURL
	if proto == "grpc" {
		endpoint = "http://" + rc.GRPCAddr
	}
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", proto)
	stop, err := startTracing(context.Background(), testLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return rc, stop
}

// requireOne returns the one span of spans that satisfies ok, failing the test otherwise.
func requireOne(t *testing.T, all, spans []otlptest.Span, what string, ok func(otlptest.Span) bool) otlptest.Span {
	t.Helper()
	found := otlptest.Filter(spans, ok)
	if len(found) != 1 {
		t.Fatalf("want one %s, found %d; all spans:\n%s", what, len(found), otlptest.Dump(all))
	}
	return found[0]
}

// checkInferTree checks the spans core makes under parent for one request to model:
// an InferRequest with the model, version and request id, and under it queue and
// compute, in that order in time. It returns the InferRequest span.
func checkInferTree(t *testing.T, all []otlptest.Span, parent otlptest.Span, model, id string) otlptest.Span {
	t.Helper()
	inf := requireOne(t, all, otlptest.ChildrenOf(all, parent.SpanID), core.SpanInfer+" of "+parent.Name, func(s otlptest.Span) bool {
		return s.Name == core.SpanInfer && s.Attrs[core.AttrModel] == model
	})
	if inf.TraceID != parent.TraceID || inf.Attrs[core.AttrVersion] != "1" || (id != "" && inf.Attrs[core.AttrRequestID] != id) {
		t.Errorf("%s of %s: trace %s, attributes %v; want trace %s, version 1, request id %q", inf.Name, model, inf.TraceID, inf.Attrs, parent.TraceID, id)
	}
	kids := otlptest.ChildrenOf(all, inf.SpanID)
	q := requireOne(t, all, kids, "queue span of "+model, func(s otlptest.Span) bool { return s.Name == core.SpanQueue })
	c := requireOne(t, all, kids, "compute span of "+model, func(s otlptest.Span) bool { return s.Name == core.SpanCompute })
	if q.Start.Before(inf.Start) || c.Start.Before(q.End) || c.End.After(inf.End) || c.Attrs[core.AttrBatch] == "" {
		t.Errorf("%s: InferRequest [%v, %v], queue [%v, %v], compute [%v, %v] %v: want queue then compute inside the request, with a batch size",
			model, inf.Start, inf.End, q.Start, q.End, c.Start, c.End, c.Attrs)
	}
	return inf
}

// TestTracingSpanTrees: one request over REST and one over gRPC, each with an incoming
// traceparent, reach the OTLP receiver as server span -> InferRequest -> queue/compute
// in the caller's trace, the server span's parent being the caller's span; an
// ensemble's request has a span per step, each with its step model's request under it.
func TestTracingSpanTrees(t *testing.T) {
	for _, proto := range []string{"grpc", "http/protobuf"} {
		t.Run("exported over "+proto, func(t *testing.T) {
			rc, flush := startTestTracing(t, proto)
			ts := startServer(t, ensRepo(t))
			rest, grpcCall, ens := callerIDs(1), callerIDs(2), callerIDs(3)

			body := strings.Replace(simpleBody(1), "{", `{"id":"rest-1",`, 1)
			if code, _, b := httpDo(t, "POST", ts.URL+"/v2/models/simple/infer", "application/json", strings.NewReader(body), "traceparent", rest.traceparent()); code != 200 {
				t.Fatalf("REST infer: %d %s", code, b)
			}
			ctx := metadata.AppendToOutgoingContext(t.Context(), "traceparent", grpcCall.traceparent())
			if _, err := ts.GRPC.ModelInfer(ctx, e2eSimpleRequest("grpc-1", 1, true)); err != nil {
				t.Fatalf("gRPC infer: %v", err)
			}
			a, b := ensInputs(1, 1)
			ctx = metadata.AppendToOutgoingContext(t.Context(), "traceparent", ens.traceparent())
			req := ensRequest("chain", a, b)
			if _, err := ts.GRPC.ModelInfer(ctx, req); err != nil {
				t.Fatalf("ensemble: %v", err)
			}
			ts.stop() // drained: every span has ended
			flush()
			all := rc.Spans()

			server := requireOne(t, all, all, "REST server span", func(s otlptest.Span) bool { return s.TraceID == rest.trace && s.Kind == tracepb.Span_SPAN_KIND_SERVER })
			if server.Name != "POST /v2/models/{model}/infer" || server.ParentID != rest.span || server.Attrs["http.response.status_code"] != "200" {
				t.Errorf("REST server span %q parent %s attrs %v; want POST /v2/models/{model}/infer under the caller's %s", server.Name, server.ParentID, server.Attrs, rest.span)
			}
			checkInferTree(t, all, server, "simple", "rest-1")

			server = requireOne(t, all, all, "gRPC server span", func(s otlptest.Span) bool {
				return s.TraceID == grpcCall.trace && s.Kind == tracepb.Span_SPAN_KIND_SERVER
			})
			if server.Name != "inference.GRPCInferenceService/ModelInfer" || server.ParentID != grpcCall.span || server.Attrs["rpc.system"] != "grpc" ||
				server.Attrs["rpc.service"] != "inference.GRPCInferenceService" || server.Attrs["rpc.method"] != "ModelInfer" {
				t.Errorf("gRPC server span %q parent %s attrs %v", server.Name, server.ParentID, server.Attrs)
			}
			checkInferTree(t, all, server, "simple", "grpc-1")

			server = requireOne(t, all, all, "ensemble's server span", func(s otlptest.Span) bool { return s.TraceID == ens.trace && s.Kind == tracepb.Span_SPAN_KIND_SERVER })
			chain := requireOne(t, all, otlptest.ChildrenOf(all, server.SpanID), "ensemble's InferRequest", func(s otlptest.Span) bool { return s.Name == core.SpanInfer })
			for i := range 2 {
				step := requireOne(t, all, otlptest.ChildrenOf(all, chain.SpanID), fmt.Sprintf("span of step %d", i), func(s otlptest.Span) bool {
					return s.Attrs[core.AttrStep] == fmt.Sprint(i)
				})
				checkInferTree(t, all, step, "simple", "ens-1")
			}
		})
	}
}

// TestTracingRemoteCarriesTheTrace: a remote model's upstream call is a CLIENT span
// under the request's InferRequest, and the upstream Ferry's server span has that
// client span as its parent, in the caller's trace, over a REST and a gRPC upstream.
func TestTracingRemoteCarriesTheTrace(t *testing.T) {
	rc, flush := startTestTracing(t, "grpc")
	up := startServer(t, exampleRepo(t))
	repo := t.TempDir()
	writeRemoteModel(t, repo, "simple_rest", up.URL)
	writeRemoteModel(t, repo, "simple_grpc", remoteGRPCURL(up))
	front := startServer(t, repo)
	callers := map[string]traceIDs{"simple_rest": callerIDs(10), "simple_grpc": callerIDs(11)}
	for model, ids := range callers {
		body := strings.Replace(simpleBody(1), "{", `{"id":"`+model+`",`, 1)
		if code, _, b := httpDo(t, "POST", front.URL+"/v2/models/"+model+"/infer", "application/json", strings.NewReader(body), "traceparent", ids.traceparent()); code != 200 {
			t.Fatalf("%s: %d %s", model, code, b)
		}
	}
	// A caller that does not sample: no span anywhere (the sampler is parent-based).
	unsampled := callerIDs(12)
	if code, _, b := httpDo(t, "POST", front.URL+"/v2/models/simple_rest/infer", "application/json", strings.NewReader(simpleBody(1)),
		"traceparent", "00-"+unsampled.trace+"-"+unsampled.span+"-00"); code != 200 {
		t.Fatalf("unsampled: %d %s", code, b)
	}
	front.stop()
	up.stop()
	flush()
	all := rc.Spans()
	if got := otlptest.Filter(all, func(s otlptest.Span) bool { return s.TraceID == unsampled.trace }); len(got) > 0 {
		t.Errorf("an unsampled caller's request was recorded:\n%s", otlptest.Dump(got))
	}
	for model, ids := range callers {
		in := requireOne(t, all, all, "front's InferRequest of "+model, func(s otlptest.Span) bool {
			return s.TraceID == ids.trace && s.Name == core.SpanInfer && s.Attrs[core.AttrModel] == model
		})
		client := requireOne(t, all, otlptest.ChildrenOf(all, in.SpanID), "client span of "+model, func(s otlptest.Span) bool { return s.Kind == tracepb.Span_SPAN_KIND_CLIENT })
		upServer := requireOne(t, all, otlptest.ChildrenOf(all, client.SpanID), "upstream's server span for "+model, func(s otlptest.Span) bool { return s.Kind == tracepb.Span_SPAN_KIND_SERVER })
		if upServer.TraceID != ids.trace {
			t.Errorf("%s: upstream's server span in trace %s, want the caller's %s", model, upServer.TraceID, ids.trace)
		}
		checkInferTree(t, all, upServer, "simple", "")
	}
}

// TestTracingOffMakesNoSpans: without an endpoint nothing is exported and the server
// builds no tracing layer.
func TestTracingOffMakesNoSpans(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	stop, err := startTracing(context.Background(), testLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	ts := startServer(t, exampleRepo(t))
	if ts.core == nil || traceGRPC() != nil {
		t.Fatal("tracing options present while tracing is off")
	}
	if code, _, b := httpDo(t, "POST", ts.URL+"/v2/models/simple/infer", "application/json", strings.NewReader(simpleBody(1)), "traceparent", callerIDs(1).traceparent()); code != 200 {
		t.Fatalf("infer: %d %s", code, b)
	}
}

// ensRequest is a one-row gRPC request (id ens-1) to an ensemble of ensIO's inputs.
func ensRequest(model string, a, b []int32) *inference.ModelInferRequest {
	shape := []int64{1, 16}
	return &inference.ModelInferRequest{ModelName: model, Id: "ens-1", Inputs: []*inference.ModelInferRequest_InferInputTensor{
		{Name: "IN0", Datatype: "INT32", Shape: shape}, {Name: "IN1", Datatype: "INT32", Shape: shape},
	}, RawInputContents: [][]byte{e2eLE(a), e2eLE(b)}}
}

// TestTracingFollowsTheTraceExtension: with OpenTelemetry on, /v2/trace/setting reports
// opentelemetry at TIMESTAMPS, rate 1; trace_level OFF for a model leaves its requests
// without core's spans (the transport's span stays), and clearing it brings them back.
func TestTracingFollowsTheTraceExtension(t *testing.T) {
	rc, flush := startTestTracing(t, "grpc")
	ts := startServer(t, exampleRepo(t))
	code, _, b := httpDo(t, "GET", ts.URL+"/v2/trace/setting", "", nil)
	if code != 200 || !strings.Contains(string(b), `"trace_level":["TIMESTAMPS"]`) || !strings.Contains(string(b), `"trace_rate":"1"`) ||
		!strings.Contains(string(b), `"trace_mode":"opentelemetry"`) {
		t.Fatalf("GET /v2/trace/setting: %d %s", code, b)
	}
	off, on := callerIDs(30), callerIDs(31)
	for _, step := range []struct {
		setting string
		ids     traceIDs
	}{{`{"trace_level":["OFF"]}`, off}, {`{"trace_level":null}`, on}} {
		if code, _, b := httpDo(t, "POST", ts.URL+"/v2/models/simple/trace/setting", "application/json", strings.NewReader(step.setting)); code != 200 {
			t.Fatalf("POST %s: %d %s", step.setting, code, b)
		}
		if code, _, b := httpDo(t, "POST", ts.URL+"/v2/models/simple/infer", "application/json", strings.NewReader(simpleBody(1)), "traceparent", step.ids.traceparent()); code != 200 {
			t.Fatalf("infer: %d %s", code, b)
		}
	}
	ts.stop()
	flush()
	all := rc.Spans()
	for _, c := range []struct {
		ids   traceIDs
		spans int
	}{{off, 1}, {on, 4}} { // server span alone; server, InferRequest, queue, compute
		if got := otlptest.Filter(all, func(s otlptest.Span) bool { return s.TraceID == c.ids.trace }); len(got) != c.spans {
			t.Errorf("trace %s: %d spans, want %d:\n%s", c.ids.trace, len(got), c.spans, otlptest.Dump(got))
		}
	}
}
