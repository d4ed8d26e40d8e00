package openai

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"

	"github.com/ferryml/ferry/internal/transport/openai/openaitest"
)

// nodeResults is what openaitest/openai_client.mjs prints, as far as the test reads it.
type nodeResults struct {
	Chat struct {
		ID, Object, Model, Role, Content, FinishReason string
		Usage                                          map[string]any
	}
	ChatStream       streamResult
	Completion       struct{ ID, Object, Model, Text, FinishReason string }
	CompletionStream streamResult
	EmbedBase64      embedResult
	EmbedFloat       embedResult
	Models           struct {
		Data []struct {
			ID, Object string
			OwnedBy    string `json:"owned_by"`
		}
		Retrieved string
	}
	ContextLength, NotFound, RateLimited clientError
}

type streamResult struct {
	Chunks, UsageChunks, EmptyChoiceChunks int
	Text, FirstRole                        string
	FinishReasons, Objects                 []string
	Usage                                  map[string]any
}

type embedResult struct {
	Object      string
	Count, Dims int
	IsArray     bool
	Head        []float64
}

type clientError struct {
	Class             string
	Status            int
	Code, Param, Type string
	Message           string
}

// TestOpenAINodeClient drives the edge with the official openai npm client, the way
// most applications call an OpenAI-compatible server: chat and completions, streamed
// (with include_usage) and not, embeddings by the client's default base64 path and as
// floats, the model list, and the errors it must type (BadRequestError with its code,
// NotFoundError, RateLimitError without retries).
func TestOpenAINodeClient(t *testing.T) {
	prefix := openaitest.Install(t)
	formats := &embedFormats{}
	srv := serve(t, newTestHandler(newFakeBackend(), Options{}), 1<<20, formats.record)
	line := openaitest.Run(t, prefix, srv.URL+"/v1", chatModel, embedModel, busyModel)
	var got nodeResults
	if err := json.Unmarshal(line, &got); err != nil {
		t.Fatalf("reading the script's results: %v\n%s", err, line)
	}
	t.Logf("openai@%s saw: %s", openaitest.Version, line)
	checks := []struct {
		what      string
		got, want any
	}{
		{"chat object", got.Chat.Object, "chat.completion"},
		{"chat content", got.Chat.Content, "Hello, world!"},
		{"chat role", got.Chat.Role, "assistant"},
		{"chat finish_reason", got.Chat.FinishReason, "stop"},
		{"chat usage", fmt.Sprint(got.Chat.Usage), "map[completion_tokens:3 prompt_tokens:10 prompt_tokens_details:map[cached_tokens:2] total_tokens:13]"},
		{"chat stream text", got.ChatStream.Text, "Hello, world!"},
		{"chat stream first role", got.ChatStream.FirstRole, "assistant"},
		{"chat stream objects", fmt.Sprint(got.ChatStream.Objects), "[chat.completion.chunk]"},
		{"chat stream finish reasons", fmt.Sprint(got.ChatStream.FinishReasons), "[stop]"},
		{"chat stream usage chunks", got.ChatStream.UsageChunks, 1},
		{"chat stream empty-choice chunks", got.ChatStream.EmptyChoiceChunks, 1},
		{"chat stream usage", fmt.Sprint(got.ChatStream.Usage), "map[completion_tokens:3 prompt_tokens:10 prompt_tokens_details:map[cached_tokens:2] total_tokens:13]"},
		{"completion object", got.Completion.Object, "text_completion"},
		{"completion text", got.Completion.Text, "Hello, world!"},
		{"completion stream text", got.CompletionStream.Text, "Hello, world!"},
		{"completion stream chunks", got.CompletionStream.Chunks, 3},
		{"completion stream usage chunks", got.CompletionStream.UsageChunks, 0},
		// The client asks for base64 unless told otherwise and decodes the bytes itself:
		// the same numbers by both paths prove the byte order and the encoding.
		{"embeddings encoding_format sent", fmt.Sprint(formats.get()), "[base64 float]"},
		{"embeddings base64", fmt.Sprint(got.EmbedBase64), "{list 2 4 true [5 0.5 -1.25 0]}"},
		{"embeddings float", fmt.Sprint(got.EmbedFloat), "{list 2 4 true [5 0.5 -1.25 0]}"},
		{"models", fmt.Sprint(got.Models), "{[{fake-chat model ferry} {fake-embed model ferry} {org/remote-model model upstream-a}] fake-chat}"},
		{"context length error", got.ContextLength, clientError{Class: "BadRequestError", Status: 400, Code: "context_length_exceeded", Param: "messages", Type: "invalid_request_error",
			Message: "400 This model's maximum context length is 1024 tokens. However, you requested 10000010 tokens (10 in the messages, 10000000 in the completion). Please reduce the length of the messages or completion."}},
		{"unknown model error", got.NotFound, clientError{Class: "NotFoundError", Status: 404, Code: "model_not_found", Param: "model", Type: "invalid_request_error",
			Message: "404 The model `no-such-model-ferry-test` does not exist or you do not have access to it."}},
		{"rate limit error", got.RateLimited, clientError{Class: "RateLimitError", Status: 429, Code: "rate_limit_exceeded", Type: "rate_limit_error",
			Message: "429 Rate limit reached for requests on key \"k1\""}},
	}
	for _, c := range checks {
		if fmt.Sprint(c.got) != fmt.Sprint(c.want) {
			t.Errorf("%s: got %v, want %v", c.what, c.got, c.want)
		}
	}
}

// embedFormats records the encoding_format of each embeddings request that passes.
type embedFormats struct {
	mu   sync.Mutex
	seen []string
}

func (e *embedFormats) record(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/embeddings" {
			body, _ := io.ReadAll(r.Body)
			var b struct {
				EncodingFormat string `json:"encoding_format"`
			}
			_ = json.Unmarshal(body, &b)
			e.mu.Lock()
			e.seen = append(e.seen, b.EncodingFormat)
			e.mu.Unlock()
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		next.ServeHTTP(w, r)
	})
}

func (e *embedFormats) get() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.seen...)
}
