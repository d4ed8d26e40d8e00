package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/ferryml/ferry/internal/monitor/tracing"
)

var (
	traceRatio  = flag.Float64("benchtraceratio", 0.1, "BenchmarkTracingCost: the traced server samples this share of requests (OTEL_TRACES_SAMPLER_ARG)")
	traceAccess = flag.Bool("benchtraceaccess", false, "BenchmarkTracingCost: the traced server also writes --access-log")
)

// BenchmarkTracingCost compares two Ferry servers in one process, the vsBare way: one
// built with tracing on (OTLP/HTTP to a sink that discards what it gets, sampling
// -benchtraceratio of requests), one built before tracing was turned on, so it has no
// tracing layer or tracer at all. It reports traced/untraced ratios for REST (JSON) and
// gRPC (raw contents) on identity_fp32:
//
//	go test -run=NONE -bench=TracingCost -benchtime=1x ./cmd/ferry/
func BenchmarkTracingCost(b *testing.B) {
	if testing.Short() {
		b.Skip("throughput comparison; not run with -short")
	}
	servingGC(b)
	off := startServer(b, vsRepo(b))
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	b.Cleanup(sink.Close)
	for k, v := range map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": sink.URL, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
		"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": fmt.Sprint(*traceRatio)} {
		b.Setenv(k, v)
	}
	stop, err := startTracing(b.Context(), testLogger())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(stop)
	if !tracing.Enabled() {
		b.Fatal("tracing is off")
	}
	on := startServer(b, vsRepo(b), func(c *serveConfig) {
		if *traceAccess {
			c.accessLog.path = filepath.Join(b.TempDir(), "access.log")
		}
	})
	b.Run("rest", func(b *testing.B) {
		body, err := json.Marshal(vsRequest{ID: "1", Inputs: []vsTensor{{Name: "INPUT0", Shape: []int64{1, vsElems}, Datatype: "FP32", Data: vsValues()}}})
		if err != nil {
			b.Fatal(err)
		}
		const path = "/v2/models/identity_fp32/infer"
		vsCheckREST(b, on.URL+path, body, vsValues())
		vsCompare(b, vsRESTSide(b, "traced", on.URL+path, body), vsRESTSide(b, "untraced", off.URL+path, body))
	})
	b.Run("grpc", func(b *testing.B) {
		req := vsGRPCRequest()
		vsCompare(b, vsGRPCSide(b, "traced", on.grpcLn.Addr().String(), req), vsGRPCSide(b, "untraced", off.grpcLn.Addr().String(), req))
	})
}
