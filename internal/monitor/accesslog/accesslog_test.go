package accesslog

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferryml/ferry/internal/monitor/reqlog"
)

// blockingWriter blocks every Write until release is closed: a disk that stalls.
type blockingWriter struct {
	release chan struct{}
	mu      sync.Mutex
	b       bytes.Buffer
}

func (w *blockingWriter) Write(p []byte) (int, error) {
	<-w.release
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// A stalled writer delays no request: Add returns at once, entries past the buffer are
// dropped and counted, and what was buffered is written once the writer recovers.
func TestStalledWriterDropsAndCounts(t *testing.T) {
	w := &blockingWriter{release: make(chan struct{})}
	l := New(w, 10)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	start := time.Now()
	for i := range 100_000 {
		l.Add(Entry{Time: time.Now(), Protocol: "http", Status: 200, RequestID: "r", Duration: time.Duration(i)})
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("100000 Adds took %v with the writer stalled", took)
	}
	// The writer's 64 KiB buffer takes a few hundred lines before it blocks.
	if d := l.Dropped(); d < 99_000 {
		t.Errorf("Dropped = %d, want most of the 100000 (a 10-entry buffer, a stalled writer)", d)
	}
	close(w.release)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := uint64(strings.Count(w.b.String(), "\n")); got != l.Written() || got+l.Dropped() != 100_000 {
		t.Errorf("%d lines written, Written %d, Dropped %d: want written+dropped = 100000", got, l.Written(), l.Dropped())
	}
}

// The HTTP layer writes one escaped line per request, with what the handler put in the
// request's Fields; a nil log adds no layer.
func TestHTTPLayerLinePerRequest(t *testing.T) {
	var out bytes.Buffer
	l := New(&out, 0)
	h := l.HTTP(func(*http.Request) string { return "POST /v2/models/{model}/infer" })(reqlog.TenantHTTP(func(context.Context) string { return "acme" })(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			reqlog.FromContext(r.Context()).Request("id\r\nforged", "m\x1b", "")
			reqlog.FromContext(r.Context()).Answered("3")
			w.WriteHeader(http.StatusTeapot)
			_, _ = w.Write(append(b, b...))
		})))
	for range 3 {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/v2/models/m/infer", strings.NewReader("12345")))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.Run(ctx); err != nil { // drains the three entries, then returns
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3:\n%s", len(lines), out.String())
	}
	var e map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &e); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"msg": "access", "protocol": "http", "method": "POST", "route": "POST /v2/models/{model}/infer", "status": 418.0,
		"bytes_in": 5.0, "bytes_out": 10.0, "model": "m\x1b", "version": "3", "request_id": "id\r\nforged", "trace_id": "", "tenant": "acme"}
	for k, v := range want {
		if e[k] != v {
			t.Errorf("%s = %#v, want %#v", k, e[k], v)
		}
	}
	var nilLog *Log
	next := http.NotFoundHandler()
	if got := nilLog.HTTP(nil)(next); got == nil || nilLog.GRPCServerOptions() != nil {
		t.Error("a nil log added layers")
	}
}
