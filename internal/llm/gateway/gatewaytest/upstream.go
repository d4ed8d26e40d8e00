package gatewaytest

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferryml/ferry/internal/llm"
)

// Reply scripts one answer of the fake upstream.
type Reply struct {
	Status      int           // 0 or 200: success; otherwise an OpenAI error object with this status
	RetryAfter  int           // seconds, sent as Retry-After with an error status
	HeaderDelay time.Duration // before the status line is written
	ChunkDelay  time.Duration // before each streamed chunk; a whole answer waits for all of them
	// Chunks are the answer's pieces of text, one per streamed chunk; nil means
	// "Hello", " world".
	Chunks       []string
	FinishReason string // default "stop"
	OmitUsage    bool   // send no usage, streamed or not
	// Usage is what the upstream reports; nil means 10 prompt tokens and one
	// completion token per chunk.
	Usage *llm.Usage
	// DropAfter > 0 aborts the connection after that many chunks were sent: no finish
	// chunk, no usage, no [DONE] (a whole answer is aborted before its body). Less
	// than 0 aborts before the status line.
	DropAfter int
	Comments  bool // a ": keep-alive" comment before every chunk
	// Vectors answer /v1/embeddings; nil means a 4-float vector per input [i, 1, 2, 3].
	Vectors [][]float32
	// ToolCalls, on a chat answer, come after its text chunks: whole in a whole answer,
	// streamed as OpenAI streams them (a first piece with the id and name, then the
	// arguments in two fragments). FinishReason then defaults to "tool_calls".
	ToolCalls []ToolCall
	// Logprobs gives every chunk of text its logprobs, in the endpoint's form: chunk i
	// (from 0) has logprob -(i+1)/2 and the alternatives itself and "x" at -3.
	Logprobs bool
}

// ToolCall is one function call of a scripted answer.
type ToolCall struct {
	ID, Name, Arguments string
}

// Script picks the reply to the n-th request (n from 0, counted over every endpoint
// but /metrics and /v1/models).
type Script func(n int, req Request) Reply

// Always answers every request with r.
func Always(r Reply) Script { return func(int, Request) Reply { return r } }

// Sequence answers the i-th request with rs[i] and every later one with the last.
func Sequence(rs ...Reply) Script {
	return func(n int, _ Request) Reply { return rs[min(n, len(rs)-1)] }
}

// Request is what the fake upstream received.
type Request struct {
	Path         string
	Model        string
	Stream       bool
	IncludeUsage bool
	MaxTokens    int
	Messages     []llm.Message
	Prompt       any
	Input        any
	Auth         string // the Authorization header
	Body         []byte
	At           time.Time
}

// Upstream is a fake OpenAI-compatible server on 127.0.0.1. It is closed when the
// test ends.
type Upstream struct {
	URL string

	srv     *httptest.Server
	script  atomic.Pointer[Script]
	mu      sync.Mutex
	reqs    []Request // guarded by mu
	n       atomic.Int64
	running atomic.Uint64 // float64 bits of the /metrics gauges
	waiting atomic.Uint64
	kv      atomic.Uint64
}

// NewUpstream starts a fake upstream answering by s.
func NewUpstream(t testing.TB, s Script) *Upstream {
	t.Helper()
	u := &Upstream{}
	u.script.Store(&s)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", u.generate)
	mux.HandleFunc("POST /v1/completions", u.generate)
	mux.HandleFunc("POST /v1/embeddings", u.embed)
	mux.HandleFunc("GET /v1/models", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"object":"list","data":[{"id":"fake-model","object":"model","owned_by":"gatewaytest"}]}`)
	})
	mux.HandleFunc("GET /metrics", u.metrics)
	u.srv = httptest.NewServer(mux)
	u.URL = u.srv.URL
	t.Cleanup(u.srv.Close)
	return u
}

// SetScript replaces the script for later requests.
func (u *Upstream) SetScript(s Script) { u.script.Store(&s) }

// SetGauges sets the vLLM gauges /metrics reports.
func (u *Upstream) SetGauges(running, waiting, kvUsage float64) {
	u.running.Store(math.Float64bits(running))
	u.waiting.Store(math.Float64bits(waiting))
	u.kv.Store(math.Float64bits(kvUsage))
}

// Requests returns a copy of the requests received so far, in arrival order.
func (u *Upstream) Requests() []Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]Request(nil), u.reqs...)
}

// Count is how many scripted requests arrived.
func (u *Upstream) Count() int { return int(u.n.Load()) }

// Forget drops the recorded requests (Count keeps counting), so a long run's memory
// measures the server, not this record.
func (u *Upstream) Forget() {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.reqs = nil
}

func (u *Upstream) metrics(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	f := func(a *atomic.Uint64) float64 { return math.Float64frombits(a.Load()) }
	fmt.Fprintf(w, "# HELP vllm:num_requests_running Running.\n# TYPE vllm:num_requests_running gauge\n"+
		"vllm:num_requests_running{model_name=\"fake-model\"} %g\n"+
		"# TYPE vllm:num_requests_waiting gauge\nvllm:num_requests_waiting{model_name=\"fake-model\"} %g\n"+
		"# TYPE vllm:kv_cache_usage_perc gauge\nvllm:kv_cache_usage_perc{model_name=\"fake-model\"} %g\n",
		f(&u.running), f(&u.waiting), f(&u.kv))
}

// receive records the request and returns its scripted reply.
func (u *Upstream) receive(r *http.Request, body []byte) (Request, Reply, error) {
	var in struct {
		Model         string        `json:"model"`
		Stream        bool          `json:"stream"`
		MaxTokens     int           `json:"max_tokens"`
		Messages      []llm.Message `json:"messages"`
		Prompt        any           `json:"prompt"`
		Input         any           `json:"input"`
		StreamOptions *struct {
			IncludeUsage bool `json:"include_usage"`
		} `json:"stream_options"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return Request{}, Reply{}, err
	}
	req := Request{Path: r.URL.Path, Model: in.Model, Stream: in.Stream, MaxTokens: in.MaxTokens, Messages: in.Messages,
		Prompt: in.Prompt, Input: in.Input, Auth: r.Header.Get("Authorization"), Body: body, At: time.Now(),
		IncludeUsage: in.StreamOptions != nil && in.StreamOptions.IncludeUsage}
	n := int(u.n.Add(1)) - 1
	u.mu.Lock()
	u.reqs = append(u.reqs, req)
	u.mu.Unlock()
	return req, (*u.script.Load())(n, req), nil
}

// start waits out the header delay and writes an error status when scripted; it
// reports whether the handler should go on.
func start(w http.ResponseWriter, r *http.Request, rep Reply) bool {
	if !sleep(r, rep.HeaderDelay) {
		return false
	}
	if rep.DropAfter < 0 {
		panic(http.ErrAbortHandler)
	}
	if rep.Status != 0 && rep.Status != http.StatusOK {
		if rep.RetryAfter > 0 {
			w.Header().Set("Retry-After", fmt.Sprint(rep.RetryAfter))
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(rep.Status)
		fmt.Fprintf(w, `{"error":{"message":"scripted status %d","type":"server_error","param":null,"code":"scripted"}}`, rep.Status)
		return false
	}
	return true
}

func sleep(r *http.Request, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}
