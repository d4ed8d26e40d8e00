package main

import (
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"

	"github.com/ferryml/ferry/internal/backend/onnx"
	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/internal/modelconfig"
	"github.com/ferryml/ferry/internal/platform/ortlib"
	"github.com/ferryml/ferry/internal/v2client"
	"github.com/ferryml/ferry/tools/onnxgen"
)

// update rewrites the golden files under testdata/ (one flag for every test file here).
var update = flag.Bool("update", false, "rewrite cmd/ferry/testdata/*.golden")

// testRuntime is the process's one ONNX Runtime environment (ORT allows one at a time).
var testRuntime *onnx.Runtime

// runAsFerry names the environment variable that makes the test binary a ferry
// process: its value is the JSON list of arguments. Tests that must kill a server the
// hard way (kill -9) start one so, as a child process.
const runAsFerry = "FERRY_TEST_RUN_AS_FERRY"

// argvFromArgs, as runAsFerry's value, takes the ferry arguments from the command line.
const argvFromArgs = "argv"

func TestMain(m *testing.M) {
	if args := os.Getenv(runAsFerry); args != "" {
		os.Exit(ferryChild(args))
	}
	lib, err := findORT()
	if err != nil {
		fmt.Fprintln(os.Stderr, "cmd/ferry tests need ONNX Runtime (run `make ort`):", err)
		os.Exit(1)
	}
	testRuntime, err = onnx.NewRuntime(onnx.Options{LibraryPath: lib})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	testRuntime.Close()
	if code == 0 {
		if err := goleak.Find(goleak.IgnoreCurrent()); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines leaked:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// ferryChild runs the ferry command line args (JSON, or argvFromArgs: the process's
// own arguments, as the README tests' bin/ferry passes them) until SIGTERM or SIGKILL.
func ferryChild(args string) int {
	argv := os.Args[1:]
	if args != argvFromArgs {
		if err := json.Unmarshal([]byte(args), &argv); err != nil {
			fmt.Fprintln(os.Stderr, runAsFerry, err)
			return 2
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, argv, os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "ferry:", err)
		return 1
	}
	return 0
}

// findORT looks where `make ort` puts the library (or $FERRY_ORT_LIB).
func findORT() (string, error) {
	if p := ortlib.Find(os.Getenv); p != "" {
		return p, nil
	}
	return "", fmt.Errorf("no .ort/lib/libonnxruntime.so.1 above the working directory")
}

// testServer is a real Ferry serving on 127.0.0.1 with free ports.
type testServer struct {
	*server
	URL  string                               // http://127.0.0.1:port
	GRPC inference.GRPCInferenceServiceClient // the generated client, for wire-level checks
	conn *grpc.ClientConn
	// rest and grpc are typed V2 clients, for tests that check answers, not the wire.
	rest   *v2client.REST
	grpc   *v2client.GRPC
	cancel context.CancelFunc
	done   chan error
}

// serverOption adjusts a test server's configuration.
type serverOption func(*serveConfig)

// startServer serves repo and waits until it is ready (or, with readiness not expected,
// until it answers live). The server stops when the test ends.
func startServer(t testing.TB, repo string, opts ...serverOption) *testServer {
	t.Helper()
	// Auto-completed models get Triton's fixed max_batch_size 4, not a measured one, so
	// their configs (and golden files) do not depend on how busy the cores are;
	// withMeasuredMaxBatch turns the measurement on (autobatch_e2e_test.go).
	cfg := serveConfig{repository: repo, host: "127.0.0.1", mode: "none", pollInterval: 15 * time.Second,
		drain: 5 * time.Second, limits: defaultTestLimits(), strictReady: true, onnxMaxBatch: modelconfig.DefaultMaxBatchSize}
	for _, o := range opts {
		o(&cfg)
	}
	s, err := newServer(cfg, testRuntime, cmp.Or(cfg.testLog, testLogger()))
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

// connect makes the test's clients of the server.
func (ts *testServer) connect(t testing.TB) {
	var err error
	if ts.rest, err = v2client.NewREST(v2client.RESTOptions{URL: ts.URL, Timeout: time.Minute}); err != nil {
		t.Fatal(err)
	}
	if ts.grpc, err = v2client.NewGRPC(v2client.GRPCOptions{Addr: ts.grpcLn.Addr().String(), MaxMessageBytes: 1 << 30}); err != nil {
		t.Fatal(err)
	}
	ts.conn, ts.GRPC = ts.grpc.Conn(), ts.grpc.API()
}

func (ts *testServer) waitReady(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if ts.core.Started() { // startup loading done; broken models may keep Ready false
			return
		}
		select {
		case err := <-ts.done:
			t.Fatalf("server stopped before ready: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatal("server not ready after 30s")
}

// stop shuts the server down as SIGTERM would and waits for Run to return.
func (ts *testServer) stop() {
	if ts.cancel == nil {
		return
	}
	ts.cancel()
	ts.cancel = nil
	ts.conn.Close()
	ts.rest.Close()
	<-ts.done
}

// v2model is a model handle of either protocol's typed client.
type v2model interface {
	Infer(ctx context.Context, r *v2client.Request) (*v2client.Response, error)
	Metadata(ctx context.Context) (v2client.Metadata, error)
	Ready(ctx context.Context) error
}

// v2 is a typed client's handle on model (version; "" lets the server choose) over
// proto, "rest" (JSON unless the request asks for binary) or "grpc".
func (ts *testServer) v2(proto, model, version string) v2model {
	if proto == "grpc" {
		return ts.grpc.Model(model, version)
	}
	return ts.rest.Model(model, version)
}

func defaultTestLimits() core.Limits { return core.DefaultLimits() }

// writeModel writes model bytes (and a config when non-empty) as repo/name/version/model.onnx.
func writeModel(t testing.TB, repo, name string, version int, model []byte, config string) {
	t.Helper()
	dir := filepath.Join(repo, name, fmt.Sprint(version))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "model.onnx"), model, 0o644); err != nil {
		t.Fatal(err)
	}
	if config != "" {
		if err := os.WriteFile(filepath.Join(repo, name, "config.pbtxt"), []byte(config), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

const simpleConfig = `name: "simple"
platform: "onnxruntime_onnx"
max_batch_size: 8
input [
  { name: "INPUT0" data_type: TYPE_INT32 dims: [ 16 ] },
  { name: "INPUT1" data_type: TYPE_INT32 dims: [ 16 ] }
]
output [
  { name: "OUTPUT0" data_type: TYPE_INT32 dims: [ 16 ] },
  { name: "OUTPUT1" data_type: TYPE_INT32 dims: [ 16 ] }
]
`

// exampleRepo is the example repository (simple, identity_fp32 without config, mlp) plus
// an identity model for every V2 datatype ONNX supports, named identity_<type>.
func exampleRepo(t testing.TB) string {
	t.Helper()
	repo := t.TempDir()
	writeModel(t, repo, "simple", 1, onnxgen.Simple(), simpleConfig)
	writeModel(t, repo, "mlp", 1, onnxgen.MLP(1), "")
	for _, dt := range onnxgen.V2Types() {
		name := "identity_" + strings.ToLower(dt.V2Name())
		writeModel(t, repo, name, 1, onnxgen.Identity(dt, name), "")
	}
	return repo
}

// indexEntry is one row of POST /v2/repository/index.
type indexEntry struct{ Name, Version, State, Reason string }

// repositoryIndex fetches the server's repository index.
func repositoryIndex(t testing.TB, url string) []indexEntry {
	t.Helper()
	code, _, b := httpDo(t, "POST", url+"/v2/repository/index", "application/json", nil)
	if code != 200 {
		t.Fatalf("index: %d %s", code, b)
	}
	var index []indexEntry
	if err := json.Unmarshal(b, &index); err != nil {
		t.Fatalf("index: %v: %s", err, b)
	}
	return index
}

// httpDo sends a request and returns status and body.
func httpDo(t testing.TB, method, url, contentType string, body io.Reader, header ...string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

func httpClientCloseIdle() { http.DefaultClient.CloseIdleConnections() }

// testLogger discards logs unless the tests run verbosely.
func testLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}
