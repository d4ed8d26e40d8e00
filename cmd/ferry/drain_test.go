package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ferryml/ferry/tools/onnxgen"
)

// slowModel multiplies a fixed [rows,512] input by the same 512x512 matrix `steps` times,
// so one run takes long enough to be in flight when the server is told to stop.
func slowModel(rows int64, steps int) []byte {
	const n = 512
	w := make([]float32, n*n)
	for i := range n {
		w[i*n+i] = 1 // identity keeps values finite
	}
	m := onnxgen.NewModel("slow").
		Input("INPUT0", onnxgen.Float, onnxgen.Fixed(rows), onnxgen.Fixed(n)).
		Output("OUTPUT0", onnxgen.Float, onnxgen.Fixed(rows), onnxgen.Fixed(n)).
		InitializerFloat32("W", []int64{n, n}, w)
	prev := "INPUT0"
	for i := range steps {
		out := fmt.Sprintf("h%d", i)
		if i == steps-1 {
			out = "OUTPUT0"
		}
		m.Node("MatMul", []string{prev, "W"}, []string{out})
		prev = out
	}
	return m.Bytes()
}

// TestShutdownDrainsInFlightRequests: requests already running when SIGTERM arrives
// finish successfully; the server stops accepting new connections meanwhile.
func TestShutdownDrainsInFlightRequests(t *testing.T) {
	repo := t.TempDir()
	// A run lasts long enough (0.5-1 s here) that the three requests, which reach core
	// one after another, are all inside it at once even when make test's other
	// packages load the machine: with 400 steps (0.15 s a run) a fresh-clone run saw all
	// three finish before any moment with three in flight.
	writeModel(t, repo, "slow", 1, slowModel(64, 2000), "")
	ts := startServer(t, repo, func(c *serveConfig) { c.drain = 30 * time.Second })
	body := `{"inputs":[{"name":"INPUT0","shape":[64,512],"datatype":"FP32","data":[` +
		strings.TrimSuffix(strings.Repeat("1,", 64*512), ",") + `]}]}`

	const clients = 3
	codes := make(chan int, clients)
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			resp, err := http.Post(ts.URL+"/v2/models/slow/infer", "application/json", strings.NewReader(body))
			if err != nil {
				codes <- -1
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			codes <- resp.StatusCode
		})
	}
	waitInFlight(t, ts, `ferry_requests_in_flight{model="slow",version="1"} 3`)
	ts.stop() // as SIGTERM: Run returns once the drain is done and models are unloaded
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != 200 {
			t.Errorf("in-flight request ended with %d, want 200", c)
		}
	}
	if _, err := http.Get(ts.URL + "/v2/health/live"); err == nil {
		t.Error("server still accepts connections after shutdown")
	}
}

// waitInFlight polls /metrics until it shows the line (the requests are inside core).
func waitInFlight(t testing.TB, ts *testServer, line string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		_, _, b := httpDo(t, "GET", ts.URL+"/metrics", "", nil)
		if strings.Contains(string(b), line) {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	_, _, b := httpDo(t, "GET", ts.URL+"/metrics", "", nil)
	t.Fatalf("metrics never showed %q:\n%s", line, grepLines(string(b), "ferry_"))
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestShutdownAnswersKeepAliveRequests: REST clients that keep sending on keep-alive
// connections through SIGTERM lose no request. Whatever a client wrote on a connection
// the server had accepted gets its 200; the server ends connections between requests,
// and once it stops accepting, a client only fails to connect.
func TestShutdownAnswersKeepAliveRequests(t *testing.T) {
	repo := t.TempDir()
	writeModel(t, repo, "identity_fp32", 1, onnxgen.Identity(onnxgen.Float, "identity_fp32"), "")
	const trials, clients = 4, 16
	for trial := range trials {
		ts := startServer(t, repo, func(c *serveConfig) { c.drain, c.drainGrace = 5*time.Second, time.Second })
		load := startKeepAliveLoad(ts.URL+"/v2/models/identity_fp32/infer", clients)
		load.waitReused(t, 50) // every client is well into its keep-alive connection
		ts.stop()              // as SIGTERM, while all of them keep sending
		n := load.finish()
		t.Logf("trial %d: %d answered, %d lost, %d not sent (no connection), %d reset before the server accepted them",
			trial, n.answered, n.lost, n.unsent, n.unaccepted)
		if n.lost > 0 {
			t.Errorf("trial %d: %d requests written to the server got no answer, e.g. %v", trial, n.lost, n.lostErr)
		}
		if n.answered == 0 {
			t.Errorf("trial %d: no request answered", trial)
		}
	}
}

// keepAliveLoad is clients that each send infer requests back to back over their own
// keep-alive connection until finish.
type keepAliveLoad struct {
	done   chan struct{}
	wg     sync.WaitGroup
	mu     sync.Mutex
	counts loadCounts
	reused []int // per client: requests answered on a reused connection
}

// loadCounts is what became of every request sent.
type loadCounts struct {
	answered   int   // 200 with the whole body
	unsent     int   // the client could not connect or its write failed: the server never had it
	unaccepted int   // written on a new connection, reset: still in the listener's backlog when it closed
	lost       int   // written on a connection the server had accepted, no 200
	lostErr    error // the first of them
}

func startKeepAliveLoad(url string, clients int) *keepAliveLoad {
	l := &keepAliveLoad{done: make(chan struct{}), reused: make([]int, clients)}
	const body = `{"inputs":[{"name":"INPUT0","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}`
	for i := range clients {
		l.wg.Go(func() {
			tr := &http.Transport{MaxIdleConnsPerHost: 1}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			for {
				select {
				case <-l.done:
					return
				default:
				}
				reused, err := sendTraced(c, url, body)
				l.count(i, reused, err)
			}
		})
	}
	return l
}

// sendTraced posts body once. It reports whether the request went out on a reused
// connection, and an error unless the answer was a 200; errNotSent when the request
// was never written.
func sendTraced(c *http.Client, url, body string) (reused bool, err error) {
	var gotReused, wrote atomic.Bool
	trace := &httptrace.ClientTrace{
		GotConn:      func(i httptrace.GotConnInfo) { gotReused.Store(i.Reused) },
		WroteRequest: func(i httptrace.WroteRequestInfo) { wrote.Store(i.Err == nil) },
	}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "POST", url, strings.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req) // a POST is not retried once written, as with most clients
	if err != nil {
		// WroteRequest means written to the Transport's buffer; flushing it may still fail.
		var op *net.OpError
		if !wrote.Load() || errors.As(err, &op) && op.Op == "write" {
			return gotReused.Load(), fmt.Errorf("%w: %w", errNotSent, err)
		}
		return gotReused.Load(), err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %d", resp.StatusCode)
	}
	return gotReused.Load(), err
}

var errNotSent = errors.New("not sent")

func (l *keepAliveLoad) count(client int, reused bool, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case err == nil:
		l.counts.answered++
		if reused {
			l.reused[client]++
		}
	case errors.Is(err, errNotSent):
		l.counts.unsent++
	case !reused && errors.Is(err, syscall.ECONNRESET):
		// The kernel completed the handshake, the server closed its listener before
		// accepting: the same as a refused connection, which no server can avoid.
		l.counts.unaccepted++
	default:
		l.counts.lost++
		if l.counts.lostErr == nil {
			l.counts.lostErr = fmt.Errorf("reused connection %t: %w", reused, err)
		}
	}
}

// waitReused waits until every client has had n answers on a reused connection.
func (l *keepAliveLoad) waitReused(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		l.mu.Lock()
		least := slices.Min(l.reused)
		l.mu.Unlock()
		if least >= n {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	l.finish()
	t.Fatalf("clients never reached %d answers on reused connections", n)
}

// finish stops the clients and counts.
func (l *keepAliveLoad) finish() loadCounts {
	close(l.done)
	l.wg.Wait()
	return l.counts
}
