package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/ferryml/ferry/tools/onnxgen"
)

// TestTritonFlagsParse: tritonserver's flag forms fill the config as Ferry's own do,
// and bad values are refused naming the flag and what it wants.
func TestTritonFlagsParse(t *testing.T) {
	type got struct {
		poll                        time.Duration
		httpAddr, grpcAddr, metAddr string
		metPort                     int
		metOn, exitOnError, noFill  bool
	}
	for _, tc := range []struct {
		name    string
		args    []string
		want    got
		wantErr string
	}{
		{"defaults", nil, got{poll: 15 * time.Second}, ""},
		{"poll interval in whole seconds, as Triton", []string{"--repository-poll-interval", "15"}, got{poll: 15 * time.Second}, ""},
		{"poll interval as a duration", []string{"--repository-poll-interval=250ms"}, got{poll: 250 * time.Millisecond}, ""},
		{"tritonserver's poll flag name", []string{"--repository-poll-secs=30"}, got{poll: 30 * time.Second}, ""},
		{"listener addresses and metrics", []string{"--http-address", "0.0.0.0", "--grpc-address=::1", "--metrics-port", "8002", "--metrics-address", "127.0.0.1"},
			got{poll: 15 * time.Second, httpAddr: "0.0.0.0", grpcAddr: "::1", metAddr: "127.0.0.1", metPort: 8002, metOn: true}, ""},
		{"metrics port 0 picks a free one", []string{"--metrics-port=0"}, got{poll: 15 * time.Second, metOn: true}, ""},
		{"boolean flags in Triton's =true form", []string{"--exit-on-error=true", "--disable-auto-complete-config"},
			got{poll: 15 * time.Second, exitOnError: true, noFill: true}, ""},
		{"zero poll interval", []string{"--repository-poll-interval", "0"}, got{}, `"0": must be more than 0`},
		{"negative poll interval", []string{"--repository-poll-secs", "-5"}, got{}, `"-5": must be more than 0`},
		{"poll interval without a unit or number", []string{"--repository-poll-interval", "soon"}, got{}, `want whole seconds (15) or a duration`},
		{"poll interval too long", []string{"--repository-poll-interval", "99999999999999"}, got{}, `too long`},
		{"metrics port out of range", []string{"--metrics-port", "70000"}, got{}, `"70000": want a port number`},
		{"metrics port -1", []string{"--metrics-port=-1"}, got{}, `"-1": want a port number`},
		{"a tritonserver flag Ferry does not take", []string{"--allow-grpc=false"}, got{}, "unknown flag: --allow-grpc"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c serveConfig
			fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
			fs.SetOutput(io.Discard)
			c.addTritonFlags(fs)
			err := fs.Parse(tc.args)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("flags %q: err = %v, want %q", tc.args, err, tc.wantErr)
				}
				return
			}
			g := got{c.pollInterval, c.httpAddr, c.grpcAddr, c.metricsAddr, c.metricsPort, c.metricsOn, c.exitOnError, c.noAutoFill}
			if err != nil || g != tc.want {
				t.Fatalf("flags %q: got %+v, %v; want %+v", tc.args, g, err, tc.want)
			}
		})
	}
}

// TestMetricsAddressNeedsPort: an address for a listener that is not asked for is a
// mistake, said at start.
func TestMetricsAddressNeedsPort(t *testing.T) {
	c := serveConfig{limits: defaultTestLimits(), mode: "none", metricsAddr: "127.0.0.1"}
	if err := c.validate(); err == nil || !strings.Contains(err.Error(), "--metrics-address needs --metrics-port") {
		t.Fatalf("validate = %v, want --metrics-address needs --metrics-port", err)
	}
}

// TestVersionFlag: `ferry --version`, `ferry -v` and `ferry version` print the same line.
func TestVersionFlag(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"-v"}, {"version"}} {
		var out, errOut bytes.Buffer
		if err := run(context.Background(), args, func(string) string { return "" }, &out, &errOut); err != nil {
			t.Fatalf("ferry %s: %v", args[0], err)
		}
		if got, want := out.String(), "ferry "+version+"\n"; got != want {
			t.Errorf("ferry %s printed %q, want %q", args[0], got, want)
		}
	}
}

// TestListenersBindWhereAsked: --http-address and --grpc-address override --host for
// their listener, and --metrics-port opens a third listener serving /metrics alone,
// bound by default where HTTP is, while /metrics stays on the HTTP port.
func TestListenersBindWhereAsked(t *testing.T) {
	ts := startServer(t, exampleRepo(t), func(c *serveConfig) {
		c.httpAddr, c.grpcAddr, c.metricsOn = "127.0.0.2", "127.0.0.3", true
	})
	for name, ln := range map[string]net.Listener{"http": ts.httpLn, "grpc": ts.grpcLn, "metrics": ts.metricsLn} {
		want := map[string]string{"http": "127.0.0.2", "grpc": "127.0.0.3", "metrics": "127.0.0.2"}[name]
		if host, _, _ := net.SplitHostPort(ln.Addr().String()); host != want {
			t.Errorf("%s listener bound to %s, want %s", name, ln.Addr(), want)
		}
	}
	if _, err := ts.GRPC.ServerLive(context.Background(), nil); err != nil {
		t.Errorf("gRPC at %s: %v", ts.grpcLn.Addr(), err)
	}
	_, port, _ := net.SplitHostPort(ts.httpLn.Addr().String())
	if c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", port)); err == nil { // --host is not used by HTTP
		c.Close()
		t.Errorf("HTTP also answers on 127.0.0.1:%s", port)
	}

	metricsURL := "http://" + ts.metricsLn.Addr().String()
	code, _, b := httpDo(t, "GET", metricsURL+"/metrics", "", nil)
	if code != 200 || !strings.Contains(string(b), `ferry_model_state{model="simple",state="READY",version="1"} 1`) {
		t.Fatalf("GET /metrics on the metrics port: %d %.300s", code, b)
	}
	if code, _, _ := httpDo(t, "GET", metricsURL+"/v2/health/live", "", nil); code != 404 {
		t.Errorf("the metrics port answered /v2/health/live with %d, want 404: it serves /metrics only", code)
	}
	if code, _, b := httpDo(t, "GET", ts.URL+"/metrics", "", nil); code != 200 || !strings.Contains(string(b), "ferry_model_state") {
		t.Errorf("GET /metrics on the HTTP port: %d %.200s", code, b)
	}

	ts.stop() // the metrics listener closes with the server
	if c, err := net.Dial("tcp", ts.metricsLn.Addr().String()); err == nil {
		c.Close()
		t.Error("the metrics listener still accepts after the server stopped")
	}
}

// TestMetricsAddress: --metrics-address binds the metrics listener apart from HTTP.
func TestMetricsAddress(t *testing.T) {
	ts := startServer(t, exampleRepo(t), func(c *serveConfig) { c.metricsOn, c.metricsAddr = true, "127.0.0.4" })
	if host, _, _ := net.SplitHostPort(ts.metricsLn.Addr().String()); host != "127.0.0.4" {
		t.Fatalf("metrics listener at %s, want 127.0.0.4", ts.metricsLn.Addr())
	}
	if code, _, _ := httpDo(t, "GET", "http://"+ts.metricsLn.Addr().String()+"/metrics", "", nil); code != 200 {
		t.Fatalf("GET /metrics: %d", code)
	}
}

// TestNoMetricsListenerByDefault: without --metrics-port there is no third listener.
func TestNoMetricsListenerByDefault(t *testing.T) {
	ts := startServer(t, exampleRepo(t))
	if ts.metricsLn != nil {
		t.Fatalf("a metrics listener at %s without --metrics-port", ts.metricsLn.Addr())
	}
}

// TestExitOnError: with --exit-on-error a model that fails at start stops the server
// with an error naming it; without, the server serves the others (TestStrictReadiness).
func TestExitOnError(t *testing.T) {
	repo := t.TempDir()
	writeModel(t, repo, "simple", 1, onnxgen.Simple(), simpleConfig)
	writeModel(t, repo, "corrupt", 1, []byte("not onnx"), "")
	cfg := serveConfig{repository: repo, host: "127.0.0.1", mode: "none", drain: time.Second,
		limits: defaultTestLimits(), strictReady: true, exitOnError: true}
	s, err := newServer(cfg, testRuntime, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a bound, not a measurement
	defer cancel()
	err = s.Run(ctx)
	if err == nil || ctx.Err() != nil {
		t.Fatalf("Run = %v (ctx %v), want the load failure", err, ctx.Err())
	}
	if !strings.Contains(err.Error(), "model 'corrupt'") || strings.Contains(err.Error(), "'simple'") {
		t.Fatalf("Run = %q, want an error naming corrupt only", err)
	}
	if c, err := net.Dial("tcp", s.httpLn.Addr().String()); err == nil {
		c.Close()
		t.Error("HTTP still accepts after the server exited")
	}
}

// TestDisableAutoCompleteConfig: with auto-complete off a model without a config, or
// with one that leaves out what the model file would fill in, fails to load with the
// reason in the index; a complete config loads, and is still checked against the model.
func TestDisableAutoCompleteConfig(t *testing.T) {
	repo := t.TempDir()
	writeModel(t, repo, "simple", 1, onnxgen.Simple(), simpleConfig)
	writeModel(t, repo, "noconfig", 1, onnxgen.Identity(onnxgen.Float, "noconfig"), "")
	writeModel(t, repo, "partial", 1, onnxgen.Identity(onnxgen.Float, "partial"), `platform: "onnxruntime_onnx"
input [ { name: "INPUT0" data_type: TYPE_FP32 } ]
`)
	writeModel(t, repo, "wrongtype", 1, onnxgen.Identity(onnxgen.Float, "wrongtype"), `platform: "onnxruntime_onnx"
max_batch_size: 8
input [ { name: "INPUT0" data_type: TYPE_INT64 dims: [ -1 ] } ]
output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ -1 ] } ]
`)
	ts := startServer(t, repo, func(c *serveConfig) { c.noAutoFill = true })
	want := map[string][]string{ // model -> parts its reason must contain; none: READY
		"simple":    nil,
		"noconfig":  {"no config.pbtxt", "auto-complete is disabled"},
		"partial":   {"auto-complete is disabled", `input["INPUT0"].dims: not set`, "output: none listed"},
		"wrongtype": {"INPUT0", "TYPE_INT64"},
	}
	for _, e := range repositoryIndex(t, ts.URL) {
		parts, ok := want[e.Name]
		if !ok {
			continue
		}
		delete(want, e.Name)
		if parts == nil {
			if e.State != "READY" {
				t.Errorf("%s: %s %q, want READY", e.Name, e.State, e.Reason)
			}
			continue
		}
		if e.State != "UNAVAILABLE" {
			t.Errorf("%s: %s, want UNAVAILABLE", e.Name, e.State)
		}
		for _, p := range parts {
			if !strings.Contains(e.Reason, p) {
				t.Errorf("%s: reason %q lacks %q", e.Name, e.Reason, p)
			}
		}
	}
	if len(want) != 0 {
		t.Errorf("index lacks %v", want)
	}

	// The same repository with auto-complete on loads the models the config leaves open.
	ts2 := startServer(t, repo)
	for _, e := range repositoryIndex(t, ts2.URL) {
		if (e.Name == "noconfig" || e.Name == "partial") && e.State != "READY" {
			t.Errorf("auto-complete on: %s %s %q, want READY", e.Name, e.State, e.Reason)
		}
	}
}
