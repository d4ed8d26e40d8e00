package openai

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/ferryml/ferry/internal/llm"
	"github.com/ferryml/ferry/internal/transport/middleware"
)

// The fake backend's models. Each scripts one behaviour the edge must carry to the
// client; the node client test uses the first two and the error models.
const (
	chatModel   = "fake-chat"   // "Hello", ", world", "!" per choice; prompt+max_tokens past 1024 is context_length_exceeded
	embedModel  = "fake-embed"  // 4-dimensional vectors
	busyModel   = "fake-busy"   // 429 rate_limit_exceeded, Retry-After: 3
	brokenModel = "fake-broken" // a plain error: a 500 that must not show it
	midModel    = "fake-mid"    // one delta, then a plain error
	hangModel   = "fake-hang"   // one delta, then waits for the request's context to end
	slowModel   = "fake-slow"   // waits 40 s (fake time, in synctest) before each delta
	wrongModel  = "fake-wrong"  // emits a delta for a choice the request did not ask for
	manyModel   = "fake-many"   // max_tokens deltas of one token each, at once (benchmarks)
)

// fakeContext is the fake chat model's context window.
const fakeContext = 1024

// secret is in the broken model's error; it must never reach a client.
const secret = "dial tcp 10.0.0.7:5432: connection refused"

// fakeBackend is a scripted llm.Backend. It records the last requests it saw.
type fakeBackend struct {
	mu        sync.Mutex
	last      *llm.Request
	lastEmbed *llm.EmbedRequest
	// hangStarted receives when hangModel has emitted its first delta; hangEnded when it saw its
	// context end, and what its next emit returned.
	hangStarted chan struct{}
	hangEnded   chan hangEnd
}

type hangEnd struct {
	at      time.Time
	emitErr error
}

var _ llm.Backend = (*fakeBackend)(nil)

func newFakeBackend() *fakeBackend {
	return &fakeBackend{hangStarted: make(chan struct{}, 1), hangEnded: make(chan hangEnd, 1)}
}

func (f *fakeBackend) lastRequest() *llm.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last
}

func (f *fakeBackend) Models(ctx context.Context) ([]llm.ModelInfo, error) {
	return []llm.ModelInfo{
		{ID: chatModel, OwnedBy: "ferry", Created: 1700000000, ContextLength: fakeContext},
		{ID: embedModel, OwnedBy: "ferry", Created: 1700000001, Embeddings: true},
		{ID: "org/remote-model", OwnedBy: "upstream-a", Created: 1700000002},
	}, nil
}

// fakeTokens counts a request's prompt tokens as the fake sees them: one per byte of
// text or per token id, simple and predictable.
func fakeTokens(req *llm.Request) int {
	n := len(req.Prompt) + len(req.PromptTokens)
	for _, m := range req.Messages {
		n += len(m.Content)
	}
	return n
}

func (f *fakeBackend) Generate(ctx context.Context, req *llm.Request, emit func(llm.Delta) error) (llm.Usage, error) {
	f.mu.Lock()
	f.last = req
	f.mu.Unlock()
	switch req.Model {
	case chatModel:
		prompt := fakeTokens(req)
		if prompt+req.Sampling.MaxTokens > fakeContext {
			return llm.Usage{}, llm.ContextLengthExceeded(req.Model, fakeContext, prompt, req.Sampling.MaxTokens)
		}
		return f.hello(req, prompt, emit)
	case busyModel:
		return llm.Usage{}, llm.RateLimited(3, "Rate limit reached for requests on key %q", "k1")
	case brokenModel:
		return llm.Usage{}, errors.New(secret)
	case midModel:
		if err := emit(llm.Delta{Role: "assistant", Text: "Hel"}); err != nil {
			return llm.Usage{}, err
		}
		return llm.Usage{}, fmt.Errorf("engine: %s", secret)
	case hangModel:
		if err := emit(llm.Delta{Role: "assistant", Text: "Hel"}); err != nil {
			return llm.Usage{}, err
		}
		// Only now: a client that left on hangStarted before this first emit made it
		// fail, and the model returned without reporting hangEnded (1 run in ~200).
		select {
		case f.hangStarted <- struct{}{}:
		default:
		}
		<-ctx.Done()
		end := hangEnd{at: time.Now(), emitErr: emit(llm.Delta{Text: "lo"})} // must fail: the client left
		f.hangEnded <- end
		return llm.Usage{}, end.emitErr
	case slowModel:
		for _, d := range []llm.Delta{{Role: "assistant", Text: "slow"}, {Text: " answer", FinishReason: "length"}} {
			time.Sleep(40 * time.Second)
			if err := emit(d); err != nil {
				return llm.Usage{}, err
			}
		}
		return llm.Usage{PromptTokens: 1, CompletionTokens: 2}, nil
	case manyModel:
		for i := range req.Sampling.MaxTokens {
			d := llm.Delta{Text: " tok", TokenIDs: []int{i}}
			if i == req.Sampling.MaxTokens-1 {
				d.FinishReason = "length"
			}
			if err := emit(d); err != nil {
				return llm.Usage{}, err
			}
		}
		return llm.Usage{PromptTokens: 1, CompletionTokens: req.Sampling.MaxTokens}, nil
	case wrongModel:
		return llm.Usage{}, emit(llm.Delta{Index: 5, Text: "x"})
	}
	return llm.Usage{}, llm.ModelNotFound(req.Model)
}

// hello emits "Hello, world!" for each choice in three Deltas, interleaving choices as
// a batched engine does, with logprobs when asked.
func (f *fakeBackend) hello(req *llm.Request, prompt int, emit func(llm.Delta) error) (llm.Usage, error) {
	pieces := []string{"Hello", ", world", "!"}
	n := max(req.N, 1)
	for p, text := range pieces {
		for i := range n {
			d := llm.Delta{Index: i, Text: text}
			if p == 0 {
				d.Role = "assistant"
			}
			if p == len(pieces)-1 {
				d.FinishReason = "stop"
			}
			if req.Sampling.WantLogprobs {
				d.TokenIDs = []int{100 + p}
				d.Logprobs = []llm.Logprob{{Token: text, ID: 100 + p, Logprob: -0.25 * float64(p+1)}}
				for k := range req.Sampling.Logprobs {
					d.Logprobs[0].Top = append(d.Logprobs[0].Top, llm.TopLogprob{Token: fmt.Sprintf("alt%d", k), ID: k, Logprob: -1 - float64(k)})
				}
			}
			if err := emit(d); err != nil {
				return llm.Usage{}, err
			}
		}
	}
	return llm.Usage{PromptTokens: prompt, CompletionTokens: len(pieces) * n, CachedTokens: 2}, nil
}

func (f *fakeBackend) Embed(ctx context.Context, req *llm.EmbedRequest) (*llm.EmbedResponse, error) {
	f.mu.Lock()
	f.lastEmbed = req
	f.mu.Unlock()
	if req.Model != embedModel {
		return nil, llm.ModelNotFound(req.Model)
	}
	resp := &llm.EmbedResponse{}
	for i, in := range req.Input {
		resp.Vectors = append(resp.Vectors, []float32{float32(len(in)), 0.5, -1.25, float32(i)})
		resp.Usage.PromptTokens += len(in)
	}
	for i, ids := range req.Tokens {
		resp.Vectors = append(resp.Vectors, []float32{float32(len(ids)), 0.5, -1.25, float32(i)})
		resp.Usage.PromptTokens += len(ids)
	}
	return resp, nil
}

// newTestHandler is a Handler over f with a fixed clock and sequential ids, so answers
// are the same bytes on every run.
func newTestHandler(f *fakeBackend, opts Options) *Handler {
	h := New(f, opts)
	h.now = func() time.Time { return time.Unix(1733500000, 0) }
	var mu sync.Mutex
	n := 0
	h.newID = func(prefix string) string {
		mu.Lock()
		defer mu.Unlock()
		n++
		return fmt.Sprintf("%stest%d", prefix, n)
	}
	return h
}

// serve mounts h on a root built as cmd/ferry builds its own (routes.go): one mux,
// wrapped in the JSON 404s, panic recovery, the refusal of browser writes, a body
// limit and more (innermost), behind a real socket.
func serve(t testing.TB, h *Handler, maxBody int64, more ...middleware.Layer) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	h.Mount(mux)
	layers := []middleware.Layer{middleware.Recover(h.log), middleware.RefuseBrowserWrites(), middleware.LimitBody(maxBody)}
	root := middleware.Chain(middleware.JSONErrors(mux), append(layers, more...)...)
	srv := httptest.NewServer(root)
	t.Cleanup(srv.Close)
	return srv
}
