package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/internal/repository"
	"github.com/ferryml/ferry/internal/scheduler"
	"github.com/ferryml/ferry/internal/tensor"
	"github.com/ferryml/ferry/tools/onnxgen"
)

// gatedBackend is an engine whose instances open only when the test says so.
func gatedBackend(release <-chan struct{}) repository.Backend {
	return repository.Backend{
		Platform:        "gated_test",
		DefaultFilename: "model.bin",
		Open: func(ctx context.Context, _ string, _ *inference.ModelConfig) (scheduler.Instance, error) {
			select {
			case <-release:
				return noopInstance{}, nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		},
	}
}

type noopInstance struct{}

func (noopInstance) Execute(context.Context, []*tensor.Tensor, []string) ([]*tensor.Tensor, error) {
	return nil, errors.New("not used")
}
func (noopInstance) Close() error { return nil }

// TestNotReadyUntilStartupModelsLoad: while a startup model is still loading the server
// is live but not ready, over REST and gRPC; once it loads, both say ready.
func TestNotReadyUntilStartupModelsLoad(t *testing.T) {
	repo := t.TempDir()
	dir := filepath.Join(repo, "gated", "1")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "model.bin"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(repo, "gated", "config.pbtxt"), []byte(`backend: "gated"
input [ { name: "x" data_type: TYPE_FP32 dims: [ 1 ] } ]
output [ { name: "y" data_type: TYPE_FP32 dims: [ 1 ] } ]
`), 0o644)
	release := make(chan struct{})
	cfg := serveConfig{repository: repo, host: "127.0.0.1", mode: "none", pollInterval: time.Hour, drain: time.Second,
		limits: defaultTestLimits(), strictReady: true, moreBackends: repository.Backends{"gated": gatedBackend(release)}}
	s, err := newServer(cfg, testRuntime, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	url := "http://" + s.httpLn.Addr().String()

	waitFor(t, func() bool { code, _, _ := httpDo(t, "GET", url+"/v2/health/live", "", nil); return code == 200 })
	if code, _, b := httpDo(t, "GET", url+"/v2/health/ready", "", nil); code != 503 {
		_, _, idx := httpDo(t, "POST", url+"/v2/repository/index", "", nil)
		t.Fatalf("ready while the startup model loads = %d %s, want 503; index %s", code, b, idx)
	}
	close(release)
	waitFor(t, func() bool { code, _, _ := httpDo(t, "GET", url+"/v2/health/ready", "", nil); return code == 200 })
}

// TestStrictReadiness: a model that failed to load keeps the server not ready, as
// Triton's strict readiness does; without it the server is ready once loading is done.
func TestStrictReadiness(t *testing.T) {
	for _, strict := range []bool{true, false} {
		repo := t.TempDir()
		writeModel(t, repo, "simple", 1, onnxgen.Simple(), simpleConfig)
		writeModel(t, repo, "corrupt", 1, []byte("not onnx"), "")
		ts := startServer(t, repo, func(c *serveConfig) { c.strictReady = strict })
		code, _, _ := httpDo(t, "GET", ts.URL+"/v2/health/ready", "", nil)
		if want := map[bool]int{true: 503, false: 200}[strict]; code != want {
			t.Errorf("strict=%v: ready = %d with a broken model, want %d", strict, code, want)
		}
		if code, _, _ := httpDo(t, "POST", ts.URL+"/v2/models/simple/infer", "application/json", strings.NewReader(simpleBody(1))); code != 200 {
			t.Errorf("strict=%v: the good model answered %d", strict, code)
		}
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	waitUntil(t, 20*time.Second, "condition met", cond)
}
