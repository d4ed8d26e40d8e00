package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferryml/ferry/tools/onnxgen"
)

// tinygptConfig is the example repository's generative model (tools/modelgen).
const tinygptConfig = `name: "tinygpt"
backend: "llm"
parameters { key: "tokenizer" value { string_value: "r50k_base" } }
parameters { key: "chat_template" value { string_value: "plain" } }
parameters { key: "context_length" value { string_value: "1024" } }
`

// llmRepo is a repository holding tinygpt (and the mlp, so V2 serves beside /v1).
func llmRepo(t testing.TB) string {
	t.Helper()
	repo := t.TempDir()
	writeModel(t, repo, "tinygpt", 1, onnxgen.GPT(onnxgen.TinyGPT()), tinygptConfig)
	writeModel(t, repo, "mlp", 1, onnxgen.MLP(1), "")
	return repo
}

// batchPrompts are eight chat prompts of different lengths, sent at once.
var batchPrompts = []string{"Hello there", "a", "The quick brown fox jumps over the lazy dog", "1 2 3 4 5 6 7 8 9 10 11 12 13 14 15", "Ferry", "Why is the sky blue?", "x y", "Go is a language"}

// answersAlone is each prompt's greedy 10-token answer from model, one request at a time.
func answersAlone(t testing.TB, url, model string, prompts []string) []string {
	t.Helper()
	out := make([]string, len(prompts))
	for i, p := range prompts {
		out[i] = postChat(t, url, chatBody(model, p, 10, false)).Choices[0].Message.Content
	}
	return out
}

// chatBody is a greedy chat request for n tokens exactly.
func chatBody(model, content string, n int, stream bool) string {
	b, _ := json.Marshal(map[string]any{
		"model": model, "messages": []map[string]string{{"role": "user", "content": content}},
		"max_tokens": n, "temperature": 0, "ignore_eos": true, "stream": stream,
		"stream_options": map[string]any{"include_usage": true},
	})
	if !stream {
		b, _ = json.Marshal(map[string]any{
			"model": model, "messages": []map[string]string{{"role": "user", "content": content}},
			"max_tokens": n, "temperature": 0, "ignore_eos": true,
		})
	}
	return string(b)
}

type chatAnswer struct {
	Choices []struct {
		Message      struct{ Role, Content string }
		FinishReason string `json:"finish_reason"`
	}
	Usage struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
		TotalTokens      int `json:"total_tokens"`
	}
}

func postChat(t testing.TB, url, body string) chatAnswer {
	t.Helper()
	code, _, got := httpDo(t, "POST", url+"/v1/chat/completions", "application/json", strings.NewReader(body))
	if code != http.StatusOK {
		t.Fatalf("chat: %d %s", code, got)
	}
	var a chatAnswer
	if err := json.Unmarshal(got, &a); err != nil {
		t.Fatalf("chat answer %s: %v", got, err)
	}
	return a
}

// TestLLMServesTinyGPT: the example's generative model answers at /v1 on the REST port
// with no flag: chat, streaming with usage, completions, embeddings, the context
// window's 400, greedy determinism alone and in a batch, and vLLM's metrics.
func TestLLMServesTinyGPT(t *testing.T) {
	ts := startServer(t, llmRepo(t))

	code, _, body := httpDo(t, "GET", ts.URL+"/v1/models", "", nil)
	if code != 200 || !strings.Contains(string(body), `"id":"tinygpt"`) {
		t.Fatalf("/v1/models: %d %s", code, body)
	}
	alone := postChat(t, ts.URL, chatBody("tinygpt", "Hello there", 12, false))
	if len(alone.Choices) != 1 || alone.Usage.CompletionTokens != 12 || alone.Choices[0].FinishReason != "length" || alone.Choices[0].Message.Role != "assistant" {
		t.Fatalf("chat answer: %+v", alone)
	}

	t.Run("StreamEqualsWhole", func(t *testing.T) {
		text, usage := streamChat(t, ts.URL, chatBody("tinygpt", "Hello there", 12, true))
		if text != alone.Choices[0].Message.Content {
			t.Errorf("streamed %q, whole %q", text, alone.Choices[0].Message.Content)
		}
		if usage["completion_tokens"] != 12 || usage["prompt_tokens"] != alone.Usage.PromptTokens {
			t.Errorf("stream usage %v, want 12 completion and %d prompt tokens", usage, alone.Usage.PromptTokens)
		}
	})

	t.Run("GreedySameInABatch", func(t *testing.T) {
		prompts := batchPrompts
		want := answersAlone(t, ts.URL, "tinygpt", prompts)
		got := make([]string, len(prompts))
		var wg sync.WaitGroup
		for round := 0; round < 2; round++ {
			for i, p := range prompts {
				wg.Add(1)
				go func() {
					defer wg.Done()
					got[i] = postChat(t, ts.URL, chatBody("tinygpt", p, 10, false)).Choices[0].Message.Content
				}()
			}
			wg.Wait()
			for i := range prompts {
				if got[i] != want[i] {
					t.Errorf("round %d prompt %q: batched %q, alone %q", round, prompts[i], got[i], want[i])
				}
			}
		}
	})

	t.Run("StopString", func(t *testing.T) {
		// The greedy answer, cut where a stop string taken from its middle begins.
		whole := []rune(alone.Choices[0].Message.Content)
		stop := string(whole[len(whole)/2 : len(whole)/2+2])
		want := string(whole)[:strings.Index(string(whole), stop)]
		b, _ := json.Marshal(map[string]any{"model": "tinygpt", "messages": []map[string]string{{"role": "user", "content": "Hello there"}},
			"max_tokens": 12, "temperature": 0, "ignore_eos": true, "stop": []string{stop}})
		got := postChat(t, ts.URL, string(b))
		if c := got.Choices[0]; c.Message.Content != want || c.FinishReason != "stop" {
			t.Errorf("stop %q: %q (finish %s), want %q (finish stop)", stop, c.Message.Content, c.FinishReason, want)
		}
		text, _ := streamChat(t, ts.URL, strings.Replace(string(b), `"model"`, `"stream":true,"model"`, 1))
		if text != want {
			t.Errorf("stop %q streamed: %q, want %q", stop, text, want)
		}
		if v := metricValue(t, ts.URL, `vllm:request_success_total{finished_reason="stop",model_name="tinygpt"}`); v < 2 {
			t.Errorf(`vllm:request_success_total{finished_reason="stop"} = %v, want the two stop-string finishes`, v)
		}
	})

	t.Run("ContextWindow", func(t *testing.T) {
		long := strings.Repeat("hello ", 1100)
		code, _, body := httpDo(t, "POST", ts.URL+"/v1/chat/completions", "application/json", strings.NewReader(chatBody("tinygpt", long, 4, false)))
		if code != 400 || !strings.Contains(string(body), "context_length_exceeded") {
			t.Errorf("over-long prompt: %d %s", code, body)
		}
	})

	t.Run("Completions", func(t *testing.T) {
		code, _, body := httpDo(t, "POST", ts.URL+"/v1/completions", "application/json",
			strings.NewReader(`{"model":"tinygpt","prompt":"Once upon a time","max_tokens":5,"temperature":0,"ignore_eos":true,"seed":7}`))
		if code != 200 || !strings.Contains(string(body), `"object":"text_completion"`) || !strings.Contains(string(body), `"completion_tokens":5`) {
			t.Errorf("completion: %d %s", code, body)
		}
	})

	t.Run("Embeddings", func(t *testing.T) {
		code, _, body := httpDo(t, "POST", ts.URL+"/v1/embeddings", "application/json",
			strings.NewReader(`{"model":"tinygpt","input":["first text","second"]}`))
		var e struct {
			Data []struct {
				Embedding []float64
				Index     int
			}
		}
		if code != 200 || json.Unmarshal(body, &e) != nil || len(e.Data) != 2 {
			t.Fatalf("embeddings: %d %s", code, body)
		}
		var norm float64
		for _, v := range e.Data[0].Embedding {
			norm += v * v
		}
		if math.Abs(norm-1) > 1e-3 || len(e.Data[0].Embedding) != 128 {
			t.Errorf("embedding: %d values, squared norm %v", len(e.Data[0].Embedding), norm)
		}
	})

	t.Run("DisconnectFrees", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "POST", ts.URL+"/v1/chat/completions", strings.NewReader(chatBody("tinygpt", "go on", 900, true)))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		bufio.NewReader(resp.Body).ReadString('\n') // the first chunk: generating
		cancel()
		resp.Body.Close()
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) && metricValue(t, ts.URL, `vllm:num_requests_running{model_name="tinygpt"}`) != 0 {
			time.Sleep(20 * time.Millisecond)
		}
		if v := metricValue(t, ts.URL, `vllm:num_requests_running{model_name="tinygpt"}`); v != 0 {
			t.Errorf("running after the client left: %v", v)
		}
	})

	if v := metricValue(t, ts.URL, `vllm:time_to_first_token_seconds_count{model_name="tinygpt"}`); v < 1 {
		t.Errorf("vllm:time_to_first_token_seconds_count = %v", v)
	}
}

// streamChat reads an SSE chat stream: the content and the final usage chunk, checking
// OpenAI's framing (usage null on content chunks, choices [] on the usage chunk, [DONE]).
func streamChat(t testing.TB, url, body string) (string, map[string]int) {
	t.Helper()
	resp, err := http.Post(url+"/v1/chat/completions", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || !strings.HasPrefix(ct, "text/event-stream") {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("stream: %d %s %s", resp.StatusCode, ct, b)
	}
	var text strings.Builder
	var usage map[string]int
	done := false
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, ":") {
			continue
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			t.Fatalf("not an SSE data line: %q", line)
		}
		if data == "[DONE]" {
			done = true
			break
		}
		var c struct {
			Object  string
			Choices []struct{ Delta struct{ Content string } }
			Usage   *map[string]int
		}
		if err := json.Unmarshal([]byte(data), &c); err != nil || c.Object != "chat.completion.chunk" {
			t.Fatalf("chunk %s: %v", data, err)
		}
		if c.Usage != nil {
			if len(c.Choices) != 0 {
				t.Errorf("usage chunk with choices: %s", data)
			}
			usage = *c.Usage
		}
		for _, ch := range c.Choices {
			text.WriteString(ch.Delta.Content)
		}
	}
	if !done {
		t.Error("no [DONE]")
	}
	return text.String(), usage
}

// metricValue reads one sample of /metrics by its full name and labels; -1 when absent.
func metricValue(t testing.TB, url, sample string) float64 {
	t.Helper()
	_, _, body := httpDo(t, "GET", url+"/metrics", "", nil)
	for _, line := range strings.Split(string(body), "\n") {
		if rest, ok := strings.CutPrefix(line, sample+" "); ok {
			var v float64
			fmt.Sscan(rest, &v)
			return v
		}
	}
	return -1
}

var _ = bytes.NewReader
var _ = os.Getenv
var _ = filepath.Join

// TestLLMExchangesInTheInferenceLog: with --inference-log, a chat exchange is logged
// like a V2 request: its id, the messages in, the text and usage out, route "llm",
// readable at /api/v1/logs by model and id (the chat's id is the client request id).
func TestLLMExchangesInTheInferenceLog(t *testing.T) {
	dir := t.TempDir()
	ts := startServer(t, llmRepo(t), func(c *serveConfig) { c.monitoring.inferenceLog = dir })
	code, _, body := httpDo(t, "POST", ts.URL+"/v1/chat/completions", "application/json", strings.NewReader(chatBody("tinygpt", "log me", 6, false)))
	var a struct {
		ID      string
		Choices []struct{ Message struct{ Content string } }
	}
	if code != 200 || json.Unmarshal(body, &a) != nil || a.ID == "" {
		t.Fatalf("chat: %d %s", code, body)
	}
	var entries []map[string]any
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && len(entries) == 0 {
		time.Sleep(100 * time.Millisecond)
		code, _, body = httpDo(t, "GET", ts.URL+"/api/v1/logs?model=tinygpt&id="+a.ID, "", nil)
		entries = entries[:0]
		for _, line := range strings.Split(strings.TrimSpace(string(body)), "\n") { // JSON lines
			var e map[string]any
			if code == 200 && json.Unmarshal([]byte(line), &e) == nil {
				entries = append(entries, e)
			}
		}
	}
	if len(entries) != 1 {
		t.Fatalf("/api/v1/logs for %s: %d %s", a.ID, code, body)
	}
	e, _ := json.Marshal(entries[0])
	for _, want := range []string{`"route":"llm"`, `"client_request_id":"` + a.ID + `"`, `log me`, `"name":"usage"`} {
		if !strings.Contains(string(e), want) {
			t.Errorf("log entry %s lacks %s", e, want)
		}
	}
	text, _ := json.Marshal(a.Choices[0].Message.Content)
	if !strings.Contains(string(e), string(text[1:len(text)-1])) {
		t.Errorf("log entry %s lacks the answer %s", e, text)
	}
}

// TestLLMServesASharedKVModel: a decoder whose attention updates one KV buffer in
// place (onnxgen's SharedKV, onnxruntime-genai's layout) is served like any other,
// and answers as the Optimum model of the same weights does, alone and eight at once.
func TestLLMServesASharedKVModel(t *testing.T) {
	repo := t.TempDir()
	shared := onnxgen.TinyGPT()
	shared.SharedKV = true
	writeModel(t, repo, "tinygpt", 1, onnxgen.GPT(onnxgen.TinyGPT()), tinygptConfig)
	writeModel(t, repo, "tinygpt-shared", 1, onnxgen.GPT(shared), strings.Replace(tinygptConfig, `"tinygpt"`, `"tinygpt-shared"`, 1))
	ts := startServer(t, repo)
	prompts := batchPrompts
	want := answersAlone(t, ts.URL, "tinygpt", prompts)
	got := make([]string, len(prompts))
	var wg sync.WaitGroup
	for i, p := range prompts {
		wg.Go(func() {
			got[i] = postChat(t, ts.URL, chatBody("tinygpt-shared", p, 10, false)).Choices[0].Message.Content
		})
	}
	wg.Wait()
	for i := range prompts {
		if got[i] != want[i] {
			t.Errorf("prompt %q: shared-KV model %q, Optimum model %q", prompts[i], got[i], want[i])
		}
	}
}
