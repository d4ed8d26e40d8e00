package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ferryml/ferry/internal/inference"
)

// withLoadFiles lets load requests carry configs and files (--allow-load-files).
func withLoadFiles(c *serveConfig) { c.hardening.allowLoadFiles = true }

// TestHardeningRefusals: what a hostile client sends to a server with its default
// hardening, over REST and gRPC; each is refused naming the problem, and the server
// keeps serving.
func TestHardeningRefusals(t *testing.T) {
	ts := startServer(t, exampleRepo(t), func(c *serveConfig) {
		c.mode = "explicit"
		c.loadModels = []string{"simple"}
		c.hardening.bodyBudget = 64 << 10
		c.hardening.bodyGrace, c.hardening.bodyMinRate = 300*time.Millisecond, 1<<20
		c.hardening.maxHeaderKiB = 8
	})
	// Headers over --max-header-kib: net/http answers 431 and closes.
	code, _, _ := restCall(t, ts, "GET", "/v2/health/live", "", "X-Pad", strings.Repeat("p", 16<<10))
	if code != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("16 KiB of headers with --max-header-kib 8: %d, want 431", code)
	}
	pyConfig := restJSONString(`{"name":"evil","backend":"python","input":[{"name":"x","data_type":"TYPE_FP32","dims":[1]}],"output":[{"name":"y","data_type":"TYPE_FP32","dims":[1]}]}`)
	code, _, b := restCall(t, ts, "POST", "/v2/repository/models/evil/load",
		`{"parameters":{"config":`+pyConfig+`,"file:1/model.py":"aW1wb3J0IG9zCg=="}}`)
	restWantError(t, "REST load with an uploaded model.py", code, b, 400, "--allow-load-files")
	_, err := ts.GRPC.RepositoryModelLoad(context.Background(), &inference.RepositoryModelLoadRequest{ModelName: "evil",
		Parameters: map[string]*inference.ModelRepositoryParameter{"config": {ParameterChoice: &inference.ModelRepositoryParameter_StringParam{StringParam: `{"backend":"python"}`}}}})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "--allow-load-files") {
		t.Errorf("gRPC load with a config: %v, want INVALID_ARGUMENT naming --allow-load-files", err)
	}

	// A ".." in a V2 path: 400, not a redirect to another model's load.
	req, _ := http.NewRequest("POST", ts.URL+"/v2/repository/models/../simple/load", nil)
	req.URL.Path = "/v2/repository/models/../simple/load" // as sent, uncleaned
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	restWantError(t, "load with a .. segment", resp.StatusCode, b, 400, `".." segment`)

	// A body over the in-flight budget: 503 with Retry-After, before it is read.
	big := `{"inputs":[{"name":"INPUT0","shape":[1,16],"datatype":"INT32","data":[` + strings.Repeat("0,", 40000) + `0]}]}`
	code, h, b := restCall(t, ts, "POST", "/v2/models/simple/infer", big)
	restWantError(t, "body over the in-flight budget", code, b, 503, "in-flight body budget")
	if h.Get("Retry-After") == "" {
		t.Error("503 for the body budget has no Retry-After")
	}

	// Deeply nested data is refused at once (the decoder walks it without recursion
	// and no deeper than the shape).
	deep := `{"inputs":[{"name":"INPUT0","shape":[1,16],"datatype":"INT32","data":` + strings.Repeat("[", 30000) + strings.Repeat("]", 30000) + `}]}`
	start := time.Now()
	code, _, b = restCall(t, ts, "POST", "/v2/models/simple/infer", deep)
	restWantError(t, "data nested 30000 deep", code, b, 400)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("deep nesting took %s to refuse", d)
	}

	// A body trickled slower than the minimum rate is cut off.
	conn, err := net.Dial("tcp", ts.httpLn.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v2/models/simple/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 50000\r\n\r\n{")
	go func() {
		for i := 0; i < 30; i++ {
			if _, err := conn.Write([]byte(" ")); err != nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	sresp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("slow body: no answer: %v", err)
	}
	b, _ = io.ReadAll(sresp.Body)
	restWantError(t, "slow body", sresp.StatusCode, b, 400, "slower than the minimum")

	restStillServes(t, ts)
}

// TestFerryTimeoutHeader: an HTTP request's Ferry-Timeout becomes its deadline: queued
// behind a long request it is answered 504 naming the deadline when that passes, not
// when the long request ends; the drop is counted as "deadline"; a bad value is 400.
func TestFerryTimeoutHeader(t *testing.T) {
	ts := schedServer(t, map[string]string{"dl": schedConfig("dl", 1, 1, "")})
	ctx := t.Context()
	busy := schedGo(ctx, ts, "grpc", "dl", schedReq{name: "busy", cost: schedHuge, fill: 1})
	schedWait(t, ts, "the first request running", func(m schedMetrics) bool { return m.inFlight("dl") == 1 })

	r := schedReq{name: "queued", cost: schedFast, fill: 2}
	head := fmt.Sprintf(`{"inputs":[{"name":"INPUT0","datatype":"FP32","shape":[%d,%d,%d],"parameters":{"binary_data_size":%d}}]}`,
		r.shape()[0], r.shape()[1], r.shape()[2], len(r.raw()))
	send := func(timeout string) (int, []byte, time.Duration) {
		req, _ := http.NewRequestWithContext(ctx, "POST", ts.URL+"/v2/models/dl/infer", io.MultiReader(strings.NewReader(head), bytes.NewReader(r.raw())))
		req.Header.Set("Content-Type", "application/octet-stream")
		req.Header.Set("Inference-Header-Content-Length", strconv.Itoa(len(head)))
		req.Header.Set("Ferry-Timeout", timeout)
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b, time.Since(start)
	}
	code, b, took := send("150ms")
	schedStillRunning(t, busy, "the queued request's deadline")
	restWantError(t, "request past its Ferry-Timeout", code, b, http.StatusGatewayTimeout, "deadline", "Ferry-Timeout")
	if took > 2*time.Second {
		t.Errorf("answered after %s for a 150ms deadline", took)
	}
	code, b, _ = send("soon")
	restWantError(t, "Ferry-Timeout soon", code, b, 400, "Ferry-Timeout", "positive duration")
	busy.wantOK(t)
	if got := schedScrape(t, ts).dropped("dl", "deadline"); got != 1 {
		t.Errorf(`ferry_requests_dropped_total{reason="deadline"} = %d, want 1`, got)
	}
}

// TestUploadedPythonNeedsItsFlag: with --allow-load-files alone, a load request whose
// config names the python backend and uploads a model.py is refused before the code
// runs; with --allow-python-uploads too, it runs (the proof file appears).
func TestUploadedPythonNeedsItsFlag(t *testing.T) {
	proof := filepath.Join(t.TempDir(), "ran")
	src := base64.StdEncoding.EncodeToString([]byte("open(" + strconv.Quote(proof) + ", 'w').close()\n"))
	cfg := restJSONString(`{"name":"evil","backend":"python","input":[{"name":"x","data_type":"TYPE_FP32","dims":[1]}],"output":[{"name":"y","data_type":"TYPE_FP32","dims":[1]}]}`)
	body := `{"parameters":{"config":` + cfg + `,"file:1/model.py":"` + src + `"}}`
	for _, python := range []bool{false, true} {
		ts := startServer(t, exampleRepo(t), withLoadFiles, func(c *serveConfig) {
			c.mode = "explicit"
			c.loadModels = []string{"simple"}
			c.hardening.allowPythonUploads = python
		})
		code, _, b := restCall(t, ts, "POST", "/v2/repository/models/evil/load", body)
		_, err := os.Stat(proof)
		if !python {
			restWantError(t, "uploaded model.py without --allow-python-uploads", code, b, 400, "--allow-python-uploads")
			if err == nil {
				t.Fatal("the uploaded model.py ran")
			}
			restStillServes(t, ts)
			continue
		}
		if err != nil {
			t.Errorf("with --allow-python-uploads the upload did not run (%d %s): %v", code, b, err)
		}
	}
}
