package gateway

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/ferryml/ferry/internal/llm"
)

// wireRequest is an OpenAI chat or completion request body. vLLM's extra sampling
// parameters are sent only to kinds that accept them and only when they differ from
// "off", because OpenAI rejects fields it does not know.
type wireRequest struct {
	Model             string             `json:"model"`
	Messages          []llm.Message      `json:"messages,omitempty"`
	Prompt            any                `json:"prompt,omitempty"`
	MaxTokens         int                `json:"max_tokens,omitempty"`
	Temperature       float64            `json:"temperature"`
	TopP              float64            `json:"top_p"`
	N                 int                `json:"n,omitempty"`
	Stop              []string           `json:"stop,omitempty"`
	Seed              *int64             `json:"seed,omitempty"`
	PresencePenalty   float64            `json:"presence_penalty,omitempty"`
	FrequencyPenalty  float64            `json:"frequency_penalty,omitempty"`
	LogitBias         map[string]float64 `json:"logit_bias,omitempty"`
	User              string             `json:"user,omitempty"`
	Echo              bool               `json:"echo,omitempty"`
	Stream            bool               `json:"stream,omitempty"`
	StreamOptions     *streamOptions     `json:"stream_options,omitempty"`
	TopK              int                `json:"top_k,omitempty"`
	MinP              float64            `json:"min_p,omitempty"`
	RepetitionPenalty float64            `json:"repetition_penalty,omitempty"`
	MinTokens         int                `json:"min_tokens,omitempty"`
	IgnoreEOS         bool               `json:"ignore_eos,omitempty"`
	StopTokenIDs      []int              `json:"stop_token_ids,omitempty"`
	// Logprobs is true (chat) or the number of alternatives (completions), as each
	// endpoint takes it; TopLogprobs is chat's number of alternatives.
	Logprobs    any  `json:"logprobs,omitempty"`
	TopLogprobs *int `json:"top_logprobs,omitempty"`
	// The client's tools and structured output, passed on as they came.
	Tools          json.RawMessage `json:"tools,omitempty"`
	ToolChoice     json.RawMessage `json:"tool_choice,omitempty"`
	ResponseFormat json.RawMessage `json:"response_format,omitempty"`
}

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

// wireChunk is a streamed chunk or a whole response, chat or completion: the fields
// that do not apply stay empty.
type wireChunk struct {
	Choices []struct {
		Index        int           `json:"index"`
		Text         string        `json:"text"`
		FinishReason *string       `json:"finish_reason"`
		Delta        *wireMessage  `json:"delta"`
		Message      *wireMessage  `json:"message"`
		Logprobs     *wireLogprobs `json:"logprobs"`
	} `json:"choices"`
	Usage *wireUsage `json:"usage"`
	// Error is an error event some servers (vLLM) send inside a stream.
	Error *struct {
		Message string `json:"message"`
	} `json:"error"`
}

// wireMessage is a chat answer's message or a chunk's delta.
type wireMessage struct {
	Role      string          `json:"role"`
	Content   string          `json:"content"`
	ToolCalls json.RawMessage `json:"tool_calls"`
}

// wireLogprobs is a choice's logprobs in either form: chat's (content, one entry per
// token) or the completions' parallel arrays.
type wireLogprobs struct {
	Content []struct {
		Token       string  `json:"token"`
		Logprob     float64 `json:"logprob"`
		TopLogprobs []struct {
			Token   string  `json:"token"`
			Logprob float64 `json:"logprob"`
		} `json:"top_logprobs"`
	} `json:"content"`
	Tokens        []string             `json:"tokens"`
	TokenLogprobs []*float64           `json:"token_logprobs"` // null for an echoed prompt's first token
	TopLogprobs   []map[string]float64 `json:"top_logprobs"`
}

// logprobs are w's entries as the seam holds them (token ids are the upstream's
// business: 0). A completion's alternatives, a JSON object, come best first.
func (w *wireLogprobs) logprobs() []llm.Logprob {
	if w == nil {
		return nil
	}
	var out []llm.Logprob
	for _, c := range w.Content {
		lp := llm.Logprob{Token: c.Token, Logprob: c.Logprob}
		for _, t := range c.TopLogprobs {
			lp.Top = append(lp.Top, llm.TopLogprob{Token: t.Token, Logprob: t.Logprob})
		}
		out = append(out, lp)
	}
	for i, tok := range w.Tokens {
		lp := llm.Logprob{Token: tok, Logprob: math.Inf(-1)}
		if i < len(w.TokenLogprobs) && w.TokenLogprobs[i] != nil {
			lp.Logprob = *w.TokenLogprobs[i]
		}
		if i < len(w.TopLogprobs) {
			for t, v := range w.TopLogprobs[i] {
				lp.Top = append(lp.Top, llm.TopLogprob{Token: t, Logprob: v})
			}
			slices.SortFunc(lp.Top, func(a, b llm.TopLogprob) int {
				return cmp.Or(cmp.Compare(b.Logprob, a.Logprob), cmp.Compare(a.Token, b.Token))
			})
		}
		out = append(out, lp)
	}
	return out
}

type wireUsage struct {
	PromptTokens        int `json:"prompt_tokens"`
	CompletionTokens    int `json:"completion_tokens"`
	PromptTokensDetails *struct {
		CachedTokens int `json:"cached_tokens"`
	} `json:"prompt_tokens_details"`
}

func (u *wireUsage) usage() llm.Usage {
	out := llm.Usage{PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens}
	if u.PromptTokensDetails != nil {
		out.CachedTokens = u.PromptTokensDetails.CachedTokens
	}
	return out
}

type wireEmbedRequest struct {
	Model string `json:"model"`
	Input any    `json:"input"`
	User  string `json:"user,omitempty"`
}

type wireEmbedResponse struct {
	Data []struct {
		Index     int       `json:"index"`
		Embedding []float32 `json:"embedding"`
	} `json:"data"`
	Usage *wireUsage `json:"usage"`
}

// buildRequest turns req into the body for upstream kind, asking for at most maxTokens.
func buildRequest(kind, modelID string, req *llm.Request, maxTokens int) wireRequest {
	s := req.Sampling
	w := wireRequest{Model: modelID, MaxTokens: maxTokens, Temperature: s.Temperature, TopP: s.TopP,
		Stop: s.Stop, Seed: s.Seed, PresencePenalty: s.PresencePenalty, FrequencyPenalty: s.FrequencyPenalty,
		User: req.User, Stream: req.Stream, Tools: req.Tools, ToolChoice: req.ToolChoice, ResponseFormat: req.ResponseFormat}
	if req.N > 1 {
		w.N = req.N
	}
	if req.Stream {
		w.StreamOptions = &streamOptions{IncludeUsage: true}
	}
	if len(s.LogitBias) > 0 {
		w.LogitBias = make(map[string]float64, len(s.LogitBias))
		for id, b := range s.LogitBias {
			w.LogitBias[strconv.Itoa(id)] = b
		}
	}
	if s.WantLogprobs {
		if req.Kind == llm.Chat {
			w.Logprobs, w.TopLogprobs = true, &s.Logprobs
		} else {
			w.Logprobs = s.Logprobs
		}
	}
	if req.Kind == llm.Chat {
		w.Messages = req.Messages
	} else {
		w.Echo = req.Echo
		if len(req.PromptTokens) > 0 {
			w.Prompt = req.PromptTokens
		} else {
			w.Prompt = req.Prompt
		}
	}
	if kind == KindVLLM || kind == KindLlamaCPP {
		if s.TopK > 0 {
			w.TopK = s.TopK
		}
		w.MinP, w.MinTokens, w.IgnoreEOS, w.StopTokenIDs = s.MinP, s.MinTokens, s.IgnoreEOS, s.StopTokenIDs
		if s.RepetitionPenalty != 1 {
			w.RepetitionPenalty = s.RepetitionPenalty
		}
	}
	return w
}

// deltas turns one chunk (or whole response) into Deltas, in the order of its choices.
func (c *wireChunk) deltas(chat bool) []llm.Delta {
	out := make([]llm.Delta, 0, len(c.Choices))
	for _, ch := range c.Choices {
		d := llm.Delta{Index: ch.Index, Text: ch.Text}
		m := ch.Delta
		if m == nil {
			m = ch.Message
		}
		if m != nil && chat {
			d.Role, d.Text = m.Role, m.Content
			if string(m.ToolCalls) != "null" && string(m.ToolCalls) != "[]" {
				d.ToolCalls = m.ToolCalls
			}
		}
		if ch.FinishReason != nil {
			d.FinishReason = *ch.FinishReason
		}
		d.Logprobs = ch.Logprobs.logprobs()
		if d.Role == "" && d.Text == "" && d.FinishReason == "" && d.ToolCalls == nil && d.Logprobs == nil {
			continue
		}
		out = append(out, d)
	}
	return out
}

// upstreamError reads an upstream's error response as an *llm.Error, keeping its
// status and, when the body is OpenAI's error object, its type, code and message.
func upstreamError(name string, resp *http.Response) *llm.Error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var body struct {
		Error *struct {
			Message string          `json:"message"`
			Type    string          `json:"type"`
			Param   *string         `json:"param"`
			Code    json.RawMessage `json:"code"`
		} `json:"error"`
	}
	e := &llm.Error{Status: resp.StatusCode, Type: "api_error",
		Message: fmt.Sprintf("upstream %s answered %s", name, resp.Status)}
	if resp.StatusCode < 500 {
		e.Type = "invalid_request_error"
	}
	if json.Unmarshal(b, &body) == nil && body.Error != nil {
		if body.Error.Message != "" {
			e.Message = body.Error.Message
		}
		if body.Error.Type != "" {
			e.Type = body.Error.Type
		}
		if body.Error.Param != nil {
			e.Param = *body.Error.Param
		}
		var code string
		if json.Unmarshal(body.Error.Code, &code) == nil {
			e.Code = code
		} else if len(body.Error.Code) > 0 && string(body.Error.Code) != "null" {
			e.Code = strings.Trim(string(body.Error.Code), `"`)
		}
	}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		e.RetryAfter = s
	}
	return e
}
