package openai

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"

	"github.com/ferryml/ferry/internal/llm"
)

// Limits of OpenAI's API (and vLLM's, where it is wider) that the decoders hold.
const (
	maxStop        = 4   // stop sequences
	maxChoices     = 128 // n
	maxTopLogprobs = 20  // chat top_logprobs and completions logprobs (OpenAI: 5 for completions; vLLM: 20)
	maxLogitBias   = 300 // logit_bias entries
)

// samplingBody holds the fields chat and completions share. The struct is embedded in
// each endpoint's body, so encoding/json names its fields with this prefix in type
// errors (typeError strips it).
type samplingBody struct {
	Model            *string            `json:"model"`
	MaxTokens        *int               `json:"max_tokens"`
	Temperature      *float64           `json:"temperature"`
	TopP             *float64           `json:"top_p"`
	N                *int               `json:"n"`
	Stop             json.RawMessage    `json:"stop"`
	Seed             *int64             `json:"seed"`
	PresencePenalty  *float64           `json:"presence_penalty"`
	FrequencyPenalty *float64           `json:"frequency_penalty"`
	LogitBias        map[string]float64 `json:"logit_bias"`
	User             *string            `json:"user"`
	Stream           *bool              `json:"stream"`
	StreamOptions    *struct {
		IncludeUsage *bool `json:"include_usage"`
	} `json:"stream_options"`
	BestOf *int `json:"best_of"`
	// vLLM's extras, sent in the body (the SDKs' extra_body).
	TopK              *int     `json:"top_k"`
	MinP              *float64 `json:"min_p"`
	RepetitionPenalty *float64 `json:"repetition_penalty"`
	MinTokens         *int     `json:"min_tokens"`
	IgnoreEOS         *bool    `json:"ignore_eos"`
	StopTokenIDs      []int    `json:"stop_token_ids"`
	// Tools and structured output go to the backend as they came; one that cannot honour
	// them refuses the request (llm.Request.Unsupported), never ignores them.
	Tools          json.RawMessage `json:"tools"`
	ToolChoice     json.RawMessage `json:"tool_choice"`
	ResponseFormat json.RawMessage `json:"response_format"`
	// The deprecated function-calling fields are refused here: tools replaced them.
	Functions    json.RawMessage `json:"functions"`
	FunctionCall json.RawMessage `json:"function_call"`
}

// chatBody is a /v1/chat/completions request.
type chatBody struct {
	samplingBody
	Messages            []json.RawMessage `json:"messages"`
	MaxCompletionTokens *int              `json:"max_completion_tokens"`
	Logprobs            *bool             `json:"logprobs"`
	TopLogprobs         *int              `json:"top_logprobs"`
}

// completionBody is a /v1/completions request.
type completionBody struct {
	samplingBody
	Prompt   json.RawMessage `json:"prompt"`
	Logprobs *int            `json:"logprobs"`
	Echo     *bool           `json:"echo"`
	Suffix   *string         `json:"suffix"`
}

// decoded is a chat or completion request with what the edge itself needs of it.
type decoded struct {
	req          *llm.Request
	includeUsage bool // stream_options.include_usage
}

// decodeChat decodes a /v1/chat/completions body. Unknown fields are ignored (clients
// send extras); a known field of the wrong type or out of range is a 400 naming it.
func decodeChat(body []byte) (*decoded, error) {
	var b chatBody
	if err := unmarshalBody(body, &b); err != nil {
		return nil, err
	}
	req := &llm.Request{Kind: llm.Chat}
	s, err := b.samplingBody.decode(req)
	if err != nil {
		return nil, err
	}
	if req.Messages, err = decodeMessages(b.Messages); err != nil {
		return nil, err
	}
	if b.MaxCompletionTokens != nil {
		if *b.MaxCompletionTokens < 1 {
			return nil, llm.BadRequest("max_completion_tokens", "max_completion_tokens must be at least 1, got %d", *b.MaxCompletionTokens)
		}
		req.Sampling.MaxTokens = *b.MaxCompletionTokens // the newer name wins, as at OpenAI
	}
	if b.Logprobs != nil && *b.Logprobs {
		req.Sampling.WantLogprobs = true
	}
	if b.TopLogprobs != nil {
		if *b.TopLogprobs < 0 || *b.TopLogprobs > maxTopLogprobs {
			return nil, llm.BadRequest("top_logprobs", "top_logprobs must be between 0 and %d, got %d", maxTopLogprobs, *b.TopLogprobs)
		}
		if !req.Sampling.WantLogprobs && *b.TopLogprobs > 0 {
			return nil, llm.BadRequest("top_logprobs", "top_logprobs needs logprobs set to true")
		}
		req.Sampling.Logprobs = *b.TopLogprobs
	}
	return s, checkMinTokens(req)
}

// decodeCompletion decodes a /v1/completions body, as decodeChat does.
func decodeCompletion(body []byte) (*decoded, error) {
	var b completionBody
	if err := unmarshalBody(body, &b); err != nil {
		return nil, err
	}
	req := &llm.Request{Kind: llm.Completion}
	s, err := b.samplingBody.decode(req)
	if err != nil {
		return nil, err
	}
	if req.Prompt, req.PromptTokens, err = decodePrompt(b.Prompt); err != nil {
		return nil, err
	}
	if b.Logprobs != nil {
		if *b.Logprobs < 0 || *b.Logprobs > maxTopLogprobs {
			return nil, llm.BadRequest("logprobs", "logprobs must be between 0 and %d, got %d", maxTopLogprobs, *b.Logprobs)
		}
		req.Sampling.WantLogprobs, req.Sampling.Logprobs = true, *b.Logprobs
	}
	req.Echo = b.Echo != nil && *b.Echo
	if b.Suffix != nil && *b.Suffix != "" {
		return nil, llm.BadRequest("suffix", "suffix is not supported")
	}
	return s, checkMinTokens(req)
}

// decode fills req from the shared fields and refuses the unsupported ones.
func (b *samplingBody) decode(req *llm.Request) (*decoded, error) {
	if err := b.unsupported(); err != nil {
		return nil, err
	}
	if b.Model == nil || *b.Model == "" {
		return nil, llm.BadRequest("model", "you must provide a model parameter")
	}
	req.Model = *b.Model
	if err := b.tools(req); err != nil {
		return nil, err
	}
	if b.N != nil {
		if *b.N < 1 || *b.N > maxChoices {
			return nil, llm.BadRequest("n", "n must be between 1 and %d, got %d", maxChoices, *b.N)
		}
		req.N = *b.N
	}
	if b.User != nil {
		req.User = *b.User
	}
	s := &decoded{req: req}
	if b.Stream != nil {
		req.Stream = *b.Stream
	}
	if b.StreamOptions != nil {
		if !req.Stream {
			return nil, llm.BadRequest("stream_options", "stream_options is only allowed when stream is true")
		}
		s.includeUsage = b.StreamOptions.IncludeUsage != nil && *b.StreamOptions.IncludeUsage
	}
	var err error
	req.Sampling, err = b.sampling()
	return s, err
}

// unsupported refuses what no backend here takes: the deprecated function-calling
// fields (tools replaced them) and best_of.
func (b *samplingBody) unsupported() error {
	for _, f := range []struct {
		name string
		v    json.RawMessage
	}{{"functions", b.Functions}, {"function_call", b.FunctionCall}} {
		if present(f.v) {
			return llm.BadRequest(f.name, "%s is not supported by this server; use tools", f.name)
		}
	}
	if b.BestOf != nil && *b.BestOf != 1 {
		return llm.BadRequest("best_of", "best_of is not supported by this server")
	}
	return nil
}

// sampling checks the sampling fields' ranges (OpenAI's, and vLLM's for its extras)
// and returns them over OpenAI's defaults.
func (b *samplingBody) sampling() (llm.Sampling, error) {
	p := llm.DefaultSampling()
	for _, f := range []struct {
		name    string
		v       *float64
		lo, hi  float64
		openLow bool // lo itself is out of range
		dst     *float64
		want    string
	}{
		{"temperature", b.Temperature, 0, 2, false, &p.Temperature, "between 0 and 2"},
		{"top_p", b.TopP, 0, 1, true, &p.TopP, "greater than 0 and at most 1"},
		{"presence_penalty", b.PresencePenalty, -2, 2, false, &p.PresencePenalty, "between -2 and 2"},
		{"frequency_penalty", b.FrequencyPenalty, -2, 2, false, &p.FrequencyPenalty, "between -2 and 2"},
		{"min_p", b.MinP, 0, 1, false, &p.MinP, "between 0 and 1"},
		{"repetition_penalty", b.RepetitionPenalty, 0, math.MaxFloat64, true, &p.RepetitionPenalty, "greater than 0"},
	} {
		if f.v == nil {
			continue
		}
		if x := *f.v; x < f.lo || x > f.hi || (f.openLow && x == f.lo) {
			return p, llm.BadRequest(f.name, "%s must be %s, got %g", f.name, f.want, x)
		}
		*f.dst = *f.v
	}
	if b.MaxTokens != nil {
		if *b.MaxTokens < 1 {
			return p, llm.BadRequest("max_tokens", "max_tokens must be at least 1, got %d", *b.MaxTokens)
		}
		p.MaxTokens = *b.MaxTokens
	}
	if b.TopK != nil {
		if *b.TopK < -1 {
			return p, llm.BadRequest("top_k", "top_k must be -1 (off), 0 (off) or positive, got %d", *b.TopK)
		}
		p.TopK = *b.TopK
	}
	if b.MinTokens != nil {
		if *b.MinTokens < 0 {
			return p, llm.BadRequest("min_tokens", "min_tokens must be at least 0, got %d", *b.MinTokens)
		}
		p.MinTokens = *b.MinTokens
	}
	p.Seed = b.Seed
	p.IgnoreEOS = b.IgnoreEOS != nil && *b.IgnoreEOS
	var err error
	if p.Stop, err = decodeStop(b.Stop); err != nil {
		return p, err
	}
	if p.StopTokenIDs, err = tokenIDs("stop_token_ids", b.StopTokenIDs); err != nil {
		return p, err
	}
	p.LogitBias, err = logitBias(b.LogitBias)
	return p, err
}

// checkMinTokens holds min_tokens ≤ max_tokens once both are known (max_completion_tokens
// may set the latter).
func checkMinTokens(req *llm.Request) error {
	if p := req.Sampling; p.MaxTokens > 0 && p.MinTokens > p.MaxTokens {
		return llm.BadRequest("min_tokens", "min_tokens (%d) must not exceed max_tokens (%d)", p.MinTokens, p.MaxTokens)
	}
	return nil
}

// decodeStop accepts a string or a list of up to four non-empty strings (null: none).
func decodeStop(raw json.RawMessage) ([]string, error) {
	if !present(raw) {
		return nil, nil
	}
	var list []string
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		list = []string{one}
	} else if err := json.Unmarshal(raw, &list); err != nil {
		return nil, llm.BadRequest("stop", "stop must be a string or an array of strings")
	}
	if len(list) > maxStop {
		return nil, llm.BadRequest("stop", "stop takes at most %d sequences, got %d", maxStop, len(list))
	}
	for i, s := range list {
		if s == "" {
			return nil, llm.BadRequest("stop", "stop[%d] is empty; a stop sequence needs at least one character", i)
		}
	}
	return list, nil
}

// logitBias turns OpenAI's {"token id": bias} into ids, each bias within -100..100.
func logitBias(m map[string]float64) (map[int]float64, error) {
	if len(m) == 0 {
		return nil, nil
	}
	if len(m) > maxLogitBias {
		return nil, llm.BadRequest("logit_bias", "logit_bias takes at most %d entries, got %d", maxLogitBias, len(m))
	}
	out := make(map[int]float64, len(m))
	for k, v := range m {
		id, err := strconv.Atoi(k)
		if err != nil || id < 0 {
			return nil, llm.BadRequest("logit_bias", "logit_bias key %q is not a token id", k)
		}
		if v < -100 || v > 100 {
			return nil, llm.BadRequest("logit_bias", "logit_bias for token %d must be between -100 and 100, got %g", id, v)
		}
		out[id] = v
	}
	return out, nil
}

// tokenIDs checks a list of token ids, naming param on a negative one.
func tokenIDs(param string, ids []int) ([]int, error) {
	for i, id := range ids {
		if id < 0 {
			return nil, llm.BadRequest(param, "%s[%d] is %d; token ids are not negative", param, i, id)
		}
	}
	return ids, nil
}

// tools checks the shapes of tools, tool_choice and response_format (what they hold
// is the backend's to judge) and hands them on.
func (b *samplingBody) tools(req *llm.Request) error {
	for _, f := range []struct {
		name, want string
		v          json.RawMessage
		dst        *json.RawMessage
		ok         func(byte) bool
	}{
		{"tools", "an array of tools", b.Tools, &req.Tools, func(c byte) bool { return c == '[' }},
		{"tool_choice", `"none", "auto", "required" or an object naming a tool`, b.ToolChoice, &req.ToolChoice, func(c byte) bool { return c == '"' || c == '{' }},
		{"response_format", `an object with a "type"`, b.ResponseFormat, &req.ResponseFormat, func(c byte) bool { return c == '{' }},
	} {
		if !present(f.v) {
			continue
		}
		if !f.ok(f.v[0]) {
			return llm.BadRequest(f.name, "%s must be %s", f.name, f.want)
		}
		*f.dst = f.v
	}
	return nil
}

// present is whether a raw field was given with a value other than null.
func present(raw json.RawMessage) bool {
	return len(raw) > 0 && string(raw) != "null"
}

// unmarshalBody decodes a JSON object body into v, turning encoding/json's errors into
// 400s: a syntax error names no param, a type error names the field.
func unmarshalBody(body []byte, v any) error {
	err := json.Unmarshal(body, v)
	if err == nil {
		return nil
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return typeError(te)
	}
	if errors.As(err, &te) {
		return llm.BadRequest("", "the request body must be a JSON object, got %s", article(te.Value))
	}
	return llm.BadRequest("", "We could not parse the JSON body of your request: %v", err)
}

// typeError is the 400 for a field of the wrong type, named as the client wrote it.
func typeError(te *json.UnmarshalTypeError) *llm.Error {
	field := strings.TrimPrefix(te.Field, "samplingBody.")
	return llm.BadRequest(field, "Invalid type for '%s': expected %s, but got %s", field, typeName(te.Type), article(te.Value))
}

// typeName says what a Go type is in JSON's words.
func typeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int, reflect.Int64:
		return "an integer"
	case reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "a boolean"
	case reflect.String:
		return "a string"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Slice:
		return "an array"
	}
	return t.String()
}

// article puts "a" or "an" before encoding/json's name of a value ("string", "number 1.5").
func article(v string) string {
	if v != "" && strings.ContainsRune("aeiou", rune(v[0])) {
		return "an " + v
	}
	return fmt.Sprintf("a %s", v)
}
