package gateway

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferryml/ferry/internal/llm"
	gt "github.com/ferryml/ferry/internal/llm/gateway/gatewaytest"
)

// TestStreamingDeltasArriveOneByOne: with 60 ms between upstream chunks, each Delta
// reaches the caller about 60 ms after the previous one: nothing is buffered.
func TestStreamingDeltasArriveOneByOne(t *testing.T) {
	const gap = 60 * time.Millisecond
	chunks := []string{"a", "b", "c", "d", "e"}
	up := gt.NewUpstream(t, gt.Always(gt.Reply{Chunks: chunks, ChunkDelay: gap, Comments: true}))
	g := newGateway(t, "upstreams:"+upstreamYAML("a", "vllm", up.URL, 4096, ""), Options{})
	var at []time.Time
	var got []llm.Delta
	begin := time.Now()
	u, err := g.Generate(context.Background(), chatReq("m", "hi", true), func(d llm.Delta) error {
		at = append(at, time.Now())
		got = append(got, d)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []llm.Delta{{Role: "assistant", Text: "a"}, {Text: "b"}, {Text: "c"}, {Text: "d"}, {Text: "e"}, {FinishReason: "stop"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("deltas (-want +got):\n%s", diff)
	}
	if u != (llm.Usage{PromptTokens: 10, CompletionTokens: 5}) {
		t.Fatalf("usage = %+v, want the upstream's", u)
	}
	if first := at[0].Sub(begin); first > 2*gap {
		t.Fatalf("first delta after %v, want about %v", first, gap)
	}
	for i := 1; i < len(chunks); i++ {
		if d := at[i].Sub(at[i-1]); d < gap/2 {
			t.Fatalf("delta %d came %v after delta %d; want about %v: deltas must not be batched", i, d, i-1, gap)
		}
	}
}

func TestCompletionAndWholeAnswers(t *testing.T) {
	up := gt.NewUpstream(t, gt.Always(gt.Reply{Chunks: []string{"x", "y"}, FinishReason: "length"}))
	g := newGateway(t, "upstreams:"+upstreamYAML("a", "ollama", up.URL, 4096, "api_key_env: UP_KEY"),
		Options{Getenv: func(string) string { return "up-secret" }})
	for _, stream := range []bool{true, false} {
		req := &llm.Request{Model: "m", Kind: llm.Completion, Prompt: "once upon", Sampling: llm.DefaultSampling(), Stream: stream}
		var got []llm.Delta
		_, err := g.Generate(context.Background(), req, func(d llm.Delta) error { got = append(got, d); return nil })
		if err != nil {
			t.Fatal(err)
		}
		text, finish := "", ""
		for _, d := range got {
			text += d.Text
			finish += d.FinishReason
			if d.Role != "" {
				t.Fatalf("a completion delta has role %q", d.Role)
			}
		}
		if text != "xy" || finish != "length" {
			t.Fatalf("stream=%v: text %q finish %q", stream, text, finish)
		}
	}
	r := up.Requests()[0]
	if r.Path != "/v1/completions" || r.Prompt != "once upon" || r.Model != "a-model" || r.Auth != "Bearer up-secret" {
		t.Fatalf("upstream got %+v", r)
	}
	if strings.Contains(string(r.Body), "top_k") {
		t.Fatalf("an ollama upstream was sent vLLM-only fields: %s", r.Body)
	}
}

func TestEmbeddingsThroughTheGateway(t *testing.T) {
	up := gt.NewUpstream(t, gt.Always(gt.Reply{}))
	g := newGateway(t, "upstreams:"+upstreamYAML("a", "vllm", up.URL, 4096, "prices: {input: 1000000}")+`
keys: [{name: k, key: sk-k}]
`, Options{})
	resp, err := g.Embed(context.Background(), &llm.EmbedRequest{Model: "m", Input: []string{"one", "two"}, Key: "sk-k"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([][]float32{{0, 1, 2, 3}, {1, 1, 2, 3}}, resp.Vectors); diff != "" || resp.Usage.PromptTokens != 6 {
		t.Fatalf("vectors (-want +got):\n%s usage %+v", diff, resp.Usage)
	}
	if s := g.Spend()[0]; s.Spent != 6 {
		t.Fatalf("spent %v, want 6 (6 tokens at 1 each)", s.Spent)
	}
	_, err = g.Embed(context.Background(), &llm.EmbedRequest{Model: "m", Input: []string{"x"}, Key: "nope"})
	wantCode(t, err, 401, "invalid_api_key")
}

func TestCollectorExposesTheNames(t *testing.T) {
	up := gt.NewUpstream(t, gt.Always(gt.Reply{}))
	g := newGateway(t, "upstreams:"+upstreamYAML("a", "vllm", up.URL, 4096, "prices: {input: 1, output: 1}")+`
keys: [{name: k, key: sk-k, team: t}]
teams: [{name: t}]
`, Options{})
	reg := prometheus.NewRegistry()
	reg.MustRegister(g.Collector())
	req := chatReq("m", "hi", true)
	req.Key = "sk-k"
	if _, _, err := answer(g, req); err != nil {
		t.Fatal(err)
	}
	req.Key = "bad"
	_, _, _ = answer(g, req)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, mf := range mfs {
		have[mf.GetName()] = true
	}
	for _, name := range []string{"gen_ai_client_token_usage", "gen_ai_server_request_duration_seconds",
		"gen_ai_server_time_to_first_token_seconds", "gen_ai_server_time_per_output_token_seconds",
		"ferry_llm_gateway_upstream_requests_total", "ferry_llm_gateway_rejected_total", "ferry_llm_gateway_spend_total"} {
		if !have[name] {
			t.Errorf("metric %s missing; have %v", name, have)
		}
	}
}

// TestLogprobsPassThrough: a request for logprobs asks the upstream in its endpoint's
// form (chat: logprobs true and top_logprobs; completions: logprobs n), and the
// upstream's logprobs, whole or chunk by chunk, come back as Deltas' Logprobs with their
// alternatives best first.
func TestLogprobsPassThrough(t *testing.T) {
	texts := []string{"Hel", "lo"}
	up := gt.NewUpstream(t, gt.Always(gt.Reply{Chunks: texts, Logprobs: true}))
	g := newGateway(t, "upstreams:"+upstreamYAML("a", "vllm", up.URL, 4096, ""), Options{})
	for _, kind := range []llm.Kind{llm.Chat, llm.Completion} {
		for _, stream := range []bool{true, false} {
			req := chatReq("m", "hi", stream)
			if kind == llm.Completion {
				req = &llm.Request{Model: "m", Kind: llm.Completion, Prompt: "hi", Sampling: llm.DefaultSampling(), Stream: stream}
			}
			req.Sampling.WantLogprobs, req.Sampling.Logprobs = true, 2
			var got []llm.Logprob
			if _, err := g.Generate(context.Background(), req, func(d llm.Delta) error { got = append(got, d.Logprobs...); return nil }); err != nil {
				t.Fatal(err)
			}
			name := fmt.Sprintf("kind %d stream %v", kind, stream)
			if len(got) != len(texts) {
				t.Fatalf("%s: %d logprobs, want %d: %+v", name, len(got), len(texts), got)
			}
			for i, lp := range got {
				want := -float64(i+1) / 2
				if lp.Token != texts[i] || lp.Logprob != want || len(lp.Top) != 2 || lp.Top[0] != (llm.TopLogprob{Token: texts[i], Logprob: want}) || lp.Top[1].Token != "x" {
					t.Errorf("%s: token %d = %+v", name, i, lp)
				}
			}
			body := string(up.Requests()[len(up.Requests())-1].Body)
			wantField := `"logprobs":2`
			if kind == llm.Chat {
				wantField = `"logprobs":true,"top_logprobs":2`
			}
			if !strings.Contains(body, wantField) {
				t.Errorf("%s: the upstream got %s, want %s in it", name, body, wantField)
			}
		}
	}
}
