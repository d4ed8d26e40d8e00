package openai

import (
	"strings"
	"testing"

	"github.com/ferryml/ferry/internal/llm"
)

// checkRefusal asserts what every refusal must be: a 400 invalid_request_error with a
// message, naming its param unless the body was not a JSON object at all.
func checkRefusal(t *testing.T, body []byte, err error) {
	t.Helper()
	e := llm.AsError(err)
	if e == nil || e.Status != 400 || e.Type != "invalid_request_error" || e.Message == "" {
		t.Fatalf("decode(%q) = %#v, want a 400 invalid_request_error", body, err)
	}
	if e.Param == "" && !strings.Contains(e.Message, "JSON") {
		t.Fatalf("decode(%q) = %q names no param", body, e.Message)
	}
}

// checkSampling asserts a decoded request's sampling is within the ranges the decoders
// promise the backend.
func checkSampling(t *testing.T, body []byte, req *llm.Request) {
	t.Helper()
	p := req.Sampling
	switch {
	case req.Model == "":
		t.Fatalf("decode(%q): empty model accepted", body)
	case p.Temperature < 0 || p.Temperature > 2, p.TopP <= 0 || p.TopP > 1, p.MinP < 0 || p.MinP > 1,
		p.PresencePenalty < -2 || p.PresencePenalty > 2, p.FrequencyPenalty < -2 || p.FrequencyPenalty > 2,
		p.RepetitionPenalty <= 0, p.TopK < -1, p.MaxTokens < 0, p.MinTokens < 0,
		p.MaxTokens > 0 && p.MinTokens > p.MaxTokens, len(p.Stop) > maxStop, p.Logprobs < 0 || p.Logprobs > maxTopLogprobs,
		req.N < 0 || req.N > maxChoices:
		t.Fatalf("decode(%q): sampling out of range: %+v n=%d", body, p, req.N)
	}
	for _, s := range p.Stop {
		if s == "" {
			t.Fatalf("decode(%q): empty stop sequence accepted", body)
		}
	}
	for _, id := range p.StopTokenIDs {
		if id < 0 {
			t.Fatalf("decode(%q): negative stop token id accepted", body)
		}
	}
}

var chatSeeds = []string{
	`{"model":"m","messages":[{"role":"user","content":"Hi"}]}`,
	`{"model":"m","messages":[{"role":"system","content":[{"type":"text","text":"a"}]},{"role":"assistant","content":null}],"n":2,"stop":["x"],"logprobs":true,"top_logprobs":3}`,
	`{"model":"m","messages":[{"role":"user","content":"Hi"}],"stream":true,"stream_options":{"include_usage":true},"top_k":5,"min_p":0.1,"logit_bias":{"1":5},"stop_token_ids":[1]}`,
	`{"model":"m","messages":[{"role":"user","content":"Hi"}],"temperature":1e309}`,
	`{"model":"m","messages":[{"role":"user","content":"Hi"}],"max_tokens":5,"min_tokens":6}`,
	`{"model":"m","messages":[{"role":"user","content":[{"type":"image_url"}]}]}`,
	`[]`, `null`, `{"messages":[null]}`,
}

// FuzzDecodeChat: any body either decodes into a request within range or is refused
// with a 400; never a panic.
func FuzzDecodeChat(f *testing.F) {
	for _, s := range chatSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		s, err := decodeChat(body)
		if err != nil {
			checkRefusal(t, body, err)
			return
		}
		checkSampling(t, body, s.req)
		if len(s.req.Messages) == 0 || s.req.Kind != llm.Chat {
			t.Fatalf("decodeChat(%q) accepted %+v", body, s.req)
		}
		for _, m := range s.req.Messages {
			if m.Role != "system" && m.Role != "user" && m.Role != "assistant" {
				t.Fatalf("decodeChat(%q): role %q accepted", body, m.Role)
			}
		}
	})
}

// FuzzDecodeCompletion: as FuzzDecodeChat; a decoded prompt is one non-empty text or
// one non-empty list of token ids, never both.
func FuzzDecodeCompletion(f *testing.F) {
	for _, s := range []string{
		`{"model":"m","prompt":"x"}`, `{"model":"m","prompt":["x"]}`, `{"model":"m","prompt":[1,2]}`, `{"model":"m","prompt":[[3]]}`,
		`{"model":"m","prompt":"x","logprobs":2,"echo":true,"stream":true,"suffix":""}`, `{"model":"m","prompt":[1,"a"]}`, `{"model":"m","prompt":[[1],[]]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		s, err := decodeCompletion(body)
		if err != nil {
			checkRefusal(t, body, err)
			return
		}
		checkSampling(t, body, s.req)
		if (s.req.Prompt == "") == (len(s.req.PromptTokens) == 0) {
			t.Fatalf("decodeCompletion(%q): prompt %q and tokens %v", body, s.req.Prompt, s.req.PromptTokens)
		}
		for _, id := range s.req.PromptTokens {
			if id < 0 {
				t.Fatalf("decodeCompletion(%q): negative token id accepted", body)
			}
		}
	})
}

// FuzzDecodeEmbedding: any body decodes into inputs (texts or token lists, none empty)
// or is refused with a 400.
func FuzzDecodeEmbedding(f *testing.F) {
	for _, s := range []string{
		`{"model":"m","input":"x"}`, `{"model":"m","input":["a","b"],"encoding_format":"base64"}`, `{"model":"m","input":[1,2]}`,
		`{"model":"m","input":[[1],[2,3]],"dimensions":4,"encoding_format":"float"}`, `{"model":"m","input":[[1],[]]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		c, err := decodeEmbedding(body)
		if err != nil {
			checkRefusal(t, body, err)
			return
		}
		n := len(c.req.Input) + len(c.req.Tokens)
		if c.req.Model == "" || n == 0 || n > maxInputs || (len(c.req.Input) > 0 && len(c.req.Tokens) > 0) || c.dimensions < 0 {
			t.Fatalf("decodeEmbedding(%q) accepted %+v", body, c)
		}
		for _, s := range c.req.Input {
			if s == "" {
				t.Fatalf("decodeEmbedding(%q): empty input accepted", body)
			}
		}
		for _, ids := range c.req.Tokens {
			if len(ids) == 0 {
				t.Fatalf("decodeEmbedding(%q): empty token list accepted", body)
			}
		}
	})
}
