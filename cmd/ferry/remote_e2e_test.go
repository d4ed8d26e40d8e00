package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
)

// writeRemoteModel writes a remote model forwarding to the upstream's "simple": a config
// with the url and params (key, value pairs) and an empty version folder.
func writeRemoteModel(t testing.TB, repo, name, upstreamURL string, params ...string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(repo, name, "1"), 0o755); err != nil {
		t.Fatal(err)
	}
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "name: %q\nbackend: \"remote\"\ninstance_group [{ count: 8 kind: KIND_CPU }]\n", name)
	params = append([]string{"url", upstreamURL, "model_name", "simple"}, params...)
	for i := 0; i+1 < len(params); i += 2 {
		fmt.Fprintf(&cfg, "parameters { key: %q value: { string_value: %q } }\n", params[i], params[i+1])
	}
	if err := os.WriteFile(filepath.Join(repo, name, "config.pbtxt"), []byte(cfg.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// remoteAppendConfig adds text to a model's config.pbtxt.
func remoteAppendConfig(t testing.TB, repo, name, text string) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(repo, name, "config.pbtxt"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.WriteString(f, text); err != nil {
		t.Fatal(err)
	}
}

func remoteGRPCURL(ts *testServer) string { return "grpc://" + ts.grpcLn.Addr().String() }

// remoteWithPorts serves on fixed ports: an upstream restarted where it was before.
func remoteWithPorts(httpPort, grpcPort int) serverOption {
	return func(c *serveConfig) { c.httpPort, c.grpcPort = httpPort, grpcPort }
}

func remotePortsOf(ts *testServer) (int, int) {
	return ts.httpLn.Addr().(*net.TCPAddr).Port, ts.grpcLn.Addr().(*net.TCPAddr).Port
}

// TestRemoteMatchesUpstream: a remote model answers exactly as the upstream model it
// forwards to, over a REST and a gRPC upstream, asked over REST and gRPC, and its
// metadata and config are completed from the upstream's.
func TestRemoteMatchesUpstream(t *testing.T) {
	up := startServer(t, exampleRepo(t))
	repo := t.TempDir()
	writeRemoteModel(t, repo, "simple_rest", up.URL)
	writeRemoteModel(t, repo, "simple_grpc", remoteGRPCURL(up))
	// loose lets any row length through, so the upstream is the one to refuse a bad one.
	writeRemoteModel(t, repo, "loose", up.URL)
	remoteAppendConfig(t, repo, "loose", `max_batch_size: 8
input [{ name: "INPUT0" data_type: TYPE_INT32 dims: [ -1 ] }, { name: "INPUT1" data_type: TYPE_INT32 dims: [ -1 ] }]
output [{ name: "OUTPUT0" data_type: TYPE_INT32 dims: [ -1 ] }, { name: "OUTPUT1" data_type: TYPE_INT32 dims: [ -1 ] }]
`)
	front := startServer(t, repo)

	for _, model := range []string{"simple_rest", "simple_grpc"} {
		t.Run(model, func(t *testing.T) {
			for _, batch := range []int{1, 3, 8} {
				body := simpleBody(batch)
				if got, want := restOutputs(t, front, model, body), restOutputs(t, up, "simple", body); got != want {
					t.Errorf("batch %d over REST: outputs %s, want the upstream's %s", batch, got, want)
				}
				req := e2eSimpleRequest("id", batch, true)
				req.ModelName = model
				res, err := front.GRPC.ModelInfer(context.Background(), req)
				if err != nil {
					t.Fatalf("batch %d over gRPC: %v", batch, err)
				}
				e2eCheckSimple(t, res, batch, "OUTPUT0", "OUTPUT1")
			}
			var md, upMD struct {
				Inputs, Outputs []struct {
					Name, Datatype string
					Shape          []int64
				}
			}
			for _, x := range []struct {
				ts   *testServer
				path string
				dst  any
			}{{front, "/v2/models/" + model, &md}, {up, "/v2/models/simple", &upMD}} {
				code, _, b := httpDo(t, "GET", x.ts.URL+x.path, "", nil)
				if code != http.StatusOK || json.Unmarshal(b, x.dst) != nil {
					t.Fatalf("GET %s: %d %s", x.path, code, b)
				}
			}
			if fmt.Sprint(md) != fmt.Sprint(upMD) {
				t.Errorf("metadata inputs/outputs %v, want the upstream's %v", md, upMD)
			}
			code, _, b := httpDo(t, "GET", front.URL+"/v2/models/"+model+"/config", "", nil)
			var cfg struct {
				MaxBatchSize int    `json:"max_batch_size"`
				Backend      string `json:"backend"`
			}
			if code != http.StatusOK || json.Unmarshal(b, &cfg) != nil || cfg.MaxBatchSize != 8 || cfg.Backend != "remote" {
				t.Errorf("config: %d %s; want backend remote and the upstream's max_batch_size 8", code, b)
			}
		})
	}
	// A request the upstream refuses as malformed is a 400 here too, not a retried failure.
	code, _, b := httpDo(t, "POST", front.URL+"/v2/models/loose/infer", "application/json",
		strings.NewReader(`{"inputs":[{"name":"INPUT0","shape":[1,3],"datatype":"INT32","data":[1,2,3]},`+
			`{"name":"INPUT1","shape":[1,3],"datatype":"INT32","data":[1,2,3]}]}`))
	if code != http.StatusBadRequest || !strings.Contains(string(b), "upstream "+up.URL) {
		t.Errorf("infer the upstream refuses: %d %s, want 400 passing on the upstream's reason", code, b)
	}
}

// remoteSlowProxy stands between a remote model and its upstream's REST port and delays every
// every-th infer request by delay (less if the caller gives up first), like a replica
// that stalls now and then (a GC pause, a noisy neighbour).
type remoteSlowProxy struct {
	*httptest.Server
	infers, slowed atomic.Int64
}

func newRemoteSlowProxy(tb testing.TB, target string, every int64, delay time.Duration) *remoteSlowProxy {
	u, err := url.Parse(target)
	if err != nil {
		tb.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	rp.Transport = tr
	rp.ErrorHandler = func(w http.ResponseWriter, _ *http.Request, _ error) { w.WriteHeader(http.StatusBadGateway) }
	p := &remoteSlowProxy{}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/infer") && p.infers.Add(1)%every == 0 {
			p.slowed.Add(1)
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return // the caller gave up (a hedge won): nothing to forward
			}
		}
		rp.ServeHTTP(w, r)
	}))
	tb.Cleanup(func() { p.Close(); tr.CloseIdleConnections() })
	return p
}

// remoteHedgeSetup serves simple behind a slow proxy (1 infer in 30 delayed 200 ms, so slow
// tries stay above the p95) and a front server with two remote models on the proxy:
// "plain" (no hedging) and "hedged" (hedge at p95).
func remoteHedgeSetup(tb testing.TB) (*testServer, *remoteSlowProxy) {
	up := startServer(tb, exampleRepo(tb))
	proxy := newRemoteSlowProxy(tb, up.URL, 30, 200*time.Millisecond)
	repo := tb.TempDir()
	common := []string{"health_interval", "off", "breaker_failures", "0"}
	writeRemoteModel(tb, repo, "plain", proxy.URL, append([]string{"hedge", "off"}, common...)...)
	writeRemoteModel(tb, repo, "hedged", proxy.URL, append([]string{"hedge", "p95", "retry_budget", "0.2"}, common...)...)
	return startServer(tb, repo), proxy
}

// remoteLatencies sends n requests to model from conc clients and returns each one's latency.
// Any failed request fails the test.
func remoteLatencies(tb testing.TB, hc *http.Client, front *testServer, model string, n, conc int) []time.Duration {
	tb.Helper()
	body := simpleBody(1)
	var (
		mu    sync.Mutex
		out   = make([]time.Duration, 0, n)
		next  atomic.Int64
		wg    sync.WaitGroup
		first atomic.Pointer[error]
	)
	for range conc {
		wg.Go(func() {
			for next.Add(1) <= int64(n) && first.Load() == nil {
				start := time.Now()
				resp, err := hc.Post(front.URL+"/v2/models/"+model+"/infer", "application/json", strings.NewReader(body))
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("infer %s: HTTP %d", model, resp.StatusCode)
					}
				}
				if err != nil {
					first.CompareAndSwap(nil, &err)
					return
				}
				mu.Lock()
				out = append(out, time.Since(start))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := first.Load(); err != nil {
		tb.Fatal(*err)
	}
	slices.Sort(out)
	return out
}

// remoteQuantile of sorted remoteLatencies.
func remoteQuantile(sorted []time.Duration, q float64) time.Duration {
	return sorted[min(int(q*float64(len(sorted))), len(sorted)-1)]
}

func remoteClient(tb testing.TB) *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	tb.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: time.Minute}
}

// TestRemoteHedgingCutsP99: against an upstream that stalls 1 request in 30 for 200 ms,
// the p99 without hedging is the stall; hedging at the observed p95 sends a second try
// and answers in about the p95.
func TestRemoteHedgingCutsP99(t *testing.T) {
	front, proxy := remoteHedgeSetup(t)
	hc := remoteClient(t)
	p99 := map[string]time.Duration{}
	for _, model := range []string{"plain", "hedged"} {
		remoteLatencies(t, hc, front, model, 40, 1) // warm up: connections, and samples for the p95
		lat := remoteLatencies(t, hc, front, model, 300, 1)
		p99[model] = remoteQuantile(lat, 0.99)
		t.Logf("%s: p50 %v p99 %v max %v; slowest %v", model, remoteQuantile(lat, 0.5), p99[model], lat[len(lat)-1], lat[len(lat)-12:])
	}
	if proxy.slowed.Load() < 2*340/30-2 {
		t.Fatalf("the proxy stalled only %d requests", proxy.slowed.Load())
	}
	if p99["plain"] < 200*time.Millisecond {
		t.Fatalf("p99 without hedging %v: want it at the 200ms stall (does the proxy delay?)", p99["plain"])
	}
	if p99["hedged"] > p99["plain"]/2 {
		t.Errorf("p99 with hedging %v, without %v: want hedging to cut it at least in half", p99["hedged"], p99["plain"])
	}
	_, _, m := httpDo(t, "GET", front.URL+"/metrics", "", nil)
	if strings.Contains(string(m), `ferry_remote_hedges_total{model="hedged",version="1"} 0`+"\n") ||
		!strings.Contains(string(m), `ferry_remote_hedges_total{model="plain",version="1"} 0`+"\n") {
		t.Errorf("want hedges counted for the hedged model only:\n%s", grepLines(string(m), "ferry_remote_hedges"))
	}
}

// TestRemoteBreakerOpensAndRecovers: with the upstream stopped, requests fail with the
// transport error until the breaker opens, then fail fast with "upstream circuit open"
// (503 / UNAVAILABLE); with the upstream back on the same address, a probe closes the
// circuit and requests succeed again.
func TestRemoteBreakerOpensAndRecovers(t *testing.T) {
	for _, proto := range []string{"REST", "gRPC"} {
		t.Run(proto, func(t *testing.T) {
			upRepo := exampleRepo(t)
			up := startServer(t, upRepo)
			target := up.URL
			if proto == "gRPC" {
				target = remoteGRPCURL(up)
			}
			repo := t.TempDir()
			writeRemoteModel(t, repo, "r", target, "retries", "0", "breaker_failures", "3",
				"breaker_cooldown", "300ms", "health_interval", "off", "timeout", "2s")
			front := startServer(t, repo)
			infer := func() (int, string) {
				code, _, b := httpDo(t, "POST", front.URL+"/v2/models/r/infer", "application/json", strings.NewReader(simpleBody(1)))
				return code, string(b)
			}
			if code, b := infer(); code != http.StatusOK {
				t.Fatalf("infer with the upstream up: %d %s", code, b)
			}

			httpPort, grpcPort := remotePortsOf(up)
			up.stop()
			for i := range 3 {
				code, b := infer()
				if code != http.StatusServiceUnavailable || strings.Contains(b, "circuit open") {
					t.Fatalf("failure %d with the upstream stopped: %d %s, want 503 naming the transport error", i+1, code, b)
				}
			}
			code, b := infer()
			if code != http.StatusServiceUnavailable || !strings.Contains(b, "upstream circuit open") {
				t.Fatalf("after 3 failures: %d %s, want 503 upstream circuit open", code, b)
			}
			req := e2eSimpleRequest("id", 1, true)
			req.ModelName = "r"
			_, err := front.GRPC.ModelInfer(context.Background(), req)
			e2eWantStatus(t, "gRPC infer with the circuit open", err, codes.Unavailable, "upstream circuit open")
			remoteWantMetric(t, front, `ferry_remote_circuit_open{model="r",version="1"} 1`)
			remoteWantMetric(t, front, `ferry_remote_tries_total{model="r",version="1"} 4`) // 1 good + 3 failed; open fails fast

			startServer(t, upRepo, remoteWithPorts(httpPort, grpcPort)) // the upstream is back
			deadline := time.Now().Add(20 * time.Second)
			for {
				code, b := infer()
				if code == http.StatusOK {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("upstream back for 20s, infer still %d %s", code, b)
				}
				time.Sleep(50 * time.Millisecond)
			}
			for i := range 10 {
				if code, b := infer(); code != http.StatusOK {
					t.Fatalf("request %d after recovery: %d %s", i, code, b)
				}
			}
			remoteWantMetric(t, front, `ferry_remote_circuit_open{model="r",version="1"} 0`)
		})
	}
}

// remoteWantMetric fails unless the server's /metrics holds the exact line.
func remoteWantMetric(t *testing.T, ts *testServer, line string) {
	t.Helper()
	_, _, b := httpDo(t, "GET", ts.URL+"/metrics", "", nil)
	if !strings.Contains(string(b), line+"\n") {
		t.Errorf("/metrics lacks %q; remote series:\n%s", line, grepLines(string(b), "ferry_remote_"))
	}
}

// TestRemoteReadinessFollowsUpstream: the periodic health check marks the remote model
// not ready (ready endpoint, index, infer error) while its upstream is down and ready
// again when it is back; the server itself stays ready.
func TestRemoteReadinessFollowsUpstream(t *testing.T) {
	upRepo := exampleRepo(t)
	up := startServer(t, upRepo)
	repo := t.TempDir()
	writeRemoteModel(t, repo, "r", remoteGRPCURL(up), "health_interval", "50ms")
	front := startServer(t, repo)
	modelReady := func() bool {
		code, _, _ := httpDo(t, "GET", front.URL+"/v2/models/r/ready", "", nil)
		return code == http.StatusOK
	}
	waitUntil := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if !modelReady() {
		t.Fatal("remote model not ready with its upstream up")
	}
	httpPort, grpcPort := remotePortsOf(up)
	up.stop()
	waitUntil("the model to turn not ready", func() bool { return !modelReady() })

	code, _, b := httpDo(t, "POST", front.URL+"/v2/repository/index", "application/json", strings.NewReader(`{}`))
	var index []struct{ Name, Version, State, Reason string }
	if code != http.StatusOK || json.Unmarshal(b, &index) != nil || len(index) != 1 ||
		index[0].State != "UNAVAILABLE" || !strings.Contains(index[0].Reason, "health check") {
		t.Errorf("index with the upstream down: %d %s, want r UNAVAILABLE because of the health check", code, b)
	}
	code, _, b = httpDo(t, "POST", front.URL+"/v2/models/r/infer", "application/json", strings.NewReader(simpleBody(1)))
	if code != http.StatusServiceUnavailable || !strings.Contains(string(b), "not ready") {
		t.Errorf("infer with the upstream down: %d %s, want 503 not ready", code, b)
	}
	if code, _, _ := httpDo(t, "GET", front.URL+"/v2/health/ready", "", nil); code != http.StatusOK {
		t.Errorf("server readiness %d with a remote upstream down; want 200 (an upstream outage is no reason to leave the load balancer)", code)
	}

	up = startServer(t, upRepo, remoteWithPorts(httpPort, grpcPort))
	waitUntil("the model to be ready again", modelReady)
	if got, want := restOutputs(t, front, "r", simpleBody(2)), restOutputs(t, up, "simple", simpleBody(2)); got != want {
		t.Errorf("infer after recovery: %s, want the upstream's %s", got, want)
	}
}

// TestRemoteLoadNeedsUpstream: a remote model whose config leaves the inputs out fails to
// load, with a clear reason, when its upstream cannot be reached; one whose config lists
// them loads and waits for the upstream.
func TestRemoteLoadNeedsUpstream(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	nowhere := "http://" + ln.Addr().String()
	ln.Close() // nothing listens there now
	repo := t.TempDir()
	writeRemoteModel(t, repo, "unreachable", nowhere, "timeout", "2s")
	writeRemoteModel(t, repo, "configured", nowhere, "timeout", "2s")
	remoteAppendConfig(t, repo, "configured", strings.TrimPrefix(simpleConfig, `name: "simple"`+"\n"+`platform: "onnxruntime_onnx"`+"\n"))
	front := startServer(t, repo)

	code, _, b := httpDo(t, "POST", front.URL+"/v2/repository/index", "application/json", strings.NewReader(`{}`))
	var index []struct{ Name, Version, State, Reason string }
	if code != http.StatusOK || json.Unmarshal(b, &index) != nil {
		t.Fatalf("index: %d %s", code, b)
	}
	states := map[string]string{}
	for _, e := range index {
		states[e.Name] = e.State + ": " + e.Reason
	}
	if s := states["unreachable"]; !strings.HasPrefix(s, "UNAVAILABLE") || !strings.Contains(s, "upstream's model metadata") || !strings.Contains(s, nowhere) {
		t.Errorf("unreachable: %q, want UNAVAILABLE naming the metadata read and %s", s, nowhere)
	}
	if s := states["configured"]; !strings.HasPrefix(s, "UNAVAILABLE") || !strings.Contains(s, "health check") {
		t.Errorf("configured: %q, want loaded but UNAVAILABLE until its upstream's health check passes", s)
	}
}

// TestRemoteOverTLS: https:// and grpcs:// upstreams serve when their certificate is
// trusted through tls_ca_file, also with a client certificate (mutual TLS) where the
// upstream asks for one; an upstream whose certificate is not trusted fails its model's
// load with the reason.
func TestRemoteOverTLS(t *testing.T) {
	up := startServer(t, exampleRepo(t))
	dir := t.TempDir()
	ca := remoteTestCA(t)
	serverCert := ca.issue(t, "upstream", x509.ExtKeyUsageServerAuth)
	caFile := filepath.Join(dir, "ca.pem")
	certFile, keyFile := ca.issueFiles(t, dir, "client", x509.ExtKeyUsageClientAuth)
	if err := os.WriteFile(caFile, ca.pem, 0o644); err != nil {
		t.Fatal(err)
	}

	target, err := url.Parse(up.URL)
	if err != nil {
		t.Fatal(err)
	}
	rest := httptest.NewUnstartedServer(httputil.NewSingleHostReverseProxy(target))
	rest.TLS = &tls.Config{Certificates: []tls.Certificate{serverCert}}
	rest.StartTLS()
	t.Cleanup(rest.Close)
	// The gRPC upstream wants a client certificate signed by the same CA.
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.pem)
	gs := grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{serverCert},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool})))
	up.grpcAPI.Register(gs)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go gs.Serve(ln) //nolint:errcheck // ends with Stop
	t.Cleanup(gs.Stop)
	restURL := "https://" + rest.Listener.Addr().String()

	repo := t.TempDir()
	writeRemoteModel(t, repo, "via_https", restURL, "tls_ca_file", caFile, "timeout", "5s")
	writeRemoteModel(t, repo, "via_grpcs", "grpcs://"+ln.Addr().String(), "tls_ca_file", caFile,
		"tls_cert_file", certFile, "tls_key_file", keyFile, "timeout", "5s")
	writeRemoteModel(t, repo, "untrusted", restURL, "timeout", "5s")
	front := startServer(t, repo, func(c *serveConfig) { c.strictReady = false })

	for _, model := range []string{"via_https", "via_grpcs"} {
		body := simpleBody(2)
		if got, want := restOutputs(t, front, model, body), restOutputs(t, up, "simple", body); got != want {
			t.Errorf("%s: outputs %s, want the upstream's %s", model, got, want)
		}
	}
	e, _ := findEntry(repositoryIndex(t, front.URL), "untrusted", "")
	if e.State != "UNAVAILABLE" || !strings.Contains(e.Reason, "certificate signed by unknown authority") {
		t.Errorf("untrusted upstream: %+v, want UNAVAILABLE saying the certificate is not trusted", e)
	}
}

// remoteCA is a certificate authority made for one test.
type remoteCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func remoteTestCA(t *testing.T) *remoteCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ferry test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &remoteCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue signs a certificate for 127.0.0.1 with the given use.
func (ca *remoteCA) issue(t *testing.T, name string, use x509.ExtKeyUsage) tls.Certificate {
	t.Helper()
	certPEM, keyPEM := ca.issuePEM(t, name, use)
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return pair
}

// issueFiles writes a signed certificate and its key as PEM files in dir.
func (ca *remoteCA) issueFiles(t *testing.T, dir, name string, use x509.ExtKeyUsage) (certFile, keyFile string) {
	t.Helper()
	certPEM, keyPEM := ca.issuePEM(t, name, use)
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(certFile, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func (ca *remoteCA) issuePEM(t *testing.T, name string, use x509.ExtKeyUsage) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{use},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
}
