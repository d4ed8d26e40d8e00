package gateway

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ferryml/ferry/internal/llm"
	gt "github.com/ferryml/ferry/internal/llm/gateway/gatewaytest"
	"github.com/ferryml/ferry/internal/llm/tokenizer"
)

// pricedYAML is one upstream at 1000 per million tokens (0.001 a token) plus keys.
func pricedYAML(url, keys string) string {
	return "upstreams:" + upstreamYAML("a", "vllm", url, 4096, "prices: {input: 1000, cached_input: 500, output: 1000}") + keys
}

// TestBudgetHoldsUnderParallelClients: 64 clients, two keys of one team, spend the
// team's budget together. Each answer costs exactly its reservation, so the budget
// admits floor(budget / worst) requests and not one more.
func TestBudgetHoldsUnderParallelClients(t *testing.T) {
	const maxTokens = 10
	g0 := newGateway(t, pricedYAML("http://127.0.0.1:1", ""), Options{})
	prompt := promptTokens(g0.ups["a"], chatReq("m", "how much?", true))
	worst := float64(prompt+maxTokens) * 0.001
	budget := 40.5 * worst
	up := gt.NewUpstream(t, gt.Always(gt.Reply{ChunkDelay: time.Millisecond, Chunks: []string{"x"},
		Usage: &llm.Usage{PromptTokens: prompt, CompletionTokens: maxTokens}}))
	g := newGateway(t, pricedYAML(up.URL, fmt.Sprintf(`
teams:
  - {name: t, budget: %g, budget_duration: 30d}
keys:
  - {name: k1, key: sk-1, team: t, budget: 100}
  - {name: k2, key: sk-2, team: t}
`, budget)), Options{})
	var admitted, refused atomic.Int64
	var wg sync.WaitGroup
	for c := range 64 {
		wg.Go(func() {
			for {
				req := chatReq("m", "how much?", c%2 == 0)
				req.Key = []string{"sk-1", "sk-2"}[c%2]
				req.Sampling.MaxTokens = maxTokens
				_, _, err := answer(g, req)
				if e := llm.AsError(err); e != nil && e.Code == "insufficient_quota" {
					refused.Add(1)
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				admitted.Add(1)
			}
		})
	}
	wg.Wait()
	var team Spend
	for _, s := range g.Spend() {
		if s.Kind == "team" {
			team = s
		}
	}
	if float64(admitted.Load())*worst > budget+1e-9 || team.Spent > budget+1e-9 {
		t.Fatalf("admitted %d × worst %.4f = %.4f, spent %.4f; budget %.4f must hold both", admitted.Load(), worst,
			float64(admitted.Load())*worst, team.Spent, budget)
	}
	if admitted.Load() != 40 || int(up.Count()) != 40 || refused.Load() != 64 {
		t.Fatalf("admitted %d, upstream saw %d, refused %d; want 40, 40, 64", admitted.Load(), up.Count(), refused.Load())
	}
	if team.Reserved != 0 || team.ByModel["a/a-model"] != team.Spent || team.PeriodEnd.Sub(team.PeriodStart) != 30*24*time.Hour {
		t.Fatalf("team spend = %+v; want nothing reserved, all spent on a/a-model, a 30-day period", team)
	}
	if got := testutil.ToFloat64(g.m.rejected.WithLabelValues("budget")); got != 64 {
		t.Fatalf("rejected_total{budget} = %v, want 64", got)
	}
}

func TestBudgetSettlesToActualAndResetsWithThePeriod(t *testing.T) {
	clk := newClock()
	up := gt.NewUpstream(t, gt.Always(gt.Reply{Usage: &llm.Usage{PromptTokens: 100, CachedTokens: 60, CompletionTokens: 10}}))
	g := newGateway(t, pricedYAML(up.URL, `
keys:
  - {name: k, key: sk-k, budget: 0.2, budget_duration: 1h}
`), Options{Now: clk.Now})
	req := chatReq("m", "hi", true)
	req.Key, req.Sampling.MaxTokens = "sk-k", 50
	for range 2 {
		if _, _, err := answer(g, req); err != nil {
			t.Fatal(err)
		}
	}
	// 40 input, 60 cached at half price, 10 output: 0.04 + 0.03 + 0.01 = 0.08 each.
	s := g.Spend()[0]
	if math.Abs(s.Spent-0.16) > 1e-9 || s.Requests != 2 || s.PromptTokens != 200 || s.CompletionTokens != 20 {
		t.Fatalf("spend = %+v, want 0.16 spent over 2 requests, 200+20 tokens", s)
	}
	_, _, err := answer(g, req) // worst case 0.05+: does not fit the 0.04 left
	wantCode(t, err, 429, "insufficient_quota")
	clk.Add(time.Hour)
	if _, _, err := answer(g, req); err != nil {
		t.Fatalf("after the period ended: %v", err)
	}
	if s := g.Spend()[0]; math.Abs(s.Spent-0.08) > 1e-9 || !s.PeriodStart.Equal(clk.Now()) {
		t.Fatalf("new period spend = %+v, want 0.08 from %v", s, clk.Now())
	}
}

func TestKeysAndAllowLists(t *testing.T) {
	up := gt.NewUpstream(t, gt.Always(gt.Reply{}))
	g := newGateway(t, "upstreams:"+upstreamYAML("a", "vllm", up.URL, 4096, "")+`
teams:
  - {name: t, models: [m, a]}
keys:
  - {name: k, key: sk-good, team: t, models: [m]}
  - {name: env, key_env: FERRY_TEST_KEY}
`, Options{Getenv: func(k string) string { return map[string]string{"FERRY_TEST_KEY": "sk-env"}[k] }})
	for _, tc := range []struct {
		name, key, model string
		status           int
		code             string
	}{
		{"a good key on an allowed model", "sk-good", "m", 0, ""},
		{"a key from the environment", "sk-env", "a", 0, ""},
		{"an unknown key", "sk-bad", "m", 401, "invalid_api_key"},
		{"no key", "", "m", 401, "invalid_api_key"},
		{"a prefix of a key", "sk-goo", "m", 401, "invalid_api_key"},
		{"a model the key may not use", "sk-good", "a", 404, "model_not_found"},
		{"a model nobody serves", "sk-env", "nope", 404, "model_not_found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := chatReq(tc.model, "hi", true)
			req.Key = tc.key
			_, _, err := answer(g, req)
			if tc.status == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantCode(t, err, tc.status, tc.code)
		})
	}
}

func TestOpenGatewayWithoutKeys(t *testing.T) {
	up := gt.NewUpstream(t, gt.Always(gt.Reply{}))
	g := newGateway(t, "upstreams:"+upstreamYAML("a", "vllm", up.URL, 4096, ""), Options{})
	req := chatReq("a", "hi", true)
	req.Key = "anything"
	if _, _, err := answer(g, req); err != nil {
		t.Fatal(err)
	}
}

func TestRPMLimit(t *testing.T) {
	clk := newClock()
	up := gt.NewUpstream(t, gt.Always(gt.Reply{}))
	g := newGateway(t, pricedYAML(up.URL, `
keys:
  - {name: k, key: sk-k, rpm: 3}
`), Options{Now: clk.Now})
	req := chatReq("m", "hi", true)
	req.Key = "sk-k"
	for range 3 {
		if _, _, err := answer(g, req); err != nil {
			t.Fatal(err)
		}
	}
	_, _, err := answer(g, req)
	if e := wantCode(t, err, 429, "rate_limit_exceeded"); e.RetryAfter < 1 || e.RetryAfter > 60 {
		t.Fatalf("RetryAfter = %d, want 1..60", e.RetryAfter)
	}
	clk.Add(time.Minute)
	if _, _, err := answer(g, req); err != nil {
		t.Fatalf("next minute: %v", err)
	}
}

func TestTPMReservesThenSettles(t *testing.T) {
	clk := newClock()
	up := gt.NewUpstream(t, gt.Always(gt.Reply{Usage: &llm.Usage{PromptTokens: 10, CompletionTokens: 5}}))
	g := newGateway(t, pricedYAML(up.URL, `
keys:
  - {name: k, key: sk-k, tpm: 190}
`), Options{Now: clk.Now})
	req := chatReq("m", "hi", true)
	req.Key, req.Sampling.MaxTokens = "sk-k", 100
	// Worst case 108 tokens (8 prompt + 100): one at a time fits; each settles to 15.
	for range 5 {
		if _, _, err := answer(g, req); err != nil {
			t.Fatal(err)
		}
	}
	// 75 used: 108 more still fits (183 <= 190), then 90 used; 198 does not.
	if _, _, err := answer(g, req); err != nil {
		t.Fatal(err)
	}
	_, _, err := answer(g, req)
	wantCode(t, err, 429, "rate_limit_exceeded")
	if got := testutil.ToFloat64(g.m.rejected.WithLabelValues("tpm")); got != 1 {
		t.Fatalf("rejected_total{tpm} = %v, want 1", got)
	}
}

func TestMaxParallel(t *testing.T) {
	up := gt.NewUpstream(t, gt.Always(gt.Reply{HeaderDelay: 300 * time.Millisecond}))
	g := newGateway(t, pricedYAML(up.URL, `
keys:
  - {name: k, key: sk-k, max_parallel: 2}
`), Options{})
	req := chatReq("m", "hi", true)
	req.Key = "sk-k"
	errs := make(chan error, 2)
	for range 2 {
		go func() { _, _, err := answer(g, req); errs <- err }()
	}
	for up.Count() < 2 {
		time.Sleep(time.Millisecond)
	}
	_, _, err := answer(g, req)
	wantCode(t, err, 429, "rate_limit_exceeded")
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := answer(g, req); err != nil {
		t.Fatalf("after the two finished: %v", err)
	}
}

// TestUsageCountedWhenTheUpstreamOmitsIt: the completion is the exact tiktoken count
// of the streamed text in the upstream's encoding, and the charge follows it.
func TestUsageCountedWhenTheUpstreamOmitsIt(t *testing.T) {
	chunks := []string{"Hello", " wonderful", " world", "! Ünïcödé ✓"}
	enc, err := tokenizer.Load("r50k_base")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		reply     gt.Reply
		text      string
		maxTokens int // > 0: the window is checked with a byte bound, the charge still counts
	}{
		{"stream without a usage chunk", gt.Reply{Chunks: chunks, OmitUsage: true}, "Hello wonderful world! Ünïcödé ✓", 0},
		{"stream cut after two chunks", gt.Reply{Chunks: chunks, DropAfter: 2}, "Hello wonderful", 0},
		{"max_tokens given, no usage chunk", gt.Reply{Chunks: chunks, OmitUsage: true}, "Hello wonderful world! Ünïcödé ✓", 64},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := gt.NewUpstream(t, gt.Always(tc.reply))
			g := newGateway(t, "upstreams:"+upstreamYAML("a", "llamacpp", up.URL, 4096, "encoding: r50k_base\nprices: {input: 1000000, output: 1000000}")+`
keys: [{name: k, key: sk-k}]
`, Options{})
			req := chatReq("m", "count me", true)
			req.Key, req.Sampling.MaxTokens = "sk-k", tc.maxTokens
			text, u, _ := answer(g, req)
			want := llm.Usage{PromptTokens: promptTokens(g.ups["a"], req), CompletionTokens: len(enc.Encode(tc.text))}
			if text != tc.text || u != want {
				t.Fatalf("Generate = %q, %+v; want %q, %+v", text, u, tc.text, want)
			}
			if s := g.Spend()[0]; s.Spent != float64(want.Total()) {
				t.Fatalf("spent %v, want %d (1 per token)", s.Spent, want.Total())
			}
			if r := up.Requests()[0]; !r.Stream || !r.IncludeUsage {
				t.Fatalf("upstream request stream=%v include_usage=%v, want both", r.Stream, r.IncludeUsage)
			}
		})
	}
}

func TestClientLeavingStopsWithoutRetry(t *testing.T) {
	g, _, b := pair(t, gt.Reply{Chunks: []string{"a", "b", "c"}, ChunkDelay: 10 * time.Millisecond}, gt.Reply{}, `
routes: [{model: m, targets: [{upstream: a}], fallbacks: [b]}]
`, Options{})
	gone := errors.New("client left")
	_, err := g.Generate(context.Background(), chatReq("m", "hi", true), func(llm.Delta) error { return gone })
	if !errors.Is(err, gone) || b.Count() != 0 {
		t.Fatalf("err = %v, fallback calls %d; want the emit error and no retry", err, b.Count())
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := g.Generate(ctx, chatReq("m", "hi", true), func(llm.Delta) error { return nil }); !errors.Is(err, context.Canceled) || b.Count() != 0 {
		t.Fatalf("cancelled: err = %v, fallback calls %d", err, b.Count())
	}
}
