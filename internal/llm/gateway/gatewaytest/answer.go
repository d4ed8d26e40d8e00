package gatewaytest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/ferryml/ferry/internal/llm"
)

// begin reads and records a request and plays its reply's header delay and error
// status; ok is whether the handler should write the answer.
func (u *Upstream) begin(w http.ResponseWriter, r *http.Request) (req Request, rep Reply, ok bool) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return req, rep, false
	}
	req, rep, err = u.receive(r, body)
	if err != nil {
		http.Error(w, `{"error":{"message":"body is not JSON","type":"invalid_request_error"}}`, http.StatusBadRequest)
		return req, rep, false
	}
	return req, rep, start(w, r, rep)
}

func (u *Upstream) generate(w http.ResponseWriter, r *http.Request) {
	req, rep, ok := u.begin(w, r)
	if !ok {
		return
	}
	chunks := rep.Chunks
	if chunks == nil {
		chunks = []string{"Hello", " world"}
	}
	finish := rep.FinishReason
	switch {
	case finish != "":
	case len(rep.ToolCalls) > 0:
		finish = "tool_calls"
	default:
		finish = "stop"
	}
	usage := rep.Usage
	if usage == nil {
		usage = &llm.Usage{PromptTokens: 10, CompletionTokens: len(chunks)}
	}
	chat := req.Path == "/v1/chat/completions"
	if !req.Stream {
		// A whole answer takes as long as its stream would have.
		if !sleep(r, rep.ChunkDelay*time.Duration(len(chunks))) {
			return
		}
		if rep.DropAfter != 0 {
			panic(http.ErrAbortHandler)
		}
		var lps map[string]any
		if rep.Logprobs {
			lps = logprobs(chat, chunks, 0)
		}
		whole(w, chat, strings.Join(chunks, ""), rep.ToolCalls, lps, finish, usage, rep.OmitUsage)
		return
	}
	stream(w, r, rep, chat, chunks, finish, usage, req.IncludeUsage)
}

func stream(w http.ResponseWriter, r *http.Request, rep Reply, chat bool, chunks []string, finish string, usage *llm.Usage, includeUsage bool) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	send := func(v any) {
		b, _ := json.Marshal(v)
		fmt.Fprintf(w, "data: %s\n\n", b)
		if fl != nil {
			fl.Flush()
		}
	}
	for i, text := range chunks {
		if rep.DropAfter > 0 && i == rep.DropAfter {
			panic(http.ErrAbortHandler)
		}
		if !sleep(r, rep.ChunkDelay) {
			return
		}
		if rep.Comments {
			fmt.Fprint(w, ": keep-alive\n\n")
		}
		c := chunk(chat, i == 0, text, nil)
		if rep.Logprobs {
			c["choices"].([]any)[0].(map[string]any)["logprobs"] = logprobs(chat, chunks[i:i+1], i)
		}
		send(c)
	}
	if rep.DropAfter > 0 {
		panic(http.ErrAbortHandler)
	}
	first := len(chunks) == 0
	if chat {
		for _, piece := range toolPieces(rep.ToolCalls) {
			c := chunk(chat, first, "", nil)
			d := c["choices"].([]any)[0].(map[string]any)["delta"].(map[string]any)
			d["tool_calls"] = []any{piece}
			if first {
				d["content"] = nil
			} else {
				delete(d, "content")
			}
			send(c)
			first = false
		}
	}
	send(chunk(chat, first, "", &finish))
	if includeUsage && !rep.OmitUsage {
		send(map[string]any{"object": object(chat, true), "choices": []any{}, "usage": wireUsage(usage)})
	}
	fmt.Fprint(w, "data: [DONE]\n\n")
}

func object(chat, streamed bool) string {
	switch {
	case chat && streamed:
		return "chat.completion.chunk"
	case chat:
		return "chat.completion"
	}
	return "text_completion"
}

func chunk(chat, first bool, text string, finish *string) map[string]any {
	c := map[string]any{"index": 0, "finish_reason": finish}
	if chat {
		d := map[string]any{"content": text}
		if first {
			d["role"] = "assistant"
		}
		c["delta"] = d
	} else {
		c["text"] = text
	}
	return map[string]any{"id": "fake-1", "object": object(chat, true), "created": 1, "model": "fake-model",
		"choices": []any{c}, "usage": nil}
}

func wireUsage(u *llm.Usage) map[string]any {
	return map[string]any{"prompt_tokens": u.PromptTokens, "completion_tokens": u.CompletionTokens,
		"total_tokens": u.Total(), "prompt_tokens_details": map[string]any{"cached_tokens": u.CachedTokens}}
}

// toolPieces are calls as a stream carries them: per call, its id, type and name with
// empty arguments, then the arguments in two fragments, each piece with its index.
func toolPieces(calls []ToolCall) []map[string]any {
	var out []map[string]any
	for i, c := range calls {
		half := len(c.Arguments) / 2
		out = append(out,
			map[string]any{"index": i, "id": c.ID, "type": "function", "function": map[string]any{"name": c.Name, "arguments": ""}},
			map[string]any{"index": i, "function": map[string]any{"arguments": c.Arguments[:half]}},
			map[string]any{"index": i, "function": map[string]any{"arguments": c.Arguments[half:]}})
	}
	return out
}

// logprobs are texts' logprobs as chat (content) or completions (parallel arrays)
// write them; first is the index of texts[0] among the answer's chunks.
func logprobs(chat bool, texts []string, first int) map[string]any {
	var content, tops []any
	var tokens []string
	var lps []float64
	for i, t := range texts {
		lp := -float64(first+i+1) / 2
		bytes := make([]int, len(t))
		for j := range len(t) {
			bytes[j] = int(t[j])
		}
		content = append(content, map[string]any{"token": t, "logprob": lp, "bytes": bytes,
			"top_logprobs": []any{map[string]any{"token": t, "logprob": lp}, map[string]any{"token": "x", "logprob": -3.0}}})
		tokens, lps = append(tokens, t), append(lps, lp)
		tops = append(tops, map[string]float64{t: lp, "x": -3})
	}
	if chat {
		return map[string]any{"content": content}
	}
	return map[string]any{"tokens": tokens, "token_logprobs": lps, "top_logprobs": tops}
}

func whole(w http.ResponseWriter, chat bool, text string, calls []ToolCall, lps map[string]any, finish string, usage *llm.Usage, omitUsage bool) {
	c := map[string]any{"index": 0, "finish_reason": finish}
	if lps != nil {
		c["logprobs"] = lps
	}
	if chat {
		m := map[string]any{"role": "assistant", "content": text}
		if len(calls) > 0 {
			tc := make([]any, len(calls))
			for i, call := range calls {
				tc[i] = map[string]any{"id": call.ID, "type": "function", "function": map[string]any{"name": call.Name, "arguments": call.Arguments}}
			}
			m["tool_calls"] = tc
			if text == "" {
				m["content"] = nil
			}
		}
		c["message"] = m
	} else {
		c["text"] = text
	}
	out := map[string]any{"id": "fake-1", "object": object(chat, false), "created": 1, "model": "fake-model", "choices": []any{c}}
	if !omitUsage {
		out["usage"] = wireUsage(usage)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

func (u *Upstream) embed(w http.ResponseWriter, r *http.Request) {
	req, rep, ok := u.begin(w, r)
	if !ok {
		return
	}
	n := 1
	if in, ok := req.Input.([]any); ok {
		n = len(in)
	}
	data := make([]any, n)
	for i := range data {
		v := []float32{float32(i), 1, 2, 3}
		if i < len(rep.Vectors) {
			v = rep.Vectors[i]
		}
		data[i] = map[string]any{"object": "embedding", "index": i, "embedding": v}
	}
	out := map[string]any{"object": "list", "data": data, "model": req.Model}
	if !rep.OmitUsage {
		usage := rep.Usage
		if usage == nil {
			usage = &llm.Usage{PromptTokens: 3 * n}
		}
		out["usage"] = wireUsage(usage)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}
