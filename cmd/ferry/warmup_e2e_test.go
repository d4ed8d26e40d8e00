package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferryml/ferry/tools/onnxgen"
)

// logRecords is a slog handler that keeps every record's message and attributes, in order.
type logRecords struct {
	mu   sync.Mutex
	recs []map[string]string // "msg" and each attribute as text
}

func (h *logRecords) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecords) WithAttrs([]slog.Attr) slog.Handler       { return h } // the tests read per-record attributes only
func (h *logRecords) WithGroup(string) slog.Handler            { return h }
func (h *logRecords) Handle(_ context.Context, r slog.Record) error {
	rec := map[string]string{"msg": r.Message}
	r.Attrs(func(a slog.Attr) bool {
		rec[a.Key] = a.Value.String()
		return true
	})
	h.mu.Lock()
	h.recs = append(h.recs, rec)
	h.mu.Unlock()
	return nil
}

// find returns the index of the first record with msg whose attributes include attrs, or -1.
func (h *logRecords) find(msg string, attrs ...string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
next:
	for i, rec := range h.recs {
		if rec["msg"] != msg {
			continue
		}
		for j := 0; j+1 < len(attrs); j += 2 {
			if rec[attrs[j]] != attrs[j+1] {
				continue next
			}
		}
		return i
	}
	return -1
}

// startServerLogging is startServer with the server's log written to logs, so a test can
// see the order in which loading, warmup and readiness happened (or what a log level
// lets through).
func startServerLogging(t *testing.T, repo string, logs slog.Handler, opts ...serverOption) *testServer {
	t.Helper()
	cfg := serveConfig{repository: repo, host: "127.0.0.1", mode: "none", pollInterval: 15 * time.Second,
		drain: 5 * time.Second, limits: defaultTestLimits()}
	for _, o := range opts {
		o(&cfg)
	}
	s, err := newServer(cfg, testRuntime, slog.New(logs))
	if err != nil {
		t.Fatalf("newServer: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{server: s, URL: "http://" + s.httpLn.Addr().String(), cancel: cancel, done: make(chan error, 1)}
	go func() { ts.done <- s.Run(ctx) }()
	ts.connect(t)
	t.Cleanup(ts.stop)
	ts.waitReady(t)
	return ts
}

// warmupSimpleConfig is simple's config under name, with two instances and the given
// model_warmup samples.
func warmupSimpleConfig(name, samples string) string {
	return strings.Replace(simpleConfig, `name: "simple"`, `name: "`+name+`"`, 1) +
		"instance_group [ { count: 2 kind: KIND_CPU } ]\nmodel_warmup [\n" + samples + "\n]\n"
}

func writeWarmupFile(t *testing.T, repo, model, name string, data []byte) {
	t.Helper()
	dir := filepath.Join(repo, model, "warmup")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestWarmupRunsBeforeReady: the samples (zero, random and file data) run on the real
// model, count times per instance, before the version is loaded and the server ready;
// the statistics and the batch metrics do not count them.
func TestWarmupRunsBeforeReady(t *testing.T) {
	repo := t.TempDir()
	writeModel(t, repo, "simple", 1, onnxgen.Simple(), warmupSimpleConfig("simple", `
  { name: "zeros" batch_size: 8 count: 2 inputs [
      { key: "INPUT0" value: { data_type: TYPE_INT32 dims: [ 16 ] zero_data: true } },
      { key: "INPUT1" value: { data_type: TYPE_INT32 dims: [ 16 ] zero_data: true } } ] },
  { name: "file" batch_size: 1 inputs [
      { key: "INPUT0" value: { data_type: TYPE_INT32 dims: [ 16 ] input_data_file: "input0.bin" } },
      { key: "INPUT1" value: { data_type: TYPE_INT32 dims: [ 16 ] random_data: true } } ] }`))
	var in0 []byte
	for i := range 16 {
		in0 = binary.LittleEndian.AppendUint32(in0, uint32(i))
	}
	writeWarmupFile(t, repo, "simple", "input0.bin", in0)
	logs := &logRecords{}
	ts := startServerLogging(t, repo, logs)

	warmed := logs.find("model version warmed up", "model", "simple", "version", "1", "samples", "2", "runs", "6") // (2+1) × 2 instances
	loaded := logs.find("model version loaded", "model", "simple", "version", "1")
	ready := logs.find("ready")
	if warmed < 0 || loaded < 0 || ready < 0 || !(warmed < loaded && loaded < ready) {
		t.Fatalf("log order: warmed up (6 runs) at %d, loaded at %d, ready at %d; want warmed < loaded < ready, all present\n%v",
			warmed, loaded, ready, logs.recs)
	}
	if st := cacheModelStats(t, ts, "simple"); st.ExecutionCount != 0 || st.InferenceCount != 0 || st.InferenceStats.Success.Count != 0 {
		t.Fatalf("stats count warmup: executions %d items %d successes %d, want 0", st.ExecutionCount, st.InferenceCount, st.InferenceStats.Success.Count)
	}
	if n := cacheMetric(t, ts, `ferry_batch_size_count{model="simple",version="1"}`); n > 0 {
		t.Fatalf("ferry_batch_size counts %v warmup executions, want none", n)
	}
	restOutputs(t, ts, "simple", simpleBody(1))
	if st := cacheModelStats(t, ts, "simple"); st.ExecutionCount != 1 {
		t.Fatalf("after one request: %d executions, want 1", st.ExecutionCount)
	}
	if n := cacheMetric(t, ts, `ferry_batch_size_count{model="simple",version="1"}`); n != 1 {
		t.Fatalf("ferry_batch_size_count = %v after one request, want 1", n)
	}
}

// TestWarmupFailureMakesModelUnavailable: a sample the model rejects, and a sample whose
// data file is missing, each leave their model UNAVAILABLE with the sample named in the
// reason; the other models serve.
func TestWarmupFailureMakesModelUnavailable(t *testing.T) {
	repo := t.TempDir()
	writeModel(t, repo, "badshape", 1, onnxgen.Simple(), warmupSimpleConfig("badshape", `
  { name: "wrong_width" batch_size: 1 inputs [
      { key: "INPUT0" value: { data_type: TYPE_INT32 dims: [ 15 ] zero_data: true } },
      { key: "INPUT1" value: { data_type: TYPE_INT32 dims: [ 15 ] zero_data: true } } ] }`))
	writeModel(t, repo, "nofile", 1, onnxgen.Simple(), warmupSimpleConfig("nofile", `
  { name: "from_file" batch_size: 2 inputs [
      { key: "INPUT0" value: { data_type: TYPE_INT32 dims: [ 16 ] input_data_file: "missing.bin" } },
      { key: "INPUT1" value: { data_type: TYPE_INT32 dims: [ 16 ] zero_data: true } } ] }`))
	writeModel(t, repo, "simple", 1, onnxgen.Simple(), simpleConfig)
	ts := startServer(t, repo)

	code, _, b := httpDo(t, "POST", ts.URL+"/v2/repository/index", "application/json", nil)
	var index []struct{ Name, Version, State, Reason string }
	if code != 200 || json.Unmarshal(b, &index) != nil {
		t.Fatalf("index: %d %s", code, b)
	}
	want := map[string][]string{
		"badshape": {`warmup sample "wrong_width" (model_warmup[0])`, "INPUT0"},
		"nofile":   {`warmup sample "from_file" (model_warmup[0])`, `input_data_file "missing.bin"`},
	}
	for _, e := range index {
		parts, ok := want[e.Name]
		if !ok {
			if e.State != "READY" {
				t.Errorf("%s: %s (%s), want READY", e.Name, e.State, e.Reason)
			}
			continue
		}
		delete(want, e.Name)
		if e.State != "UNAVAILABLE" {
			t.Errorf("%s: state %s, want UNAVAILABLE", e.Name, e.State)
		}
		for _, p := range parts {
			if !strings.Contains(e.Reason, p) {
				t.Errorf("%s: reason %q lacks %q", e.Name, e.Reason, p)
			}
		}
	}
	if len(want) != 0 {
		t.Fatalf("index lacks %v: %s", want, b)
	}
	code, _, b = httpDo(t, "POST", ts.URL+"/v2/models/badshape/infer", "application/json", strings.NewReader(simpleBody(1)))
	if code != 503 || !strings.Contains(string(b), "wrong_width") {
		t.Errorf("infer on the failed model: %d %s, want 503 naming the sample", code, b)
	}
	if code, _, b := httpDo(t, "GET", ts.URL+"/v2/models/badshape/ready", "", nil); code == 200 {
		t.Errorf("ready on the failed model: %d %s", code, b)
	}
	restOutputs(t, ts, "simple", simpleBody(1))
}
