package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
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
	writeModel(t, repo, "slow", 1, slowModel(64, 400), "")
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
func waitInFlight(t *testing.T, ts *testServer, line string) {
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
