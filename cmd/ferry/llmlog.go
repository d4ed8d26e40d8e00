package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"strings"
	"time"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/llm"
	"github.com/ferryml/ferry/internal/tensor"
)

// loggedLLM hands every chat and completion exchange to the monitoring taps (the
// inference log, the feedback join) as a core.Record, so `ferry logs` and
// /api/v1/logs read LLM requests like the others and ground truth joins on their ids:
// input "messages" (the chat as JSON) or "prompt", outputs "text" (one element per
// choice) and "usage" (prompt and completion tokens). The route is "llm".
type loggedLLM struct {
	llm.Backend
	taps []core.Tap
}

func (b *loggedLLM) Generate(ctx context.Context, req *llm.Request, emit func(llm.Delta) error) (llm.Usage, error) {
	start := time.Now()
	texts := make([]strings.Builder, max(1, req.N))
	u, err := b.Backend.Generate(ctx, req, func(d llm.Delta) error {
		if d.Index >= 0 && d.Index < len(texts) {
			texts[d.Index].WriteString(d.Text)
		}
		return emit(d)
	})
	rec := &core.Record{Model: req.Model, ID: req.ID, Route: "llm", Inputs: []*tensor.Tensor{llmInput(req)},
		Items: 1, Start: start, Total: time.Since(start), Err: err}
	if err == nil {
		out := make([]string, len(texts))
		for i := range texts {
			out[i] = texts[i].String()
		}
		usage := make([]byte, 16)
		binary.LittleEndian.PutUint64(usage, uint64(u.PromptTokens))
		binary.LittleEndian.PutUint64(usage[8:], uint64(u.CompletionTokens))
		rec.Outputs = []*tensor.Tensor{bytesTensor("text", out...),
			{Name: "usage", DType: tensor.Int64, Shape: tensor.Shape{2}, Data: usage}}
	}
	for _, t := range b.taps {
		t.Finished(rec)
	}
	return u, err
}

// llmInput is what the client sent: the chat as JSON, or the prompt.
func llmInput(req *llm.Request) *tensor.Tensor {
	if req.Kind == llm.Chat {
		msgs, _ := json.Marshal(req.Messages)
		return bytesTensor("messages", string(msgs))
	}
	if len(req.PromptTokens) > 0 {
		ids, _ := json.Marshal(req.PromptTokens)
		return bytesTensor("prompt_tokens", string(ids))
	}
	return bytesTensor("prompt", req.Prompt)
}

func bytesTensor(name string, elems ...string) *tensor.Tensor {
	var data []byte
	for _, e := range elems {
		data = tensor.AppendBytesElement(data, []byte(e))
	}
	return &tensor.Tensor{Name: name, DType: tensor.Bytes, Shape: tensor.Shape{int64(len(elems))}, Data: data}
}
