package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ferryml/ferry/internal/llm/gateway/gatewaytest"
	"github.com/ferryml/ferry/internal/transport/openai/openaitest"
)

// clientResults is what openai_client.mjs reports, as far as these tests read it.
type clientResults struct {
	Chat struct {
		Object, Role, FinishReason string
		Usage                      struct {
			CompletionTokens int `json:"completion_tokens"`
		}
	}
	ChatStream struct {
		Chunks, UsageChunks, EmptyChoiceChunks int
		FirstRole                              string
		Usage                                  struct {
			CompletionTokens int `json:"completion_tokens"`
		}
	}
	Completion       struct{ Object, Text string }
	CompletionStream struct{ Chunks int }
	EmbedBase64      struct {
		Count, Dims int
		Head        []float64
	}
	EmbedFloat struct {
		Count, Dims int
		Head        []float64
	}
	Models struct {
		Data      []struct{ ID string }
		Retrieved string
	}
	ContextLength, NotFound, RateLimited, ToolsRefused struct {
		Class, Code, Param string
		Status             int
	}
	Tools, ToolsStream struct {
		Content      *string
		FinishReason string
		Calls        []struct{ ID, Type, Name, Arguments string }
	}
}

func runClient(t *testing.T, baseURL string, args ...string) clientResults {
	t.Helper()
	line := openaitest.Run(t, openaitest.Install(t), baseURL, args...)
	var r clientResults
	if err := json.Unmarshal(line, &r); err != nil {
		t.Fatalf("the client's results: %v\n%s", err, line)
	}
	t.Logf("openai@%s saw: %s", openaitest.Version, line)
	return r
}

// checkClient asserts what the real tinygpt must give the npm client, whatever text it writes.
func checkClient(t *testing.T, r clientResults) {
	t.Helper()
	checks := []struct {
		what      string
		got, want any
	}{
		{"chat object", r.Chat.Object, "chat.completion"},
		{"chat role", r.Chat.Role, "assistant"},
		{"chat usage completion tokens <= 8", r.Chat.Usage.CompletionTokens <= 8 && r.Chat.Usage.CompletionTokens > 0, true},
		{"chat stream role", r.ChatStream.FirstRole, "assistant"},
		{"chat stream usage chunks", r.ChatStream.UsageChunks, 1},
		{"chat stream empty-choice chunks", r.ChatStream.EmptyChoiceChunks, 1},
		{"completion object", r.Completion.Object, "text_completion"},
		{"completion stream chunks > 1", r.CompletionStream.Chunks > 1, true},
		{"embeddings (base64)", fmt.Sprintln(r.EmbedBase64.Count, r.EmbedBase64.Dims), "2 128\n"},
		{"embeddings (float) equal base64", fmt.Sprint(float32s(r.EmbedFloat.Head)), fmt.Sprint(float32s(r.EmbedBase64.Head))},
		{"model retrieved", r.Models.Retrieved, "tinygpt"},
		{"context length error", fmt.Sprintln(r.ContextLength.Class, r.ContextLength.Status, r.ContextLength.Code), "BadRequestError 400 context_length_exceeded\n"},
		{"unknown model error", fmt.Sprintln(r.NotFound.Class, r.NotFound.Status), "NotFoundError 404\n"},
	}
	for _, c := range checks {
		if fmt.Sprint(c.got) != fmt.Sprint(c.want) {
			t.Errorf("%s: got %v, want %v", c.what, c.got, c.want)
		}
	}
	if !slices.ContainsFunc(r.Models.Data, func(m struct{ ID string }) bool { return m.ID == "tinygpt" }) {
		t.Errorf("models list %v has no tinygpt", r.Models.Data)
	}
}

// TestOpenAIClientAgainstTinyGPT: the official openai npm client talks to `ferry serve`
// unchanged, on the real generated model: chat, completions, streams with usage,
// embeddings by the client's default base64 path and as floats, the model list, and the
// typed errors.
func TestOpenAIClientAgainstTinyGPT(t *testing.T) {
	ts := startServer(t, llmRepo(t))
	checkClient(t, runClient(t, ts.URL+"/v1", "tinygpt", "tinygpt"))
}

// TestOpenAIClientThroughTheGateway: the same client through --llm-gateway with keys:
// the native model behind the gateway, and a key whose budget cannot cover one request
// typed as RateLimitError (429 insufficient_quota).
func TestOpenAIClientThroughTheGateway(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "gateway.yaml")
	gw := `upstreams:
  - name: local
    kind: native
    models: {tinygpt: tinygpt}
    context_window: 1024
    prices: {input: 1, output: 2}
keys:
  - {name: app, key: sk-app-0123456789}
  - {name: broke, key: sk-broke-0123456789, budget: 0.000001, budget_duration: 1d}
`
	if err := os.WriteFile(cfg, []byte(gw), 0o644); err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, llmRepo(t), func(c *serveConfig) { c.llm.gatewayFile = cfg })
	t.Setenv("FERRY_API_KEY", "sk-app-0123456789")
	t.Setenv("FERRY_LIMITED_KEY", "sk-broke-0123456789")
	r := runClient(t, ts.URL+"/v1", "tinygpt", "tinygpt", "tinygpt")
	checkClient(t, r)
	if got := fmt.Sprintln(r.RateLimited.Class, r.RateLimited.Status, r.RateLimited.Code); got != "RateLimitError 429 insufficient_quota\n" {
		t.Errorf("a key past its budget: %s, want RateLimitError 429 insufficient_quota", got)
	}
	if v := metricValue(t, ts.URL, `ferry_llm_gateway_rejected_total{reason="budget"}`); v < 1 {
		t.Errorf(`ferry_llm_gateway_rejected_total{reason="budget"} = %v`, v)
	}
}

// TestOpenAIClientToolsThroughTheGateway: a chat with tools, tool_choice and the tool
// turns of an agent loop reaches an upstream as the client sent it, and the upstream's
// tool calls reach the official client whole and streamed (the stream put together by
// the client's own helper); the native model, which has no tools, refuses them with a
// 400 naming "tools".
func TestOpenAIClientToolsThroughTheGateway(t *testing.T) {
	call := gatewaytest.ToolCall{ID: "call_1", Name: "get_weather", Arguments: `{"city":"Paris","unit":"celsius"}`}
	up := gatewaytest.NewUpstream(t, gatewaytest.Always(gatewaytest.Reply{Chunks: []string{}, ToolCalls: []gatewaytest.ToolCall{call}}))
	ts := gatewayServer(t, `upstreams:
  - {name: agent, kind: openai, base_url: "%s", models: {agent: fake-model}, context_window: 4096}
  - {name: local, kind: native, models: {tinygpt: tinygpt}, context_window: 1024}
`, up)
	t.Setenv("FERRY_TOOLS_MODEL", "agent")
	r := runClient(t, ts.URL+"/v1", "tinygpt", "tinygpt")
	want := fmt.Sprint([]any{call.ID, "function", call.Name, call.Arguments})
	for name, got := range map[string]struct {
		Content      *string
		FinishReason string
		Calls        []struct{ ID, Type, Name, Arguments string }
	}{"whole": r.Tools, "streamed": r.ToolsStream} {
		if len(got.Calls) != 1 || got.Content != nil && *got.Content != "" || got.FinishReason != "tool_calls" {
			t.Errorf("%s: %+v; want one call, no content, finish_reason tool_calls", name, got)
			continue
		}
		c := got.Calls[0]
		if g := fmt.Sprint([]any{c.ID, c.Type, c.Name, c.Arguments}); g != want {
			t.Errorf("%s call %s, want %s", name, g, want)
		}
	}
	if got := fmt.Sprintln(r.ToolsRefused.Class, r.ToolsRefused.Status, r.ToolsRefused.Param); got != "BadRequestError 400 tools\n" {
		t.Errorf("tools to the native model: %s, want BadRequestError 400 tools", got)
	}
	reqs := up.Requests()
	if len(reqs) != 2 {
		t.Fatalf("the upstream got %d requests, want 2", len(reqs))
	}
	var body struct {
		Tools      []struct{ Function struct{ Name string } }
		ToolChoice string `json:"tool_choice"`
		Messages   []struct {
			Role       string
			ToolCallID string                `json:"tool_call_id"`
			ToolCalls  []struct{ ID string } `json:"tool_calls"`
		}
	}
	if err := json.Unmarshal(reqs[0].Body, &body); err != nil {
		t.Fatal(err)
	}
	if len(body.Tools) != 1 || body.Tools[0].Function.Name != "get_weather" || body.ToolChoice != "auto" || len(body.Messages) != 3 ||
		len(body.Messages[1].ToolCalls) != 1 || body.Messages[2].Role != "tool" || body.Messages[2].ToolCallID != "call_0" {
		t.Errorf("the upstream got %s", reqs[0].Body)
	}
}

// float32s narrows what JSON widened: the base64 path decodes float32 bytes, the float
// path prints float32 values.
func float32s(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}
