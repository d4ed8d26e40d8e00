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
// inference log, the feedback join, the metrics, a rollout's Meter) as a core.Record,
// so `ferry logs` and /api/v1/logs read LLM requests like the others and ground truth
// joins on their ids: input "messages" (the chat as JSON) or "prompt", outputs "text"
// (one element per choice) and "usage" (prompt and completion tokens). With a router,
// a request naming no version goes where its endpoint's policy decides (llmroute.go);
// the record then carries the version and the router's route ("match", "sticky",
// "weight", "default", or "shadow" for a shadow copy), else route "llm".
type loggedLLM struct {
	llm.Backend
	taps   []core.Tap
	router *llmRouter // nil: requests go where they name
	// defaults is the version a request naming none gets, for its record; nil when
	// the backend has no versions (the gateway).
	defaults func(model string) (string, bool)
}

// routeLLM is the route of an exchange no policy routed.
const routeLLM = "llm"

func (b *loggedLLM) Generate(ctx context.Context, req *llm.Request, emit func(llm.Delta) error) (llm.Usage, error) {
	start := time.Now()
	a := llmAttrs{header: req.Header, user: req.User}
	d := b.router.decide(req.Model, req.Version, a)
	cp := *req // the caller's request is left as it came
	cp.Version = d.version
	u, texts, err := b.generate(ctx, &cp, emit)
	if b.router.moved(d, req.Model, err) {
		d = b.router.decide(req.Model, req.Version, a)
		cp.Version = d.version
		u, texts, err = b.generate(ctx, &cp, emit)
	}
	b.record(&cp, d.route, nil, texts, u, start, err)
	if d.shadow != "" && d.shadow != b.versionOf(&cp) {
		b.shadow(&cp, d.shadow, texts, err)
	}
	return u, err
}

// Embed goes where its endpoint's policy decides, as Generate; it has no record.
func (b *loggedLLM) Embed(ctx context.Context, req *llm.EmbedRequest) (*llm.EmbedResponse, error) {
	a := llmAttrs{header: req.Header, user: req.User}
	d := b.router.decide(req.Model, req.Version, a)
	cp := *req
	cp.Version = d.version
	resp, err := b.Backend.Embed(ctx, &cp)
	if b.router.moved(d, req.Model, err) {
		cp.Version = b.router.decide(req.Model, req.Version, a).version
		resp, err = b.Backend.Embed(ctx, &cp)
	}
	return resp, err
}

// generate runs req on the backend and returns the choices' texts (nil when it failed).
func (b *loggedLLM) generate(ctx context.Context, req *llm.Request, emit func(llm.Delta) error) (llm.Usage, []string, error) {
	texts := make([]strings.Builder, max(1, req.N))
	u, err := b.Backend.Generate(ctx, req, func(d llm.Delta) error {
		if d.Index >= 0 && d.Index < len(texts) {
			texts[d.Index].WriteString(d.Text)
		}
		return emit(d)
	})
	if err != nil {
		return u, nil, err
	}
	out := make([]string, len(texts))
	for i := range texts {
		out[i] = texts[i].String()
	}
	return u, out, nil
}

// shadow sends a copy of req to version once req has its answer (texts, err); the
// copy's answer goes to the taps alone.
func (b *loggedLLM) shadow(req *llm.Request, version string, texts []string, err error) {
	cp := *req
	cp.Version, cp.Header, cp.Stream, cp.Key = version, nil, false, "" // the edge's header is not the copy's to read
	of := &shadowOf{primary: b.versionOf(req), want: texts}
	if err != nil {
		of.want = nil
	}
	b.router.mirror(func(ctx context.Context) {
		start := time.Now()
		u, got, err := b.generate(ctx, &cp, func(llm.Delta) error { return nil })
		b.record(&cp, core.RouteShadow, of, got, u, start, err)
	})
}

// versionOf is the version req went to: the one it names, else the default.
func (b *loggedLLM) versionOf(req *llm.Request) string {
	if req.Version != "" || b.defaults == nil {
		return req.Version
	}
	v, _ := b.defaults(req.Model)
	return v
}

// record tells the taps about one exchange that ended: texts and u when it succeeded,
// err when not; of is set on a shadow copy.
func (b *loggedLLM) record(req *llm.Request, route string, of *shadowOf, texts []string, u llm.Usage, start time.Time, err error) {
	if len(b.taps) == 0 {
		return
	}
	rec := &core.Record{Model: req.Model, Version: b.versionOf(req), ID: req.ID, Route: route, Inputs: []*tensor.Tensor{llmInput(req)},
		Items: 1, Start: start, Total: time.Since(start), Err: err}
	if err == nil {
		usage := make([]byte, 16)
		binary.LittleEndian.PutUint64(usage, uint64(u.PromptTokens))
		binary.LittleEndian.PutUint64(usage[8:], uint64(u.CompletionTokens))
		rec.Outputs = []*tensor.Tensor{bytesTensor("text", texts...),
			{Name: "usage", DType: tensor.Int64, Shape: tensor.Shape{2}, Data: usage}}
	}
	if of != nil {
		rec.Shadow = of.result(texts, err)
	}
	for _, t := range b.taps {
		t.Finished(rec)
	}
}

// llmMetrics feeds the server's metrics (a core.Tap) with LLM exchanges: their
// end-to-end latency per version, and the routed requests and shadow comparisons by
// route. An exchange has no scheduler breakdown (queue, compute), which the metrics
// skip for a record marked Cached; route "llm" only names the lane in the inference
// log, so it is no route the metrics count.
type llmMetrics struct{ m core.Tap }

func (t llmMetrics) Finished(r *core.Record) {
	c := *r
	c.Cached = true
	if c.Route == routeLLM {
		c.Route = ""
	}
	t.m.Finished(&c)
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
