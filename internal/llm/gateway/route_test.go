package gateway

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ferryml/ferry/internal/llm"
	gt "github.com/ferryml/ferry/internal/llm/gateway/gatewaytest"
)

func TestWeightedSplitFollowsWeights(t *testing.T) {
	g, a, b := pair(t, gt.Reply{}, gt.Reply{}, `
routes:
  - model: m
    targets: [{upstream: a, weight: 3}, {upstream: b, weight: 1}]
`, Options{})
	const n = 400
	for i := range n {
		if _, _, err := answer(g, chatReq("m", "hi", i%2 == 0)); err != nil {
			t.Fatal(err)
		}
	}
	// Binomial(400, 0.75): sd 8.7; 45 is past 5 sd, so a correct split fails ~never.
	if got := a.Count(); got < 300-45 || got > 300+45 || a.Count()+b.Count() != n {
		t.Fatalf("a got %d and b %d of %d requests, want a ≈ 300 (weights 3:1)", a.Count(), b.Count(), n)
	}
}

func TestFallbackBeforeFirstDelta(t *testing.T) {
	for _, tc := range []struct {
		name  string
		reply gt.Reply
		code  string
	}{
		{"429", gt.Reply{Status: http.StatusTooManyRequests}, "429"},
		{"500", gt.Reply{Status: http.StatusInternalServerError}, "500"},
		{"503", gt.Reply{Status: http.StatusServiceUnavailable}, "503"},
		{"timeout before headers", gt.Reply{HeaderDelay: 5 * time.Second}, "timeout"},
		{"timeout before the first chunk", gt.Reply{ChunkDelay: 5 * time.Second}, "timeout"},
		{"connection dropped before the first byte", gt.Reply{DropAfter: -1}, "conn_error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := gt.NewUpstream(t, gt.Always(tc.reply)), gt.NewUpstream(t, gt.Always(gt.Reply{Chunks: []string{"from", " b"}}))
			g := newGateway(t, "upstreams:"+upstreamYAML("a", "openai", a.URL, 4096, "timeout: 200ms")+
				upstreamYAML("b", "openai", b.URL, 4096, "")+aFallsBackToB, Options{})
			for _, stream := range []bool{true, false} {
				text, _, err := answer(g, chatReq("m", "hi", stream))
				if err != nil || text != "from b" {
					t.Fatalf("stream=%v: Generate = %q, %v; want \"from b\" from the fallback", stream, text, err)
				}
			}
			if a.Count() != 2 || b.Count() != 2 {
				t.Fatalf("a got %d, b %d requests; want 2 each", a.Count(), b.Count())
			}
			if got := testutil.ToFloat64(g.m.fallbacks); got != 2 {
				t.Fatalf("fallbacks_total = %v, want 2", got)
			}
			if got := testutil.ToFloat64(g.m.upstream.WithLabelValues("a", tc.code)); got != 2 {
				t.Fatalf("upstream_requests_total{a,%s} = %v, want 2", tc.code, got)
			}
		})
	}
}

// TestUpstreamRetryAfter: the upstream's 429 reaches the caller with its Retry-After,
// and the target cools for exactly that long.
func TestUpstreamRetryAfter(t *testing.T) {
	clk := newClock()
	a := gt.NewUpstream(t, gt.Always(gt.Reply{Status: http.StatusTooManyRequests, RetryAfter: 7}))
	g := newGateway(t, "upstreams:"+upstreamYAML("a", "openai", a.URL, 4096, ""), Options{Now: clk.Now})
	_, _, err := answer(g, chatReq("m", "hi", true))
	if e := wantCode(t, err, 429, "scripted"); e.RetryAfter != 7 {
		t.Fatalf("RetryAfter = %d, want the upstream's 7", e.RetryAfter)
	}
	clk.Add(2 * time.Second)
	_, _, err = answer(g, chatReq("m", "hi", true))
	if e := wantCode(t, err, 503, "service_unavailable"); e.RetryAfter != 5 || a.Count() != 1 {
		t.Fatalf("RetryAfter = %d after %d calls, want 5 left and no second call", e.RetryAfter, a.Count())
	}
	clk.Add(5 * time.Second)
	a.SetScript(gt.Always(gt.Reply{Status: http.StatusBadRequest}))
	_, _, err = answer(g, chatReq("m", "hi", true))
	wantCode(t, err, 400, "scripted") // readmitted; a 400 is the caller's, passed on as is
}

func TestNoRetryAfterTheFirstDelta(t *testing.T) {
	a := gt.NewUpstream(t, gt.Always(gt.Reply{Chunks: []string{"one", " two", " three"}, DropAfter: 1}))
	b := gt.NewUpstream(t, gt.Always(gt.Reply{}))
	g := newGateway(t, "upstreams:"+upstreamYAML("a", "openai", a.URL, 4096, "encoding: r50k_base")+
		upstreamYAML("b", "openai", b.URL, 4096, "")+aFallsBackToB, Options{})
	text, u, err := answer(g, chatReq("m", "hi", true))
	wantCode(t, err, http.StatusBadGateway, "upstream_error")
	if text != "one" || b.Count() != 0 {
		t.Fatalf("emitted %q and called the fallback %d times; want \"one\" and no fallback after the first delta", text, b.Count())
	}
	if u.CompletionTokens != 1 {
		t.Fatalf("usage of the cut stream = %+v, want the 1 token of \"one\" counted", u)
	}
}

func TestCooldownSkipsThenReadmits(t *testing.T) {
	clk := newClock()
	g, a, _ := pair(t, gt.Reply{Status: http.StatusInternalServerError}, gt.Reply{}, `
routes:
  - model: m
    targets: [{upstream: a, weight: 1000000}, {upstream: b, weight: 1}]
    allowed_fails: 2
    cooldown: 1m
`, Options{Now: clk.Now})
	for i := 0; a.Count() < 2; i++ {
		if _, _, err := answer(g, chatReq("m", "hi", true)); err != nil || i > 10 {
			t.Fatalf("request %d: %v (a called %d times)", i, err, a.Count())
		}
	}
	for range 20 {
		if _, _, err := answer(g, chatReq("m", "hi", true)); err != nil {
			t.Fatal(err)
		}
	}
	if a.Count() != 2 {
		t.Fatalf("a called %d times while cooling down, want 2 (skipped after allowed_fails)", a.Count())
	}
	if got := testutil.ToFloat64(g.m.cooldowns); got != 1 {
		t.Fatalf("cooldowns_total = %v, want 1", got)
	}
	a.SetScript(gt.Always(gt.Reply{Chunks: []string{"a is back"}}))
	clk.Add(61 * time.Second)
	if text, _, err := answer(g, chatReq("m", "hi", true)); err != nil || text != "a is back" {
		t.Fatalf("after the cooldown: %q, %v; want a readmitted", text, err)
	}
}

func TestAllTargetsCoolingIsUnavailable(t *testing.T) {
	clk := newClock()
	a := gt.NewUpstream(t, gt.Always(gt.Reply{Status: http.StatusInternalServerError}))
	g := newGateway(t, "upstreams:"+upstreamYAML("a", "vllm", a.URL, 4096, "")+`
routes:
  - {model: m, targets: [{upstream: a}], allowed_fails: 1, cooldown: 10s}
`, Options{Now: clk.Now})
	_, _, err := answer(g, chatReq("m", "hi", true))
	wantCode(t, err, 500, "scripted")
	_, _, err = answer(g, chatReq("m", "hi", true))
	if e := wantCode(t, err, 503, "service_unavailable"); e.RetryAfter != 10 {
		t.Fatalf("RetryAfter = %d, want 10 (the cooldown left)", e.RetryAfter)
	}
}

func TestContextWindowFallback(t *testing.T) {
	small, big := gt.NewUpstream(t, gt.Always(gt.Reply{})), gt.NewUpstream(t, gt.Always(gt.Reply{}))
	g := newGateway(t, "upstreams:"+upstreamYAML("small", "vllm", small.URL, 64, "")+upstreamYAML("big", "vllm", big.URL, 1024, "")+`
routes:
  - model: m
    targets: [{upstream: small, weight: 1000000}, {upstream: big, weight: 1}]
`, Options{})
	if _, _, err := answer(g, chatReq("m", "hi", true)); err != nil || small.Count() != 1 {
		t.Fatalf("a short prompt: %v, small called %d times; want small", err, small.Count())
	}
	long := strings.Repeat("word ", 200) // about 200 tokens: past small's 64
	for range 5 {
		if _, _, err := answer(g, chatReq("m", long, true)); err != nil {
			t.Fatal(err)
		}
	}
	if small.Count() != 1 || big.Count() != 5 {
		t.Fatalf("long prompts went to small %d and big %d times; want all 5 to big", small.Count()-1, big.Count())
	}
	if got := big.Requests()[0].MaxTokens; got <= 0 || got >= 1024-200 {
		t.Fatalf("max_tokens sent = %d, want the window's rest (0 < n < 824)", got)
	}
	_, _, err := answer(g, chatReq("m", strings.Repeat("word ", 2000), true))
	wantCode(t, err, 400, "context_length_exceeded")
	req := chatReq("m", long, true)
	req.Sampling.MaxTokens = 1000
	_, _, err = answer(g, req)
	wantCode(t, err, 400, "context_length_exceeded")
}

func TestLeastBusyFollowsScrapedGauges(t *testing.T) {
	g, a, b := pair(t, gt.Reply{}, gt.Reply{}, `
routes:
  - {model: m, strategy: least-busy, targets: [{upstream: a}, {upstream: b}]}
`, Options{})
	a.SetGauges(4, 3, 0.9)
	b.SetGauges(1, 0, 0.1)
	g.scrape(context.Background())
	for range 10 {
		if _, _, err := answer(g, chatReq("m", "hi", true)); err != nil {
			t.Fatal(err)
		}
	}
	if a.Count() != 0 || b.Count() != 10 {
		t.Fatalf("a busy, b idle: a got %d, b %d; want all 10 on b", a.Count(), b.Count())
	}
	a.SetGauges(0, 0, 0.5)
	b.SetGauges(2, 5, 0.5)
	g.scrape(context.Background())
	for range 10 {
		if _, _, err := answer(g, chatReq("m", "hi", true)); err != nil {
			t.Fatal(err)
		}
	}
	if a.Count() != 10 {
		t.Fatalf("after the gauges flipped a got %d, want 10", a.Count())
	}
}

func TestShadowGetsCopiesAndCannotFailTheCaller(t *testing.T) {
	a := gt.NewUpstream(t, gt.Always(gt.Reply{Chunks: []string{"primary"}}))
	for _, tc := range []struct {
		name  string
		reply gt.Reply
		code  string
	}{
		{"slow", gt.Reply{HeaderDelay: 300 * time.Millisecond, Chunks: []string{"shadow"}}, "200"},
		{"failing", gt.Reply{Status: http.StatusInternalServerError}, "500"},
		{"dropping", gt.Reply{DropAfter: -1}, "conn_error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := gt.NewUpstream(t, gt.Always(tc.reply))
			g := newGateway(t, "upstreams:"+upstreamYAML("a", "vllm", a.URL, 4096, "")+upstreamYAML("s", "vllm", s.URL, 4096, "")+`
routes:
  - {model: m, targets: [{upstream: a}, {upstream: s, shadow: true}]}
`, Options{})
			for range 3 {
				begin := time.Now()
				text, _, err := answer(g, chatReq("m", "hi", true))
				if err != nil || text != "primary" {
					t.Fatalf("Generate = %q, %v; want the primary's answer", text, err)
				}
				if d := time.Since(begin); d > 200*time.Millisecond {
					t.Fatalf("the caller waited %v: a shadow must not slow it", d)
				}
			}
			g.Close() // waits for the copies
			if s.Count() != 3 {
				t.Fatalf("shadow got %d copies, want 3", s.Count())
			}
			if got := testutil.ToFloat64(g.m.upstream.WithLabelValues("s", tc.code)); got != 3 {
				t.Fatalf("upstream_requests_total{s,%s} = %v, want 3", tc.code, got)
			}
		})
	}
}

func TestMaxConcurrencyFullUpstreamIsSkipped(t *testing.T) {
	a := gt.NewUpstream(t, gt.Always(gt.Reply{HeaderDelay: 300 * time.Millisecond}))
	b := gt.NewUpstream(t, gt.Always(gt.Reply{Chunks: []string{"b"}}))
	g := newGateway(t, "upstreams:"+upstreamYAML("a", "vllm", a.URL, 4096, "max_concurrency: 1")+upstreamYAML("b", "vllm", b.URL, 4096, "")+`
routes:
  - {model: m, targets: [{upstream: a, weight: 1000000}], fallbacks: [b]}
`, Options{})
	done := make(chan error)
	go func() { _, _, err := answer(g, chatReq("m", "hi", true)); done <- err }()
	for a.Count() == 0 {
		time.Sleep(time.Millisecond)
	}
	if text, _, err := answer(g, chatReq("m", "hi", true)); err != nil || text != "b" {
		t.Fatalf("with a full: %q, %v; want b", text, err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestNativeUpstream(t *testing.T) {
	n := &fakeNative{}
	g := newGateway(t, `
upstreams:
  - {name: local, kind: native, context_window: 256, models: {tiny: tiny-gpt2}}
`, Options{Native: n})
	req := chatReq("tiny", "hi", true)
	text, u, err := answer(g, req)
	if err != nil || text != "native says hi" || u.CompletionTokens != 3 {
		t.Fatalf("Generate = %q, %+v, %v", text, u, err)
	}
	if n.got.Model != "tiny-gpt2" || n.got.Sampling.MaxTokens <= 0 {
		t.Fatalf("native got model %q max_tokens %d; want the upstream id and the window's rest", n.got.Model, n.got.Sampling.MaxTokens)
	}
	models, _ := g.Models(context.Background())
	if len(models) != 1 || models[0].ID != "tiny" || models[0].OwnedBy != "ferry" || models[0].ContextLength != 256 {
		t.Fatalf("Models = %+v", models)
	}
}

// fakeNative is an in-process backend answering three deltas.
type fakeNative struct{ got llm.Request }

func (f *fakeNative) Models(context.Context) ([]llm.ModelInfo, error) { return nil, nil }

func (f *fakeNative) Generate(ctx context.Context, req *llm.Request, emit func(llm.Delta) error) (llm.Usage, error) {
	f.got = *req
	for i, s := range []string{"native", " says", " hi"} {
		d := llm.Delta{Text: s}
		if i == 2 {
			d.FinishReason = "stop"
		}
		if err := emit(d); err != nil {
			return llm.Usage{}, err
		}
	}
	return llm.Usage{PromptTokens: 4, CompletionTokens: 3}, nil
}

func (f *fakeNative) Embed(context.Context, *llm.EmbedRequest) (*llm.EmbedResponse, error) {
	return &llm.EmbedResponse{Vectors: [][]float32{{1}}}, nil
}

func TestRetriesCapTheAttempts(t *testing.T) {
	fail := gt.Always(gt.Reply{Status: http.StatusServiceUnavailable})
	a, b, c := gt.NewUpstream(t, fail), gt.NewUpstream(t, fail), gt.NewUpstream(t, fail)
	g := newGateway(t, "upstreams:"+upstreamYAML("a", "vllm", a.URL, 4096, "")+upstreamYAML("b", "vllm", b.URL, 4096, "")+
		upstreamYAML("c", "vllm", c.URL, 4096, "")+`
routes:
  - {model: m, targets: [{upstream: a}, {upstream: b}, {upstream: c}], retries: 1}
`, Options{})
	_, _, err := answer(g, chatReq("m", "hi", true))
	wantCode(t, err, 503, "scripted")
	if n := a.Count() + b.Count() + c.Count(); n != 2 {
		t.Fatalf("%d attempts, want 2 (the first and 1 retry)", n)
	}
}

// pair starts upstreams a and b (vllm, window 4096) answering ra and rb, and a
// gateway over them with routes.
func pair(t *testing.T, ra, rb gt.Reply, routes string, opts Options) (*Gateway, *gt.Upstream, *gt.Upstream) {
	a, b := gt.NewUpstream(t, gt.Always(ra)), gt.NewUpstream(t, gt.Always(rb))
	return newGateway(t, "upstreams:"+upstreamYAML("a", "vllm", a.URL, 4096, "")+upstreamYAML("b", "vllm", b.URL, 4096, "")+routes, opts), a, b
}

// aFallsBackToB routes m to upstream a alone, then to b's own alias.
const aFallsBackToB = `
routes:
  - model: m
    targets: [{upstream: a}]
    fallbacks: [b]
`

func TestRunScrapesUntilCancelled(t *testing.T) {
	g, a, b := pair(t, gt.Reply{}, gt.Reply{}, `
scrape_interval: 20ms
routes:
  - {model: m, strategy: least-busy, targets: [{upstream: a}, {upstream: b}]}
`, Options{})
	a.SetGauges(9, 9, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- g.Run(ctx) }()
	for g.ups["a"].load.Load() == nil || g.ups["b"].load.Load() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	for range 5 {
		if _, _, err := answer(g, chatReq("m", "hi", true)); err != nil {
			t.Fatal(err)
		}
	}
	if a.Count() != 0 || b.Count() != 5 {
		t.Fatalf("a (18 queued) got %d, b (idle) %d; want all 5 on b", a.Count(), b.Count())
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v, want nil when ctx ends", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after ctx ended")
	}
}
