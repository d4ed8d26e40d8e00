package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/tools/onnxgen"
)

const reloadConfig = `name: "m"
platform: "onnxruntime_onnx"
max_batch_size: 8
input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ -1 ] } ]
output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ -1 ] } ]
`

// startPollServer serves repo in poll mode, rescanning every 50 ms, with strict
// readiness and its JSON log (the production logger) in logs.
func startPollServer(t *testing.T, repo string, logs *lockedLog) *testServer {
	t.Helper()
	log, _, err := newLogger("json", "info", logs)
	if err != nil {
		t.Fatal(err)
	}
	ts := startServerLogging(t, repo, log.Handler(), func(c *serveConfig) {
		c.mode, c.pollInterval, c.strictReady = "poll", 50*time.Millisecond, true
	})
	return ts
}

// TestReadinessWhileReloadFails: in poll mode, a config.pbtxt or model.onnx broken
// under a serving model leaves the version loaded before READY and the server ready
// (strict readiness: a readiness probe must not pull a pod whose models all serve),
// over REST and gRPC; the index and the log give the failure, and fixing the file
// reloads the model.
func TestReadinessWhileReloadFails(t *testing.T) {
	for _, tc := range []struct {
		name, file string // file is relative to the model folder
		broken     []byte
		reason     string // what the index's reason names
	}{
		{"config.pbtxt with a syntax error", "config.pbtxt", []byte("max_batch_size: [\n"), "config.pbtxt"},
		{"model.onnx that is not ONNX", filepath.Join("1", "model.onnx"), []byte("not an onnx model"), "onnx"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			repo := t.TempDir()
			good := onnxgen.Identity(onnxgen.Float, "m")
			writeModel(t, repo, "m", 1, good, reloadConfig)
			var logs lockedLog
			ts := startPollServer(t, repo, &logs)
			serving(t, ts, "at start", "")

			path := filepath.Join(repo, "m", tc.file)
			before, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			writeFileAtomic(t, path, tc.broken)
			waitFor(t, func() bool { return modelReason(t, ts) != "" })
			serving(t, ts, "after the reload failed", tc.reason)
			// The repository logs the failure just after it updates the index.
			waitUntil(t, 5*time.Second, "error for model m naming "+tc.reason+" in the log", func() bool {
				return logs.has(`"level":"ERROR"`, `"model":"m"`, tc.reason)
			})

			writeFileAtomic(t, path, before)
			waitFor(t, func() bool { return modelReason(t, ts) == "" })
			serving(t, ts, "after the fix", "")
			// The version loaded at start is closed after the new one takes over, so its
			// line may come just after the index changed.
			waitFor(t, func() bool { return logs.has(`"msg":"model version unloaded"`, `"model":"m"`, `"reason":"replaced"`) })
		})
	}
}

// serving checks that model m and the server are ready and that m answers, over REST
// and gRPC, and that the index shows version 1 READY with a reason naming wantReason
// (or none when it is "").
func serving(t *testing.T, ts *testServer, when, wantReason string) {
	t.Helper()
	if code, _, b := httpDo(t, "GET", ts.URL+"/v2/health/ready", "", nil); code != 200 {
		t.Errorf("%s: /v2/health/ready = %d %s, want 200", when, code, b)
	}
	if code, _, b := httpDo(t, "GET", ts.URL+"/v2/models/m/ready", "", nil); code != 200 {
		t.Errorf("%s: /v2/models/m/ready = %d %s, want 200", when, code, b)
	}
	if code, _, b := httpDo(t, "POST", ts.URL+"/v2/models/m/infer", "application/json", strings.NewReader(identityBody)); code != 200 {
		t.Errorf("%s: REST infer = %d %s, want 200", when, code, b)
	}
	ctx := context.Background()
	if r, err := ts.GRPC.ServerReady(ctx, &inference.ServerReadyRequest{}); err != nil || !r.GetReady() {
		t.Errorf("%s: gRPC ServerReady = %v, %v; want ready", when, r, err)
	}
	if r, err := ts.GRPC.ModelReady(ctx, &inference.ModelReadyRequest{Name: "m"}); err != nil || !r.GetReady() {
		t.Errorf("%s: gRPC ModelReady = %v, %v; want ready", when, r, err)
	}
	req := &inference.ModelInferRequest{ModelName: "m", Inputs: []*inference.ModelInferRequest_InferInputTensor{{
		Name: "INPUT0", Datatype: "FP32", Shape: []int64{1, 2},
		Contents: &inference.InferTensorContents{Fp32Contents: []float32{1, 2}}}}}
	if _, err := ts.GRPC.ModelInfer(ctx, req); err != nil {
		t.Errorf("%s: gRPC infer: %v", when, err)
	}
	var found bool
	for _, e := range repositoryIndex(t, ts.URL) {
		if e.Name != "m" {
			continue
		}
		found = true
		if e.Version != "1" || e.State != "READY" {
			t.Errorf("%s: index %+v, want version 1 READY", when, e)
		}
		if wantReason == "" && e.Reason != "" || !strings.Contains(e.Reason, wantReason) {
			t.Errorf("%s: index reason %q, want one naming %q", when, e.Reason, wantReason)
		}
	}
	if !found {
		t.Errorf("%s: m is not in the index", when)
	}
}

// modelReason is the index's reason for model m.
func modelReason(t *testing.T, ts *testServer) string {
	for _, e := range repositoryIndex(t, ts.URL) {
		if e.Name == "m" {
			return e.Reason
		}
	}
	return ""
}

// writeFileAtomic replaces path by renaming a new file over it, so a poll never reads
// half a file.
func writeFileAtomic(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestNewVersionThatFailsLeavesTheOldServing: in poll mode, a new version folder whose
// model does not load, under the default policy (latest 1), does not retire the version
// that serves: as in Triton, a reload that fails is abandoned as a whole. The server
// stays ready, version 1 answers, the index and the log name version 2's failure; once
// version 2's file is fixed it takes over.
func TestNewVersionThatFailsLeavesTheOldServing(t *testing.T) {
	repo := t.TempDir()
	good := onnxgen.Identity(onnxgen.Float, "m")
	writeModel(t, repo, "m", 1, good, reloadConfig)
	var logs lockedLog
	ts := startPollServer(t, repo, &logs)
	serving(t, ts, "at start", "")

	writeModel(t, repo, "m", 2, []byte("not an onnx model"), "")
	waitFor(t, func() bool { return modelReason(t, ts) != "" })
	serving(t, ts, "after version 2 failed to load", "version 2")
	if !logs.has(`"level":"ERROR"`, `"model":"m"`, `"version":2`) {
		t.Error("the log has no error for model m version 2")
	}

	writeFileAtomic(t, filepath.Join(repo, "m", "2", "model.onnx"), good)
	waitFor(t, func() bool {
		idx := repositoryIndex(t, ts.URL)
		return len(idx) == 1 && idx[0].Version == "2" && idx[0].State == "READY" && idx[0].Reason == ""
	})
	if code, _, b := httpDo(t, "POST", ts.URL+"/v2/models/m/versions/2/infer", "application/json", strings.NewReader(identityBody)); code != 200 {
		t.Errorf("after the fix: version 2 infer = %d %s, want 200", code, b)
	}
}
