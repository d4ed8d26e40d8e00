package main

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferryml/ferry/internal/monitor/tracing"
	"github.com/ferryml/ferry/internal/platform/threadprio"
	"github.com/ferryml/ferry/internal/tensor"
	"github.com/ferryml/ferry/internal/v2client"
	"github.com/ferryml/ferry/tools/onnxgen"
)

// BenchmarkMonitoring is issue 18's overhead figure: two Ferry servers in one process,
// the vsBare way (alternating slices, ratios per round). "watched" logs 100% of requests
// to local JSON-lines files, watches every input and output feature of both models for
// drift (the baseline is its first 1000 rows, then windows of 1000) and traces 10% of
// requests (OTLP/HTTP to a sink that discards them); "plain" has none of them. Both
// serve identity_fp32 (16 floats in and out) and the mlp example (256 features in, 10
// out, dynamic batching):
//
//	go test -run=NONE -bench=Monitoring -benchtime=1x ./cmd/ferry/ -args -benchrounds=6
//
// -benchmon picks the parts (default all): e.g. -benchmon=trace to measure one alone.
// Each side's goroutines carry the profiler label side, so one profile of the
// alternating run compares them per request:
//
//	go test -run=NONE -bench=Monitoring/identity_fp32/grpc/c64 -benchtime=1x -cpuprofile=/tmp/m.prof ./cmd/ferry/
//	go tool pprof -proto -tagfocus=side=watched ferry.test /tmp/m.prof > /tmp/watched.pb.gz  (and side=plain)
var (
	benchMon = flag.String("benchmon", "log,drift,trace", "BenchmarkMonitoring: the parts the watched server runs (log, drift, trace)")
	// Two loads by default: 16 clients (-benchconc's default) leave mlp's batcher
	// waiting out its 2 ms queue delay with a core idle, so that figure is latency
	// under a moderate load; 64 clients saturate both cores, which is what a
	// throughput figure means.
	benchMonConc = flag.String("benchmonconc", "16,64", "BenchmarkMonitoring: the client counts to measure at, comma-separated")
	// As ferry serve's --inference-first (default true): request handling, and the
	// monitoring's goroutines with it, runs as SCHED_BATCH, model execution in front.
	benchInferenceFirst = flag.Bool("benchinferencefirst", true, "BenchmarkMonitoring: run as ferry serve does by default, request handling as SCHED_BATCH (Linux)")
)

func BenchmarkMonitoring(b *testing.B) {
	if testing.Short() {
		b.Skip("throughput comparison; not run with -short")
	}
	servingGC(b)
	if *benchInferenceFirst {
		// Before the servers and their sessions exist, as ferry serve does it; both
		// sides run this way.
		if err := threadprio.Background(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = threadprio.Reset() })
	}
	repo := monitoringBenchRepo(b)
	// Every goroutine of a side (its server's, its clients') carries the profiler label
	// side=watched or side=plain, so that one -cpuprofile of the alternating run splits
	// by side: go tool pprof -tagfocus=side=watched.
	var plain, watched *testServer
	onSide("plain", func() { plain = startServer(b, repo) }) // built before tracing is on: no tracer, no layers
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	b.Cleanup(sink.Close)
	for k, v := range map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": sink.URL, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
		"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"} {
		b.Setenv(k, v)
	}
	parts := strings.Split(*benchMon, ",")
	if slices.Contains(parts, "trace") {
		stop, err := startTracing(b.Context(), testLogger())
		if err != nil || !tracing.Enabled() {
			b.Fatalf("tracing: %v (enabled %v)", err, tracing.Enabled())
		}
		b.Cleanup(stop)
	}
	dir := b.TempDir()
	cfg := ""
	if slices.Contains(parts, "log") {
		cfg += fmt.Sprintf("inference_log: {dir: %s, sample: 1.0}\n", filepath.Join(dir, "log"))
	}
	if slices.Contains(parts, "drift") {
		cfg += `drift:
  window: {count: 1000}
  models:
    identity_fp32: {reference_window: {count: 1000}}
    mlp: {reference_window: {count: 1000}}
`
	}
	file := filepath.Join(dir, "monitoring.yaml")
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		b.Fatal(err)
	}
	onSide("watched", func() { watched = startServer(b, repo, withMonitoring(file)) })
	concs := monitoringBenchConcs(b)
	defer func(c int) { *vsConc = c }(*vsConc)
	for _, model := range []string{"identity_fp32", "mlp"} {
		req := monitoringBenchRequest(model)
		for _, proto := range []string{"rest", "grpc"} {
			for _, conc := range concs {
				*vsConc = conc
				b.Run(fmt.Sprintf("%s/%s/c%d", model, proto, conc), func(b *testing.B) {
					w0, p0 := modelStats(b, watched, model), modelStats(b, plain, model)
					var w, p v2model
					onSide("watched", func() { w = watched.v2(proto, model, "") })
					onSide("plain", func() { p = plain.v2(proto, model, "") })
					vsCompare(b, requestSide("watched", w, req), requestSide("plain", p, req))
					// Rows per execution on each side: a side whose requests reach the batcher
					// further apart runs smaller batches and pays more ONNX Runtime time a request.
					w1, p1 := modelStats(b, watched, model), modelStats(b, plain, model)
					b.Logf("rows per execution: watched %.2f, plain %.2f", perExecution(w0, w1), perExecution(p0, p1))
				})
			}
		}
	}
	b.StopTimer()
	for _, model := range []string{"identity_fp32", "mlp"} {
		if watched.mon.drift == nil {
			break
		}
		rep, err := watched.mon.drift.Report(model)
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("%s: drift over %d features, %d windows' rows (%d dropped, %d sampled out), state %d bytes", model, rep.Evaluated, rep.Rows, rep.Dropped, rep.SampledOut, watched.mon.drift.StateBytes(model))
	}
	ctx, cancel := context.WithTimeout(context.Background(), vsFlushTimeout)
	defer cancel()
	if watched.mon.log != nil {
		if err := watched.mon.log.Close(ctx); err != nil {
			b.Fatal(err)
		}
	}
	_, _, metrics := httpDo(b, http.MethodGet, watched.URL+"/metrics", "", nil)
	for _, line := range strings.Split(string(metrics), "\n") {
		if strings.HasPrefix(line, "ferry_inference_log_") || strings.HasPrefix(line, "ferry_drift_rows_dropped_total") {
			b.Log(line)
		}
	}
}

// monitoringBenchConcs parses -benchmonconc.
func monitoringBenchConcs(b *testing.B) []int {
	var out []int
	for _, f := range strings.Split(*benchMonConc, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			b.Fatalf("-benchmonconc %q: want positive client counts separated by commas", *benchMonConc)
		}
		out = append(out, n)
	}
	return out
}

// perExecution is the rows per execution between two stats of a model.
func perExecution(before, after statsJSON) float64 {
	return float64(after.InferenceCount-before.InferenceCount) / float64(max(1, after.ExecutionCount-before.ExecutionCount))
}

// vsFlushTimeout bounds the inference log's flush after the benchmark.
const vsFlushTimeout = 30 * time.Second

// monitoringBenchRepo holds identity_fp32 (auto-completed, as vsRepo) and the mlp
// example with its config (examples/models/mlp).
func monitoringBenchRepo(b *testing.B) string {
	repo := vsRepo(b)
	writeModel(b, repo, "mlp", 1, onnxgen.MLP(1), `name: "mlp"
platform: "onnxruntime_onnx"
max_batch_size: 64
input [ { name: "input" data_type: TYPE_FP32 dims: [ 256 ] } ]
output [ { name: "output" data_type: TYPE_FP32 dims: [ 10 ] } ]
instance_group [ { count: 1 kind: KIND_CPU } ]
dynamic_batching { max_queue_delay_microseconds: 2000 }
`)
	return repo
}

// monitoringBenchRequest is one row of varying values for the model.
func monitoringBenchRequest(model string) *v2client.Request {
	name, n := "INPUT0", vsElems
	if model == "mlp" {
		name, n = "input", 256
	}
	data := make([]byte, 0, 4*n)
	for i := range n {
		data = binary.LittleEndian.AppendUint32(data, math.Float32bits(float32(i%17)/17))
	}
	return &v2client.Request{ID: "bench", Inputs: []*tensor.Tensor{{Name: name, DType: tensor.FP32, Shape: tensor.Shape{1, int64(n)}, Data: data}}}
}

// requestSide sends req through m from every client goroutine, each labelled with
// the side's name (onSide).
func requestSide(name string, m v2model, req *v2client.Request) vsSide {
	labels := pprof.WithLabels(context.Background(), pprof.Labels("side", name))
	return vsSide{name: name, newWorker: func() vsWorker {
		var once sync.Once
		return func(ctx context.Context) error {
			once.Do(func() { pprof.SetGoroutineLabels(labels) }) // the worker's goroutine, once
			_, err := m.Infer(ctx, req)
			return err
		}
	}}
}

// onSide runs f with the profiler label side=name, which every goroutine f starts
// inherits.
func onSide(name string, f func()) {
	pprof.Do(context.Background(), pprof.Labels("side", name), func(context.Context) { f() })
}
