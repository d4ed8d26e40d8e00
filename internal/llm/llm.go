package llm

import (
	"context"
	"encoding/json"
	"net/http"
)

// Kind is what a Request asks for.
type Kind int

const (
	// Chat renders Messages through the model's chat template (/v1/chat/completions).
	Chat Kind = iota
	// Completion continues Prompt (or PromptTokens) as given (/v1/completions).
	Completion
)

// Message is one turn of a chat.
type Message struct {
	Role    string `json:"role"` // system, user, assistant, tool
	Content string `json:"content"`
	Name    string `json:"name,omitempty"`
	// ToolCalls is an assistant turn's tool_calls, as the client sent them (a JSON
	// array); ToolCallID is the call a "tool" turn answers. Only a backend that takes
	// tools (Request.Tools) reads them; the others refuse them (Request.Unsupported).
	ToolCalls  json.RawMessage `json:"tool_calls,omitempty"`
	ToolCallID string          `json:"tool_call_id,omitempty"`
}

// Sampling holds the sampling parameters of llm.md §1.2, with vLLM's meanings. The
// zero value is not OpenAI's default: use DefaultSampling and set what a request gives.
type Sampling struct {
	Temperature       float64 // 0 = greedy
	TopP              float64 // 1 = off
	TopK              int     // 0 or -1 = off
	MinP              float64 // 0 = off
	PresencePenalty   float64 // 0 = off; OpenAI's range -2..2
	FrequencyPenalty  float64 // 0 = off; OpenAI's range -2..2
	RepetitionPenalty float64 // 1 = off; vLLM's multiplicative penalty over prompt and output
	Seed              *int64  // nil: a fresh random seed per request
	MaxTokens         int     // 0: up to the context window
	MinTokens         int     // end-of-sequence and stop tokens are suppressed until this many
	Stop              []string
	StopTokenIDs      []int
	IgnoreEOS         bool
	Logprobs          int // return this many top alternatives per token; 0 = none
	WantLogprobs      bool
	LogitBias         map[int]float64
}

// DefaultSampling is OpenAI's defaults: temperature 1, top_p 1, no penalties.
func DefaultSampling() Sampling {
	return Sampling{Temperature: 1, TopP: 1, RepetitionPenalty: 1}
}

// Request is one chat or completion request, whatever protocol brought it.
type Request struct {
	ID           string // the edge's request id (chatcmpl-..., cmpl-...)
	Model        string // as the client named it: an alias the gateway resolves, or a native model
	Kind         Kind
	Messages     []Message // Chat
	Prompt       string    // Completion
	PromptTokens []int     // Completion given as token ids (then Prompt is empty)
	Sampling     Sampling
	N            int    // choices to generate; 0 or 1 = one
	Echo         bool   // Completion: the prompt is sent back before the answer
	Key          string // the API key the client presented (Authorization: Bearer), "" for none
	User         string // OpenAI's end-user id, for logs
	// Tools, ToolChoice and ResponseFormat are OpenAI's fields as the client sent them
	// (JSON; nil when absent), for a backend that passes them on: the gateway sends them
	// to its upstreams. A backend that cannot honour them refuses the request
	// (Unsupported), never answers as if they had been.
	Tools, ToolChoice, ResponseFormat json.RawMessage
	// Stream is whether the client reads a stream. Backends emit Deltas either way; the
	// gateway uses it to choose how it calls an upstream.
	Stream bool
	// Version is the model version to serve (a native model's version folder): "" is
	// the model's default, or whatever its endpoint's routing policy picks.
	Version string
	// Header is the HTTP request's header, read by routing rules (a match or sticky
	// key on a header); nil when the request came some other way. Shared with the
	// edge: read it only while the request is being served.
	Header http.Header
}

// Delta is one piece of one choice's answer. A choice's last Delta has FinishReason
// set ("stop", "length", or "abort" when the client left), and may carry text too.
type Delta struct {
	Index        int    // the choice, 0..N-1
	Role         string // "assistant" on a chat choice's first Delta
	Text         string
	TokenIDs     []int     // the tokens Text came from, when the backend knows them
	Logprobs     []Logprob // one per token, when Sampling.WantLogprobs
	FinishReason string    // "" until the choice ends ("tool_calls" when it ends on them)
	// ToolCalls is the choice's tool_calls (a JSON array) as an upstream sent them:
	// whole in an answer, in pieces (elements with an "index", arguments in fragments)
	// in a stream's chunks; MergeToolCalls puts pieces together.
	ToolCalls json.RawMessage
}

// Logprob is one sampled token's log probability and its best alternatives.
type Logprob struct {
	Token   string
	ID      int
	Logprob float64
	Top     []TopLogprob
}

// TopLogprob is one alternative at a position.
type TopLogprob struct {
	Token   string
	ID      int
	Logprob float64
}

// Usage counts one exchange's tokens, as OpenAI's usage object does.
type Usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	// CachedTokens is how many prompt tokens came from a prefix cache
	// (prompt_tokens_details.cached_tokens).
	CachedTokens int `json:"-"`
}

// Total is prompt plus completion tokens.
func (u Usage) Total() int { return u.PromptTokens + u.CompletionTokens }

// EmbedRequest asks for one vector per input.
type EmbedRequest struct {
	Model  string
	Input  []string // texts; or
	Tokens [][]int  // token ids (then Input is empty)
	Key    string
	User   string
	// Version and Header are Request's.
	Version string
	Header  http.Header
}

// EmbedResponse holds one vector per input, in order.
type EmbedResponse struct {
	Vectors [][]float32
	Usage   Usage // PromptTokens only
}

// ModelInfo is one entry of /v1/models.
type ModelInfo struct {
	ID            string
	OwnedBy       string // "ferry" for native models, the upstream's name otherwise
	Created       int64  // unix seconds
	ContextLength int    // 0 when unknown
	Embeddings    bool   // answers /v1/embeddings
}

// Backend answers LLM requests. Generate calls emit once per Delta, in order, from one
// goroutine at a time; an error from emit (the client left) stops generation at once
// and frees what the request held, and Generate returns that error. Generate returns
// the exchange's Usage when every choice has finished. Errors a client should see are
// *Error; anything else is a 500.
type Backend interface {
	Models(ctx context.Context) ([]ModelInfo, error)
	Generate(ctx context.Context, req *Request, emit func(Delta) error) (Usage, error)
	Embed(ctx context.Context, req *EmbedRequest) (*EmbedResponse, error)
}
