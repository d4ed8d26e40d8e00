package openai

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/ferryml/ferry/internal/llm"
	"github.com/google/go-cmp/cmp"
)

const msgs = `"messages":[{"role":"user","content":"Hi"}]`

// badRequests are bodies each decoder must refuse with a 400 naming param.
var badRequests = []struct {
	endpoint, body, param string
}{
	{"chat", `[1]`, ""},
	{"chat", `{"model":"m",` + msgs, ""}, // cut short
	{"chat", `{` + msgs + `}`, "model"},
	{"chat", `{"model":"",` + msgs + `}`, "model"},
	{"chat", `{"model":3,` + msgs + `}`, "model"},
	{"chat", `{"model":"m"}`, "messages"},
	{"chat", `{"model":"m","messages":[]}`, "messages"},
	{"chat", `{"model":"m","messages":"Hi"}`, "messages"},
	{"chat", `{"model":"m","messages":[5]}`, "messages[0]"},
	{"chat", `{"model":"m","messages":[{"role":"user"}]}`, "messages[0].content"},
	{"chat", `{"model":"m","messages":[{"role":"user","content":5}]}`, "messages[0].content"},
	{"chat", `{"model":"m","messages":[{"role":"robot","content":"x"}]}`, "messages[0].role"},
	{"chat", `{"model":"m","messages":[{"content":"x"}]}`, "messages[0].role"},
	{"chat", `{"model":"m","messages":[{"role":7,"content":"x"}]}`, "messages[0].role"},
	{"chat", `{"model":"m","messages":[{"role":"tool","content":"x"}]}`, "messages[0].tool_call_id"},
	{"chat", `{"model":"m","messages":[{"role":"function","content":"x"}]}`, "messages[0].role"},
	{"chat", `{"model":"m","messages":[{"role":"user","content":"x","tool_calls":[{}]}]}`, "messages[0].tool_calls"},
	{"chat", `{"model":"m","messages":[{"role":"assistant","content":null,"tool_calls":{}}]}`, "messages[0].tool_calls"},
	{"chat", `{"model":"m","messages":[{"role":"assistant","content":null,"function_call":{}}]}`, "messages[0].function_call"},
	{"chat", `{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url"}]}]}`, "messages[0].content[1].type"},
	{"chat", `{"model":"m","messages":[{"role":"user","content":[{"type":"text"}]}]}`, "messages[0].content[0].text"},
	{"chat", `{"model":"m","messages":[{"role":"user","content":["a"]}]}`, "messages[0].content[0]"},
	{"chat", `{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":5}]}]}`, "messages[0].content[0].text"},
	{"chat", `{"model":"m","messages":[{"role":"user","content":"x","name":5}]}`, "messages[0].name"},
	{"chat", `{"model":"m",` + msgs + `,"max_tokens":0}`, "max_tokens"},
	{"chat", `{"model":"m",` + msgs + `,"max_tokens":1.5}`, "max_tokens"},
	{"chat", `{"model":"m",` + msgs + `,"max_completion_tokens":-1}`, "max_completion_tokens"},
	{"chat", `{"model":"m",` + msgs + `,"temperature":2.5}`, "temperature"},
	{"chat", `{"model":"m",` + msgs + `,"temperature":"hot"}`, "temperature"},
	{"chat", `{"model":"m",` + msgs + `,"top_p":0}`, "top_p"},
	{"chat", `{"model":"m",` + msgs + `,"top_p":1.01}`, "top_p"},
	{"chat", `{"model":"m",` + msgs + `,"n":0}`, "n"},
	{"chat", `{"model":"m",` + msgs + `,"n":129}`, "n"},
	{"chat", `{"model":"m",` + msgs + `,"stop":["a","b","c","d","e"]}`, "stop"},
	{"chat", `{"model":"m",` + msgs + `,"stop":[1]}`, "stop"},
	{"chat", `{"model":"m",` + msgs + `,"stop":[""]}`, "stop"},
	{"chat", `{"model":"m",` + msgs + `,"seed":"7"}`, "seed"},
	{"chat", `{"model":"m",` + msgs + `,"presence_penalty":-2.1}`, "presence_penalty"},
	{"chat", `{"model":"m",` + msgs + `,"frequency_penalty":3}`, "frequency_penalty"},
	{"chat", `{"model":"m",` + msgs + `,"logit_bias":{"x":1}}`, "logit_bias"},
	{"chat", `{"model":"m",` + msgs + `,"logit_bias":{"5":101}}`, "logit_bias"},
	{"chat", `{"model":"m",` + msgs + `,"logit_bias":{"5":"a"}}`, "logit_bias"},
	{"chat", `{"model":"m",` + msgs + `,"logprobs":1}`, "logprobs"},
	{"chat", `{"model":"m",` + msgs + `,"top_logprobs":2}`, "top_logprobs"},
	{"chat", `{"model":"m",` + msgs + `,"logprobs":true,"top_logprobs":21}`, "top_logprobs"},
	{"chat", `{"model":"m",` + msgs + `,"user":1}`, "user"},
	{"chat", `{"model":"m",` + msgs + `,"stream":"yes"}`, "stream"},
	{"chat", `{"model":"m",` + msgs + `,"stream_options":{"include_usage":true}}`, "stream_options"},
	{"chat", `{"model":"m",` + msgs + `,"stream":true,"stream_options":{"include_usage":1}}`, "stream_options.include_usage"},
	{"chat", `{"model":"m",` + msgs + `,"top_k":-2}`, "top_k"},
	{"chat", `{"model":"m",` + msgs + `,"min_p":1.5}`, "min_p"},
	{"chat", `{"model":"m",` + msgs + `,"repetition_penalty":0}`, "repetition_penalty"},
	{"chat", `{"model":"m",` + msgs + `,"min_tokens":-1}`, "min_tokens"},
	{"chat", `{"model":"m",` + msgs + `,"min_tokens":5,"max_tokens":4}`, "min_tokens"},
	{"chat", `{"model":"m",` + msgs + `,"ignore_eos":"true"}`, "ignore_eos"},
	{"chat", `{"model":"m",` + msgs + `,"stop_token_ids":[-1]}`, "stop_token_ids"},
	{"chat", `{"model":"m",` + msgs + `,"stop_token_ids":["a"]}`, "stop_token_ids"},
	{"chat", `{"model":"m",` + msgs + `,"tools":{"type":"function"}}`, "tools"},
	{"chat", `{"model":"m",` + msgs + `,"tool_choice":1}`, "tool_choice"},
	{"chat", `{"model":"m",` + msgs + `,"functions":[]}`, "functions"},
	{"chat", `{"model":"m",` + msgs + `,"function_call":"auto"}`, "function_call"},
	{"chat", `{"model":"m",` + msgs + `,"response_format":"json_object"}`, "response_format"},
	{"completion", `{"prompt":"x"}`, "model"},
	{"completion", `{"model":"m"}`, "prompt"},
	{"completion", `{"model":"m","prompt":""}`, "prompt"},
	{"completion", `{"model":"m","prompt":[]}`, "prompt"},
	{"completion", `{"model":"m","prompt":[[]]}`, "prompt"},
	{"completion", `{"model":"m","prompt":["a","b"]}`, "prompt"},
	{"completion", `{"model":"m","prompt":[[1],[2]]}`, "prompt"},
	{"completion", `{"model":"m","prompt":[1,"a"]}`, "prompt"},
	{"completion", `{"model":"m","prompt":[-1]}`, "prompt"},
	{"completion", `{"model":"m","prompt":{"text":"x"}}`, "prompt"},
	{"completion", `{"model":"m","prompt":"x","logprobs":true}`, "logprobs"},
	{"completion", `{"model":"m","prompt":"x","logprobs":21}`, "logprobs"},
	{"completion", `{"model":"m","prompt":"x","echo":1}`, "echo"},
	{"completion", `{"model":"m","prompt":"x","suffix":"y"}`, "suffix"},
	{"completion", `{"model":"m","prompt":"x","best_of":3}`, "best_of"},
	{"completion", `{"model":"m","prompt":"x","max_tokens":-3}`, "max_tokens"},
	{"embedding", `{"input":"x"}`, "model"},
	{"embedding", `{"model":"m"}`, "input"},
	{"embedding", `{"model":"m","input":""}`, "input"},
	{"embedding", `{"model":"m","input":[]}`, "input"},
	{"embedding", `{"model":"m","input":["a",""]}`, "input"},
	{"embedding", `{"model":"m","input":[[1],[]]}`, "input"},
	{"embedding", `{"model":"m","input":[true]}`, "input"},
	{"embedding", `{"model":"m","input":"x","encoding_format":"hex"}`, "encoding_format"},
	{"embedding", `{"model":"m","input":"x","dimensions":0}`, "dimensions"},
	{"embedding", `{"model":"m","input":"x","dimensions":"4"}`, "dimensions"},
	{"embedding", `{"model":"m","input":"x","user":false}`, "user"},
}

func decodeFor(endpoint string, body []byte) error {
	var err error
	switch endpoint {
	case "chat":
		_, err = decodeChat(body)
	case "completion":
		_, err = decodeCompletion(body)
	default:
		_, err = decodeEmbedding(body)
	}
	return err
}

// TestBadRequestsNameTheirParam: every refusal is a 400 invalid_request_error naming the
// field at fault (none for a body that is not a JSON object).
func TestBadRequestsNameTheirParam(t *testing.T) {
	for _, tc := range badRequests {
		t.Run(tc.endpoint+" "+tc.body, func(t *testing.T) {
			err := decodeFor(tc.endpoint, []byte(tc.body))
			e := llm.AsError(err)
			if e == nil || e.Status != 400 || e.Type != "invalid_request_error" || e.Param != tc.param || e.Message == "" {
				t.Fatalf("decode %s %s = %#v; want a 400 with param %q", tc.endpoint, tc.body, e, tc.param)
			}
		})
	}
}

// TestPromptForms: a prompt is a string, one string in an array, token ids, or one
// list of token ids; OpenAI's defaults apply to what the body leaves out.
func TestPromptForms(t *testing.T) {
	for _, tc := range []struct {
		prompt string
		text   string
		tokens []int
	}{
		{`"Say hi"`, "Say hi", nil},
		{`["Say hi"]`, "Say hi", nil},
		{`[1,2,3]`, "", []int{1, 2, 3}},
		{`[[4,5]]`, "", []int{4, 5}},
	} {
		s, err := decodeCompletion([]byte(`{"model":"m","prompt":` + tc.prompt + `,"echo":true,"logprobs":0,"n":3}`))
		if err != nil {
			t.Fatalf("prompt %s: %v", tc.prompt, err)
		}
		want := &llm.Request{Model: "m", Kind: llm.Completion, Prompt: tc.text, PromptTokens: tc.tokens, N: 3, Echo: true,
			Sampling: llm.Sampling{Temperature: 1, TopP: 1, RepetitionPenalty: 1, WantLogprobs: true}}
		if diff := cmp.Diff(want, s.req); diff != "" {
			t.Errorf("prompt %s (-want +got):\n%s", tc.prompt, diff)
		}
	}
}

// TestNullMeansAbsent: clients send null for fields they leave unset.
func TestNullMeansAbsent(t *testing.T) {
	s, err := decodeChat([]byte(`{"model":"m",` + msgs + `,"temperature":null,"stop":null,"tools":null,"n":null,"stream_options":null,"response_format":null,"logit_bias":null}`))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(llm.DefaultSampling(), s.req.Sampling); diff != "" {
		t.Errorf("sampling (-want +got):\n%s", diff)
	}
}

// TestEmbeddingDimensions: the request reaches the backend with its key; dimensions equal to the model's size pass; any other is a
// 400 naming dimensions, since this server does not shorten vectors.
func TestEmbeddingDimensions(t *testing.T) {
	f := newFakeBackend()
	srv := serve(t, newTestHandler(f, Options{}), 1<<20)
	if res := post(t, srv.URL, "/v1/embeddings", `{"model":"fake-embed","input":"abc","dimensions":4,"user":"u2"}`); res.status != 200 {
		t.Errorf("dimensions 4: %d %s", res.status, res.body)
	}
	f.mu.Lock()
	got := *f.lastEmbed
	f.mu.Unlock()
	if h := got.Header.Get("Content-Type"); h != "application/json" {
		t.Errorf("backend got header Content-Type %q, want the HTTP request's", h)
	}
	got.Header = nil
	if diff := cmp.Diff(llm.EmbedRequest{Model: "fake-embed", Input: []string{"abc"}, Key: "sk-test-key", User: "u2"}, got); diff != "" {
		t.Errorf("backend got (-want +got):\n%s", diff)
	}
	res := post(t, srv.URL, "/v1/embeddings", `{"model":"fake-embed","input":"abc","dimensions":3}`)
	if res.status != 400 || !strings.Contains(string(res.body), `"param":"dimensions"`) {
		t.Errorf("dimensions 3: %d %s; want a 400 naming dimensions", res.status, res.body)
	}
}

// TestKeepAliveWhileWaiting: a stream that waits sends ": keep-alive" after each
// KeepAlive of silence, and only then (fake time: the backend sleeps 40 s before each
// delta, with keep-alives every 15 s).
func TestKeepAliveWhileWaiting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newTestHandler(newFakeBackend(), Options{KeepAlive: 15e9})
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/v1/completions", strings.NewReader(`{"model":"fake-slow","prompt":"x","stream":true}`))
		h.completions(rec, req)
		golden(t, "stream_keepalive", rec.Body.Bytes())
		if got := strings.Count(rec.Body.String(), ": keep-alive\n\n"); got != 4 {
			t.Errorf("%d keep-alives in 80 s of waiting at 15 s; want 4", got)
		}
	})
}
