package openai

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/ferryml/ferry/internal/llm"
)

func (h *Handler) chat(w http.ResponseWriter, r *http.Request) {
	h.generate(w, r, decodeChat, "chatcmpl-")
}

func (h *Handler) completions(w http.ResponseWriter, r *http.Request) {
	h.generate(w, r, decodeCompletion, "cmpl-")
}

// generate serves a chat or completion request: decoded by decode, answered as one
// JSON object or, when the client streams, as server-sent events.
func (h *Handler) generate(w http.ResponseWriter, r *http.Request, decode func([]byte) (*decoded, error), idPrefix string) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	s, err := decode(body)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	s.req.ID = h.newID(idPrefix)
	s.req.Key, s.req.Header = apiKey(r), r.Header
	if s.req.Stream {
		h.stream(w, r, s)
		return
	}
	h.complete(w, r, s.req)
}

// tracker follows the choices of one exchange as their Deltas arrive: whether each has
// begun, and how much text it has so far (completions' logprobs give text offsets).
type tracker struct {
	started []bool
	offset  []int
}

func newTracker(n int) *tracker {
	n = max(n, 1)
	return &tracker{started: make([]bool, n), offset: make([]int, n)}
}

// observe records d and returns whether it is its choice's first Delta and where its
// text begins. A Delta for a choice the request did not ask for is the backend's bug.
func (t *tracker) observe(d llm.Delta) (first bool, offset int, err error) {
	if d.Index < 0 || d.Index >= len(t.started) {
		return false, 0, fmt.Errorf("backend emitted a delta for choice %d of a request for %d", d.Index, len(t.started))
	}
	first, offset = !t.started[d.Index], t.offset[d.Index]
	t.started[d.Index] = true
	t.offset[d.Index] += len(d.Text)
	return first, offset, nil
}

// choiceAcc gathers one choice's answer for a non-streamed response.
type choiceAcc struct {
	text   strings.Builder
	tools  []json.RawMessage // the Deltas' tool_calls, merged at the end
	chatLP *chatLogprobs
	textLP *textLogprobs
	finish string
}

// complete answers a non-streamed request with one object once every choice is done.
// The request's context ends when the client leaves; emit then fails, which stops the
// backend.
func (h *Handler) complete(w http.ResponseWriter, r *http.Request, req *llm.Request) {
	ctx := r.Context()
	t := newTracker(req.N)
	acc := make([]choiceAcc, len(t.started))
	usage, err := h.backend.Generate(ctx, req, func(d llm.Delta) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		_, offset, err := t.observe(d)
		if err != nil {
			return err
		}
		a := &acc[d.Index]
		a.text.WriteString(d.Text)
		if len(d.ToolCalls) > 0 {
			a.tools = append(a.tools, d.ToolCalls)
		}
		if req.Sampling.WantLogprobs {
			if req.Kind == llm.Chat {
				a.chatLP = appendChat(a.chatLP, d.Logprobs)
			} else {
				a.textLP = appendText(a.textLP, d.Logprobs, offset)
			}
		}
		if d.FinishReason != "" {
			a.finish = d.FinishReason
		}
		return nil
	})
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	if req.Kind == llm.Chat {
		a, err := h.chatAnswer(req, acc, usage)
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		h.writeJSON(w, r, a)
		return
	}
	h.writeJSON(w, r, h.textAnswer(req, acc, usage))
}

func (h *Handler) chatAnswer(req *llm.Request, acc []choiceAcc, u llm.Usage) (*answer[chatChoice], error) {
	c := &answer[chatChoice]{ID: req.ID, Object: "chat.completion", Created: h.now().Unix(), Model: req.Model,
		Choices: make([]chatChoice, len(acc)), Usage: toUsage(u)}
	for i := range acc {
		calls, err := llm.MergeToolCalls(acc[i].tools)
		if err != nil {
			return nil, fmt.Errorf("choice %d: %w", i, err) // the backend's upstream sent them: a 500
		}
		msg := chatMessage{Role: "assistant", ToolCalls: calls}
		if text := acc[i].text.String(); text != "" || calls == nil {
			msg.Content = &text
		}
		c.Choices[i] = chatChoice{Index: i, Message: msg, Logprobs: acc[i].chatLP, FinishReason: finishReason(acc[i].finish)}
	}
	return c, nil
}

func (h *Handler) textAnswer(req *llm.Request, acc []choiceAcc, u llm.Usage) *answer[textChoice] {
	c := &answer[textChoice]{ID: req.ID, Object: "text_completion", Created: h.now().Unix(), Model: req.Model,
		Choices: make([]textChoice, len(acc)), Usage: toUsage(u)}
	for i := range acc {
		c.Choices[i] = textChoice{Index: i, Text: acc[i].text.String(), Logprobs: acc[i].textLP, FinishReason: finishReason(acc[i].finish)}
	}
	return c
}

// finishReason is a choice's finish_reason: null until it ends.
func finishReason(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
