package openai

import (
	"encoding/json"
	"math"

	"github.com/ferryml/ferry/internal/llm"
)

// The answer objects, field for field as OpenAI sends them. A nullable field is a
// pointer without omitempty, so it is written as null.

// answer is the envelope every answer shares: chat.completion, chat.completion.chunk
// and text_completion (whole or a chunk) differ only in their choices. Usage is a
// *usageJSON on a whole answer; on a chunk it is absent unless the client asked for
// stream_options.include_usage, and then null on every chunk but the last.
type answer[C any] struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	Model   string `json:"model"`
	Choices []C    `json:"choices"`
	Usage   any    `json:"usage,omitempty"`
}

type chatChoice struct {
	Index        int           `json:"index"`
	Message      chatMessage   `json:"message"`
	Logprobs     *chatLogprobs `json:"logprobs"`
	FinishReason *string       `json:"finish_reason"`
}

// chatMessage is the answer's message: content null when the answer is tool calls
// alone, as OpenAI writes it.
type chatMessage struct {
	Role      string          `json:"role"`
	Content   *string         `json:"content"`
	ToolCalls json.RawMessage `json:"tool_calls,omitempty"`
}

// textChoice is a completion's choice, whole or in a chunk.
type textChoice struct {
	Index        int           `json:"index"`
	Text         string        `json:"text"`
	Logprobs     *textLogprobs `json:"logprobs"`
	FinishReason *string       `json:"finish_reason"`
}

type chunkChoice struct {
	Index        int           `json:"index"`
	Delta        chunkDelta    `json:"delta"`
	Logprobs     *chatLogprobs `json:"logprobs"`
	FinishReason *string       `json:"finish_reason"`
}

// chunkDelta is a choice's new text; its first carries the role, and a last one with
// nothing new is {}.
type chunkDelta struct {
	Role      string          `json:"role,omitempty"`
	Content   *string         `json:"content,omitempty"`
	ToolCalls json.RawMessage `json:"tool_calls,omitempty"` // pieces, as the backend's upstream sent them
}

type usageJSON struct {
	PromptTokens        int            `json:"prompt_tokens"`
	CompletionTokens    int            `json:"completion_tokens"`
	TotalTokens         int            `json:"total_tokens"`
	PromptTokensDetails *promptDetails `json:"prompt_tokens_details,omitempty"`
}

type promptDetails struct {
	CachedTokens int `json:"cached_tokens"`
}

// toUsage is u on the wire. The seam cannot tell "no cached tokens" from "not known",
// so cached_tokens is written only when a prefix cache served some.
func toUsage(u llm.Usage) *usageJSON {
	out := &usageJSON{PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens, TotalTokens: u.Total()}
	if u.CachedTokens > 0 {
		out.PromptTokensDetails = &promptDetails{CachedTokens: u.CachedTokens}
	}
	return out
}

// chatLogprobs is a chat choice's logprobs: one entry per token.
type chatLogprobs struct {
	Content []tokenLogprob `json:"content"`
}

type tokenLogprob struct {
	Token       string       `json:"token"`
	Logprob     float64      `json:"logprob"`
	Bytes       []int        `json:"bytes"`
	TopLogprobs []topLogprob `json:"top_logprobs"`
}

type topLogprob struct {
	Token   string  `json:"token"`
	Logprob float64 `json:"logprob"`
	Bytes   []int   `json:"bytes"`
}

// textLogprobs is a completion choice's logprobs, in the legacy parallel-array form.
type textLogprobs struct {
	Tokens        []string             `json:"tokens"`
	TokenLogprobs []float64            `json:"token_logprobs"`
	TopLogprobs   []map[string]float64 `json:"top_logprobs"`
	TextOffset    []int                `json:"text_offset"`
}

// finiteLogprob keeps a logprob JSON can carry: -Inf (a token masked out) becomes
// -9999, as vLLM writes it.
func finiteLogprob(x float64) float64 {
	if math.IsNaN(x) || x < -9999 {
		return -9999
	}
	return x
}

func utf8Bytes(s string) []int {
	b := make([]int, len(s))
	for i := range len(s) {
		b[i] = int(s[i])
	}
	return b
}

// appendChat appends lps to a chat choice's logprobs.
func appendChat(dst *chatLogprobs, lps []llm.Logprob) *chatLogprobs {
	if dst == nil {
		dst = &chatLogprobs{Content: []tokenLogprob{}}
	}
	for _, lp := range lps {
		t := tokenLogprob{Token: lp.Token, Logprob: finiteLogprob(lp.Logprob), Bytes: utf8Bytes(lp.Token), TopLogprobs: make([]topLogprob, len(lp.Top))}
		for i, alt := range lp.Top {
			t.TopLogprobs[i] = topLogprob{Token: alt.Token, Logprob: finiteLogprob(alt.Logprob), Bytes: utf8Bytes(alt.Token)}
		}
		dst.Content = append(dst.Content, t)
	}
	return dst
}

// appendText appends lps to a completion choice's logprobs; offset is where the first
// token's text starts in the choice's text.
func appendText(dst *textLogprobs, lps []llm.Logprob, offset int) *textLogprobs {
	if dst == nil {
		dst = &textLogprobs{Tokens: []string{}, TokenLogprobs: []float64{}, TopLogprobs: []map[string]float64{}, TextOffset: []int{}}
	}
	for _, lp := range lps {
		top := make(map[string]float64, len(lp.Top))
		for _, alt := range lp.Top {
			top[alt.Token] = finiteLogprob(alt.Logprob)
		}
		dst.Tokens = append(dst.Tokens, lp.Token)
		dst.TokenLogprobs = append(dst.TokenLogprobs, finiteLogprob(lp.Logprob))
		dst.TopLogprobs = append(dst.TopLogprobs, top)
		dst.TextOffset = append(dst.TextOffset, offset)
		offset += len(lp.Token)
	}
	return dst
}
