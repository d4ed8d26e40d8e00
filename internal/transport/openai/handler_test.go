package openai

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferryml/ferry/internal/goldentest"
	"github.com/ferryml/ferry/internal/llm"
	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type result struct {
	status int
	header http.Header
	body   []byte
}

// post sends body to path with an API key and reads the whole answer.
func post(t *testing.T, srv string, path, body string) result {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, srv+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer sk-test-key")
	return do(t, req)
}

func get(t *testing.T, srv, path string) result {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, req)
}

func do(t *testing.T, req *http.Request) result {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return result{resp.StatusCode, resp.Header, b}
}

// golden compares got with testdata/name.golden, or rewrites it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	goldentest.Compare(t, filepath.Join("testdata", name+".golden"), got, *update)
}

// TestAnswersMatchGoldenFiles: each answer, JSON object or SSE byte stream, is the
// bytes OpenAI's wire format gives for the fake's script, with the right status and
// content type.
func TestAnswersMatchGoldenFiles(t *testing.T) {
	srv := serve(t, newTestHandler(newFakeBackend(), Options{}), 1<<20)
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		contentType              string
	}{
		{"chat", "POST", "/v1/chat/completions", `{"model":"fake-chat","messages":[{"role":"user","content":"Hi"}],"n":2}`, 200, "application/json"},
		{"chat_logprobs", "POST", "/v1/chat/completions", `{"model":"fake-chat","messages":[{"role":"user","content":"Hi"}],"logprobs":true,"top_logprobs":2}`, 200, "application/json"},
		{"completion_logprobs", "POST", "/v1/completions", `{"model":"fake-chat","prompt":"Say hi","logprobs":1,"max_tokens":5}`, 200, "application/json"},
		{"chat_stream_usage", "POST", "/v1/chat/completions", `{"model":"fake-chat","messages":[{"role":"user","content":"Hi"}],"stream":true,"stream_options":{"include_usage":true}}`, 200, "text/event-stream"},
		{"chat_stream_logprobs_n2", "POST", "/v1/chat/completions", `{"model":"fake-chat","messages":[{"role":"user","content":"Hi"}],"stream":true,"n":2,"logprobs":true,"top_logprobs":1}`, 200, "text/event-stream"},
		{"completion_stream", "POST", "/v1/completions", `{"model":"fake-chat","prompt":[1,2,3],"stream":true}`, 200, "text/event-stream"},
		{"completion_stream_usage", "POST", "/v1/completions", `{"model":"fake-chat","prompt":"Say hi","stream":true,"stream_options":{"include_usage":true},"logprobs":1}`, 200, "text/event-stream"},
		{"stream_error_midway", "POST", "/v1/chat/completions", `{"model":"fake-mid","messages":[{"role":"user","content":"Hi"}],"stream":true}`, 200, "text/event-stream"},
		{"stream_error_before_first_byte", "POST", "/v1/chat/completions", `{"model":"fake-chat","max_tokens":2000,"messages":[{"role":"user","content":"Hi"}],"stream":true}`, 400, "application/json"},
		{"context_length_exceeded", "POST", "/v1/chat/completions", `{"model":"fake-chat","max_tokens":2000,"messages":[{"role":"user","content":"Hi"}]}`, 400, "application/json"},
		{"model_not_found", "POST", "/v1/completions", `{"model":"nope","prompt":"x"}`, 404, "application/json"},
		{"bad_param", "POST", "/v1/chat/completions", `{"model":"fake-chat","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}`, 400, "application/json"},
		{"server_error_hidden", "POST", "/v1/chat/completions", `{"model":"fake-broken","messages":[{"role":"user","content":"Hi"}]}`, 500, "application/json"},
		{"embeddings_float", "POST", "/v1/embeddings", `{"model":"fake-embed","input":["a","bcd"]}`, 200, "application/json"},
		{"embeddings_base64", "POST", "/v1/embeddings", `{"model":"fake-embed","input":[[1,2],[3]],"encoding_format":"base64"}`, 200, "application/json"},
		{"models", "GET", "/v1/models", "", 200, "application/json"},
		{"model_with_slash", "GET", "/v1/models/org/remote-model", "", 200, "application/json"},
		{"model_unknown", "GET", "/v1/models/nope", "", 404, "application/json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var res result
			if tc.method == "GET" {
				res = get(t, srv.URL, tc.path)
			} else {
				res = post(t, srv.URL, tc.path, tc.body)
			}
			if res.status != tc.status || res.header.Get("Content-Type") != tc.contentType {
				t.Errorf("%s %s: status %d, Content-Type %q; want %d, %q\n%s", tc.method, tc.path, res.status, res.header.Get("Content-Type"), tc.status, tc.contentType, res.body)
			}
			if tc.contentType == "text/event-stream" && res.header.Get("Cache-Control") != "no-cache" {
				t.Errorf("stream Cache-Control = %q, want no-cache", res.header.Get("Cache-Control"))
			}
			if bytes.Contains(res.body, []byte("10.0.0.7")) {
				t.Errorf("answer shows the server's internal error: %s", res.body)
			}
			golden(t, tc.name, res.body)
		})
	}
}

// TestRateLimitSendsRetryAfter: an *llm.Error's RetryAfter becomes the header a client
// backs off by, beside OpenAI's error body.
func TestRateLimitSendsRetryAfter(t *testing.T) {
	srv := serve(t, newTestHandler(newFakeBackend(), Options{}), 1<<20)
	res := post(t, srv.URL, "/v1/chat/completions", `{"model":"fake-busy","messages":[{"role":"user","content":"Hi"}]}`)
	if res.status != 429 || res.header.Get("Retry-After") != "3" {
		t.Fatalf("status %d, Retry-After %q; want 429, 3", res.status, res.header.Get("Retry-After"))
	}
	want := `{"error":{"message":"Rate limit reached for requests on key \"k1\"","type":"rate_limit_error","param":null,"code":"rate_limit_exceeded"}}`
	if string(res.body) != want {
		t.Errorf("body %s\nwant %s", res.body, want)
	}
}

// TestBodyOverTheLimitIs413: the root's body limit surfaces as OpenAI's error shape.
func TestBodyOverTheLimitIs413(t *testing.T) {
	srv := serve(t, newTestHandler(newFakeBackend(), Options{}), 64)
	res := post(t, srv.URL, "/v1/chat/completions", `{"model":"fake-chat","messages":[{"role":"user","content":"`+strings.Repeat("x", 100)+`"}]}`)
	if res.status != 413 || !bytes.Contains(res.body, []byte(`"type":"invalid_request_error"`)) {
		t.Fatalf("status %d body %s; want 413 invalid_request_error", res.status, res.body)
	}
}

// TestRequestReachesTheBackend: the key, the id and every sampling field arrive in the
// llm.Request the backend gets.
func TestRequestReachesTheBackend(t *testing.T) {
	f := newFakeBackend()
	srv := serve(t, newTestHandler(f, Options{}), 1<<20)
	res := post(t, srv.URL, "/v1/chat/completions", `{"model":"fake-chat","messages":[{"role":"developer","content":"Be brief."},{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}],"name":"ann"}],
		"max_completion_tokens":9,"temperature":0.5,"top_p":0.9,"seed":7,"stop":"\n","presence_penalty":0.1,"frequency_penalty":-0.1,"logit_bias":{"50256":-100},
		"user":"u1","top_k":40,"min_p":0.05,"repetition_penalty":1.1,"min_tokens":2,"ignore_eos":true,"stop_token_ids":[0,2],"unknown_extra":{"x":1},"response_format":{"type":"text"}}`)
	if res.status != 200 {
		t.Fatalf("status %d: %s", res.status, res.body)
	}
	seed := int64(7)
	want := &llm.Request{ID: "chatcmpl-test1", Model: "fake-chat", Kind: llm.Chat, Key: "sk-test-key", User: "u1",
		Messages: []llm.Message{{Role: "system", Content: "Be brief."}, {Role: "user", Content: "a\nb", Name: "ann"}},
		Sampling: llm.Sampling{Temperature: 0.5, TopP: 0.9, TopK: 40, MinP: 0.05, PresencePenalty: 0.1, FrequencyPenalty: -0.1,
			RepetitionPenalty: 1.1, Seed: &seed, MaxTokens: 9, MinTokens: 2, Stop: []string{"\n"}, StopTokenIDs: []int{0, 2},
			IgnoreEOS: true, LogitBias: map[int]float64{50256: -100}},
		ResponseFormat: json.RawMessage(`{"type":"text"}`)}
	got := f.lastRequest()
	if h := got.Header.Get("Content-Type"); h != "application/json" {
		t.Errorf("backend got header Content-Type %q, want the HTTP request's (routing rules read it)", h)
	}
	got.Header = nil
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("backend got (-want +got):\n%s", diff)
	}
}

// TestWrongChoiceIndexIs500: a backend emitting a choice the request did not ask for
// is a server error, not a panic or a silent drop.
func TestWrongChoiceIndexIs500(t *testing.T) {
	srv := serve(t, newTestHandler(newFakeBackend(), Options{}), 1<<20)
	for _, stream := range []string{"false", "true"} {
		res := post(t, srv.URL, "/v1/chat/completions", `{"model":"fake-wrong","stream":`+stream+`,"messages":[{"role":"user","content":"Hi"}]}`)
		if res.status != 500 || !bytes.Contains(res.body, []byte("server_error")) {
			t.Errorf("stream %s: status %d body %s; want a 500 server_error", stream, res.status, res.body)
		}
	}
}

// TestDisconnectCancelsBackend: a client leaving, mid-stream or while it waits for a
// whole answer, ends the request's context within 100 ms, and the backend's next emit
// fails, so it stops and frees what it held.
func TestDisconnectCancelsBackend(t *testing.T) {
	for _, stream := range []bool{true, false} {
		t.Run(fmt.Sprintf("stream=%v", stream), func(t *testing.T) {
			f := newFakeBackend()
			srv := serve(t, newTestHandler(f, Options{}), 1<<20)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/v1/chat/completions",
				strings.NewReader(fmt.Sprintf(`{"model":"fake-hang","stream":%v,"messages":[{"role":"user","content":"Hi"}]}`, stream)))
			if err != nil {
				t.Fatal(err)
			}
			left := make(chan time.Time, 1)
			if stream {
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				line, err := bufio.NewReader(resp.Body).ReadString('\n')
				if err != nil || !strings.HasPrefix(line, "data: {") {
					t.Fatalf("first line %q, %v; want a data event", line, err)
				}
				left <- time.Now()
				cancel() // the transport closes the connection
			} else {
				// Leave once the backend holds the request: a fixed delay raced a slow
				// machine, where the client gave up before the handler began.
				go func() { <-f.hangStarted; left <- time.Now(); cancel() }()
				if _, err := http.DefaultClient.Do(req); err == nil {
					t.Fatal("request succeeded after its client gave up")
				}
			}
			select {
			case end := <-f.hangEnded:
				if d := end.at.Sub(<-left); d > 100*time.Millisecond {
					t.Errorf("backend's context ended %v after the client left; want within 100ms", d)
				}
				if end.emitErr == nil {
					t.Error("emit after the client left returned nil; want an error that stops the backend")
				}
			case <-time.After(5 * time.Second):
				t.Fatal("backend's context did not end after the client left")
			}
		})
	}
}

// TestModelsList: /v1/models is a list of model objects and each id is answered alone.
func TestModelsList(t *testing.T) {
	srv := serve(t, newTestHandler(newFakeBackend(), Options{}), 1<<20)
	var list modelList
	if err := json.Unmarshal(get(t, srv.URL, "/v1/models").body, &list); err != nil {
		t.Fatal(err)
	}
	for _, m := range list.Data {
		var one modelObject
		res := get(t, srv.URL, "/v1/models/"+m.ID)
		if err := json.Unmarshal(res.body, &one); err != nil || res.status != 200 || one != m {
			t.Errorf("GET /v1/models/%s: %d %s; want %+v", m.ID, res.status, res.body, m)
		}
	}
}

// TestStreamThroughAWriterThatCannotFlush: a layer that hides http.Flusher (and has no
// Unwrap) delays the events but does not fail the stream.
func TestStreamThroughAWriterThatCannotFlush(t *testing.T) {
	hide := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(struct{ http.ResponseWriter }{w}, r)
		})
	}
	srv := serve(t, newTestHandler(newFakeBackend(), Options{}), 1<<20, hide)
	res := post(t, srv.URL, "/v1/completions", `{"model":"fake-chat","prompt":[1,2,3],"stream":true}`)
	if res.status != 200 || !bytes.HasSuffix(res.body, []byte("data: [DONE]\n\n")) {
		t.Fatalf("status %d body %s; want a whole stream", res.status, res.body)
	}
}

// TestUnknownRoutesAreOpenAIErrors: a path or method the API does not have is a 404 in
// OpenAI's error shape, not the server's V2 one.
func TestUnknownRoutesAreOpenAIErrors(t *testing.T) {
	mux := http.NewServeMux()
	New(newFakeBackend(), Options{}).Mount(mux)
	for _, tc := range []struct{ method, path string }{{"POST", "/v1/models"}, {"GET", "/v1/chat/completions"}, {"POST", "/v1/responses"}} {
		r := httptest.NewRequest(tc.method, tc.path, strings.NewReader("{}"))
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		want := `{"error":{"message":"Invalid URL (` + tc.method + " " + tc.path + `)","type":"invalid_request_error","param":null,"code":null}}`
		if w.Code != 404 || strings.TrimSpace(w.Body.String()) != want {
			t.Errorf("%s %s: %d %s, want 404 %s", tc.method, tc.path, w.Code, w.Body, want)
		}
	}
}
