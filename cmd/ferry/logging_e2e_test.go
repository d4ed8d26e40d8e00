package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/metadata"

	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/internal/repository"
	"github.com/ferryml/ferry/internal/scheduler"
	"github.com/ferryml/ferry/internal/tensor"
)

// failNegative is a backend that echoes its input and fails, with a message holding a
// line break, when the first value is negative.
type failNegative struct{}

func (failNegative) Execute(_ context.Context, in []*tensor.Tensor, _ []string) ([]*tensor.Tensor, error) {
	if math.Float32frombits(binary.LittleEndian.Uint32(in[0].Data)) < 0 {
		return nil, errors.New("negative input\n{\"level\":\"ERROR\",\"msg\":\"forged by the backend\"}")
	}
	return []*tensor.Tensor{{Name: "y", DType: in[0].DType, Shape: in[0].Shape, Data: in[0].Data}}, nil
}
func (failNegative) Close() error { return nil }

// jsonLines parses every line of text as a JSON object, failing the test on a line that
// is not one (a forged or broken line).
func jsonLines(t *testing.T, what, text string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("%s: a line is not one JSON object (%v): %q", what, err, sc.Text())
		}
		out = append(out, m)
	}
	return out
}

// lineWith returns the one line whose key has value, failing the test otherwise.
func lineWith(t *testing.T, what string, lines []map[string]any, key, value string) map[string]any {
	t.Helper()
	var found []map[string]any
	for _, l := range lines {
		if l[key] == value {
			found = append(found, l)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s: %d lines with %s=%q, want 1; lines: %v", what, len(found), key, value, lines)
	}
	return found[0]
}

// wantFields fails unless line has each key with its value.
func wantFields(t *testing.T, what string, line map[string]any, kv ...any) {
	t.Helper()
	for i := 0; i+1 < len(kv); i += 2 {
		if got := line[kv[i].(string)]; got != kv[i+1] {
			t.Errorf("%s: %s = %v, want %v; line %v", what, kv[i], got, kv[i+1], line)
		}
	}
}

// TestRequestLogLinesCarryTheirIDs: the lines the server logs for a failed request (REST
// and gRPC) carry its request id, model, trace and span ids; --access-log writes one
// line per request with the method, route, status, sizes, model, version, request id
// and trace id; a request id or error message with a line break forges no line.
func TestRequestLogLinesCarryTheirIDs(t *testing.T) {
	for _, access := range []bool{true, false} {
		t.Run(fmt.Sprintf("access log %v", access), func(t *testing.T) { checkRequestLogLines(t, access) })
	}
}

func checkRequestLogLines(t *testing.T, withAccessLog bool) {
	startTestTracing(t, "grpc")
	var logBuf lockedLog
	log, _, err := newLogger("json", "info", &logBuf)
	if err != nil {
		t.Fatal(err)
	}
	accessPath := filepath.Join(t.TempDir(), "access.log")
	repo := t.TempDir()
	writeFixedCostModel(t, repo, "echo", 1, 0)
	ts := startServer(t, repo, func(c *serveConfig) {
		c.testLog = log
		if withAccessLog {
			c.accessLog.path = accessPath
		}
		c.moreBackends = repository.Backends{"fixedcost": {Platform: "failneg_test", DefaultFilename: "model.bin",
			Open: func(context.Context, string, *inference.ModelConfig) (scheduler.Instance, error) {
				return failNegative{}, nil
			}}}
	})
	ok, bad, grpcBad := callerIDs(20), callerIDs(21), callerIDs(22)
	evilID := "evil\n{\"level\":\"ERROR\",\"msg\":\"forged by the client\"}\x1b[31m"
	body := func(id string, x float32) string {
		b, _ := json.Marshal(map[string]any{"id": id, "inputs": []any{map[string]any{"name": "x", "shape": []int{1}, "datatype": "FP32", "data": []float32{x}}}})
		return string(b)
	}
	if code, _, b := httpDo(t, "POST", ts.URL+"/v2/models/echo/infer", "application/json", strings.NewReader(body("rest-ok", 1)), "traceparent", ok.traceparent()); code != 200 {
		t.Fatalf("echo 1: %d %s", code, b)
	}
	if code, _, b := httpDo(t, "POST", ts.URL+"/v2/models/echo/infer", "application/json", strings.NewReader(body(evilID, -1)), "traceparent", bad.traceparent()); code != 500 {
		t.Fatalf("echo -1: %d %s, want 500", code, b)
	}
	ctx := metadata.AppendToOutgoingContext(t.Context(), "traceparent", grpcBad.traceparent())
	req := &inference.ModelInferRequest{ModelName: "echo", Id: "grpc-bad", Inputs: []*inference.ModelInferRequest_InferInputTensor{
		{Name: "x", Datatype: "FP32", Shape: []int64{1}}}, RawInputContents: [][]byte{e2eLE([]float32{-1})}}
	if _, err := ts.GRPC.ModelInfer(ctx, req); err == nil {
		t.Fatal("gRPC echo -1: no error")
	}
	if withAccessLog {
		code, _, metrics := httpDo(t, "GET", ts.URL+"/metrics", "", nil)
		if code != 200 || !strings.Contains(string(metrics), "ferry_access_log_dropped_total 0") {
			t.Errorf("/metrics: %d, want ferry_access_log_dropped_total 0", code)
		}
	}
	ts.stop() // drained: the access log is written and closed

	logBuf.mu.Lock()
	logged := logBuf.b.String()
	logBuf.mu.Unlock()
	lines := jsonLines(t, "server log", logged)
	restLine := lineWith(t, "server log", lines, "msg", "request failed")
	wantFields(t, "REST failure's line", restLine, "request_id", evilID, "model", "echo", "trace_id", bad.trace)
	grpcLine := lineWith(t, "server log", lines, "msg", "grpc request failed")
	wantFields(t, "gRPC failure's line", grpcLine, "request_id", "grpc-bad", "model", "echo", "trace_id", grpcBad.trace)
	for _, l := range []map[string]any{restLine, grpcLine} {
		if s, _ := l["span_id"].(string); len(s) != 16 {
			t.Errorf("line without a span id: %v", l)
		}
	}

	data, err := os.ReadFile(accessPath)
	if !withAccessLog {
		if !os.IsNotExist(err) {
			t.Errorf("without --access-log: reading %s: %v, want no file", accessPath, err)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	checkAccessLines(t, data, len(body("rest-ok", 1)), evilID, ok, bad, grpcBad)
}

// checkAccessLines checks the access log of checkRequestLogLines' requests (and its
// GET /metrics): rest-ok of okBytes, the forged id's failure and grpc-bad.
func checkAccessLines(t *testing.T, data []byte, okBytes int, evilID string, ok, bad, grpcBad traceIDs) {
	t.Helper()
	access := jsonLines(t, "access log", string(data))
	if len(access) != 4 { // and GET /metrics
		t.Fatalf("access log has %d lines, want 4:\n%s", len(access), data)
	}
	line := lineWith(t, "access log", access, "request_id", "rest-ok")
	wantFields(t, "access line of rest-ok", line, "protocol", "http", "method", "POST", "route", "POST /v2/models/{model}/infer",
		"status", 200.0, "model", "echo", "version", "1", "trace_id", ok.trace, "tenant", "")
	if line["bytes_in"].(float64) != float64(okBytes) || line["bytes_out"].(float64) <= 0 || line["duration_s"].(float64) <= 0 {
		t.Errorf("access line sizes and duration: %v", line)
	}
	wantFields(t, "access line of the forged id", lineWith(t, "access log", access, "request_id", evilID), "status", 500.0, "trace_id", bad.trace)
	line = lineWith(t, "access log", access, "request_id", "grpc-bad")
	wantFields(t, "access line of grpc-bad", line, "protocol", "grpc", "method", "ModelInfer", "route", "/inference.GRPCInferenceService/ModelInfer",
		"status", 13.0, "model", "echo", "trace_id", grpcBad.trace)
	if line["bytes_in"].(float64) <= 0 {
		t.Errorf("gRPC access line without bytes_in: %v", line)
	}
}
