package llmbench

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// script is what the scripted server does with its n-th request (counting from 0).
type script struct {
	ttft, itl time.Duration // before the first content chunk; between content chunks
	status    int           // non-200: answer this status instead of a stream
	errEvent  bool          // stream an error event instead of content
	noUsage   bool          // leave out the usage chunk
}

// scriptedServer answers /v1/chat/completions and /v1/completions with SSE streams of
// max_tokens content chunks of one token (" hello") each, timed by plan.
type scriptedServer struct {
	t    *testing.T
	plan func(n int) script
	mu   sync.Mutex
	n    int              // requests so far; guarded by mu
	reqs []map[string]any // request bodies; guarded by mu
	auth string           // the last Authorization header; guarded by mu
	// seen, if set, is called with the request count after each request arrives.
	seen func(n int)
}

func (s *scriptedServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body map[string]any
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	n := s.n
	s.n++
	s.reqs = append(s.reqs, body)
	s.auth = r.Header.Get("Authorization")
	s.mu.Unlock()
	if s.seen != nil {
		s.seen(n + 1)
	}
	sc := s.plan(n)
	if sc.status != 0 {
		http.Error(w, `{"error":{"message":"scripted failure"}}`, sc.status)
		return
	}
	chat := r.URL.Path == "/v1/chat/completions"
	w.Header().Set("Content-Type", "text/event-stream")
	fl := w.(http.Flusher)
	event := func(v any) {
		b, _ := json.Marshal(v)
		fmt.Fprintf(w, "data: %s\n\n", b)
		fl.Flush()
	}
	piece := func(text string) map[string]any {
		if chat {
			return map[string]any{"choices": []any{map[string]any{"index": 0, "delta": map[string]any{"content": text}}}}
		}
		return map[string]any{"choices": []any{map[string]any{"index": 0, "text": text}}}
	}
	if chat { // a role-only chunk at once: not a token, TTFT must not count it
		event(map[string]any{"choices": []any{map[string]any{"index": 0, "delta": map[string]any{"role": "assistant"}}}})
	}
	fmt.Fprint(w, ": keep-alive\n\n")
	time.Sleep(sc.ttft)
	if sc.errEvent {
		event(map[string]any{"error": map[string]any{"message": "scripted stream error"}})
		return
	}
	tokens := int(body["max_tokens"].(float64))
	for i := range tokens {
		if i > 0 {
			time.Sleep(sc.itl)
		}
		event(piece(" hello"))
	}
	event(piece("")) // the finish chunk: no text
	if !sc.noUsage {
		event(map[string]any{"choices": []any{}, "usage": map[string]any{"prompt_tokens": 9, "completion_tokens": tokens}})
	}
	fmt.Fprint(w, "data: [DONE]\n\n")
}

func serve(t *testing.T, plan func(n int) script) (*scriptedServer, string) {
	s := &scriptedServer{t: t, plan: plan}
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return s, ts.URL
}

// within checks a latency in ms: at least want (the script sleeps that long), at most
// want+slack (scheduling noise; more under the race detector).
func within(t *testing.T, what string, got, want float64) {
	t.Helper()
	if got < want-1 || got > want+slack {
		t.Errorf("%s = %.1f ms, want %.0f ms (+%.0f)", what, got, want, slack)
	}
}

// The numbers come out as the script dictates: TTFT 100 ms, then 5 tokens 50 ms
// apart. Medians are checked against the script, since a loaded machine stalls now
// and then; means are checked against their definitions.
func TestRunMeasuresTheScript(t *testing.T) {
	srv, url := serve(t, func(int) script { return script{ttft: 100 * time.Millisecond, itl: 50 * time.Millisecond} })
	cfg := Config{BaseURL: url + "/v1", Model: "tinygpt", APIKey: "k1", NumPrompts: 6, Concurrency: 3,
		InputLen: 16, OutputLen: 5, PrefixLen: 4, Seed: 1, Warmup: true, Percentiles: []float64{50, 99.9}}
	r, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if r.Completed != 6 || r.Failed != 0 || r.TotalOutputTokens != 30 || r.TotalInputTokens != 6*20 {
		t.Fatalf("completed %d, failed %d, output tokens %d, input tokens %d; want 6, 0, 30, 120 (errors %q)",
			r.Completed, r.Failed, r.TotalOutputTokens, r.TotalInputTokens, r.Errors)
	}
	within(t, "median TTFT", r.TTFT.Median, 100)
	within(t, "median ITL", r.ITL.Median, 50)
	within(t, "median TPOT", r.TPOT.Median, 50)
	within(t, "median E2EL", r.E2EL.Median, 300)
	var tpots, itls []float64
	for i := range r.TTFTs {
		tpots = append(tpots, (r.Latencies[i]-r.TTFTs[i])/4)
		if len(r.ITLs[i]) != 4 {
			t.Errorf("request %d has %d inter-token gaps, want 4", i, len(r.ITLs[i]))
		}
		itls = append(itls, r.ITLs[i]...)
	}
	if want := summarize(tpots, cfg.Percentiles); math.Abs(r.TPOT.Mean-want.Mean) > 1e-9 {
		t.Errorf("mean TPOT %g, want mean (E2EL-TTFT)/(5-1) = %g", r.TPOT.Mean, want.Mean)
	}
	if want := summarize(itls, cfg.Percentiles); math.Abs(r.ITL.Mean-want.Mean) > 1e-9 {
		t.Errorf("mean ITL %g, want the mean of all gaps, %g", r.ITL.Mean, want.Mean)
	}
	if len(r.TTFT.Percentiles) != 2 || r.TTFT.Percentiles[1].P != 99.9 {
		t.Errorf("TTFT percentiles %v, want P50 and P99.9", r.TTFT.Percentiles)
	}
	// Two waves of three (concurrency 3) of at least 300 ms each.
	if r.Duration < 0.6 {
		t.Errorf("duration %.3f s, want at least 0.6 s", r.Duration)
	}
	if want := 6 / r.Duration; math.Abs(r.RequestThroughput-want) > 1e-9 {
		t.Errorf("request throughput %g, want %g", r.RequestThroughput, want)
	}
	if want := (120 + 30) / r.Duration; math.Abs(r.TotalTokenThroughput-want) > 1e-9 {
		t.Errorf("total token throughput %g, want %g", r.TotalTokenThroughput, want)
	}
	if r.RequestGoodput != nil {
		t.Errorf("goodput %v without SLOs, want nil", *r.RequestGoodput)
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if len(srv.reqs) != 7 { // the warm-up, then six
		t.Fatalf("server saw %d requests, want 7", len(srv.reqs))
	}
	b := srv.reqs[1]
	opts, _ := b["stream_options"].(map[string]any)
	if b["stream"] != true || opts["include_usage"] != true || b["temperature"] != 0.0 || b["ignore_eos"] != true ||
		b["max_tokens"] != 5.0 || b["model"] != "tinygpt" || b["messages"] == nil {
		t.Errorf("request body %v", b)
	}
	if srv.auth != "Bearer k1" {
		t.Errorf("Authorization %q, want Bearer k1", srv.auth)
	}
}

// Failures are counted, not fatal; goodput counts only requests within every SLO; a
// stream without usage is counted with the tokenizer.
func TestRunCountsFailuresAndGoodput(t *testing.T) {
	_, url := serve(t, func(n int) script {
		switch {
		case n == 3:
			return script{status: http.StatusServiceUnavailable}
		case n == 7:
			return script{errEvent: true}
		case n%2 == 1: // 1, 5: slow first token
			return script{ttft: 250 * time.Millisecond, itl: time.Millisecond, noUsage: true}
		}
		return script{ttft: 20 * time.Millisecond, itl: time.Millisecond, noUsage: true} // 0, 2, 4, 6
	})
	cfg := Config{BaseURL: url, Model: "m", Endpoint: "completions", NumPrompts: 8, Concurrency: 2,
		InputLen: 8, OutputLen: 3, Goodput: map[string]time.Duration{"ttft": 150 * time.Millisecond, "e2el": 10 * time.Second}}
	r, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if r.Completed != 6 || r.Failed != 2 {
		t.Fatalf("completed %d, failed %d, want 6, 2 (errors %q)", r.Completed, r.Failed, r.Errors)
	}
	var errs []string
	for _, e := range r.Errors {
		if e != "" {
			errs = append(errs, e)
		}
	}
	if len(errs) != 2 || !strings.Contains(strings.Join(errs, "|"), "503") || !strings.Contains(strings.Join(errs, "|"), "scripted stream error") {
		t.Errorf("errors %q, want a 503 and the stream's error", errs)
	}
	if r.TotalOutputTokens != 18 { // " hello" ×3 is 3 r50k tokens, counted client-side
		t.Errorf("output tokens %d, want 18", r.TotalOutputTokens)
	}
	if r.RequestGoodput == nil || math.Abs(*r.RequestGoodput*r.Duration-4) > 1e-9 {
		t.Errorf("goodput %v over %.3f s, want 4 good requests", r.RequestGoodput, r.Duration)
	}
}

func TestRunRequestRate(t *testing.T) {
	_, url := serve(t, func(int) script { return script{} })
	cfg := Config{BaseURL: url, Model: "m", NumPrompts: 10, RequestRate: 25, InputLen: 4, OutputLen: 1, Seed: 7}
	r, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	// The last request is sent at 10/25 = 0.4 s. (The upper bound leaves room for a
	// loaded machine; it catches gaps in the wrong unit, not a few ms.)
	if r.Completed != 10 || r.Duration < 0.4 || r.Duration > 2.4 {
		t.Errorf("completed %d in %.3f s, want 10 in just over 0.4 s", r.Completed, r.Duration)
	}
	if r.TPOT.Mean != 0 || len(r.ITLs[0]) != 0 {
		t.Errorf("one-token answers: TPOT %v, ITLs %v; want none", r.TPOT.Mean, r.ITLs[0])
	}
}

func TestRunFailsOnlyWhenItMust(t *testing.T) {
	ts := httptest.NewServer(http.NotFoundHandler())
	url := ts.URL
	ts.Close() // nothing listens there now
	cfg := Config{BaseURL: url, Model: "m", NumPrompts: 3, InputLen: 4, OutputLen: 2, Warmup: true, Timeout: 5 * time.Second}
	if _, err := Run(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "warm-up request") {
		t.Errorf("unreachable server with warm-up: err = %v, want a warm-up error", err)
	}
	cfg.Warmup = false
	r, err := Run(context.Background(), cfg)
	if err != nil || r.Failed != 3 || r.Completed != 0 {
		t.Errorf("unreachable server without warm-up: %+v, %v; want 3 failed requests and no error", r, err)
	}
	if _, err := Run(context.Background(), Config{}); err == nil {
		t.Error("an empty config ran")
	}
}

func TestRunCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv, url := serve(t, func(int) script { return script{ttft: 5 * time.Millisecond} })
	srv.seen = func(n int) {
		if n == 5 {
			cancel()
		}
	}
	// At 50 req/s the 100 requests would take two seconds.
	r, err := Run(ctx, Config{BaseURL: url, Model: "m", NumPrompts: 100, RequestRate: 50, InputLen: 4, OutputLen: 2})
	if err != context.Canceled {
		t.Fatalf("err = %v, want %v", err, context.Canceled)
	}
	if r == nil || r.NumPrompts < 5 || r.NumPrompts >= 100 || r.Completed+r.Failed != r.NumPrompts {
		t.Errorf("partial result of %v requests, want the 5 or so sent before the cancel", r)
	}
}
