package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ferryml/ferry/internal/llm"
)

// maxBody bounds a non-streamed upstream answer.
const maxBody = 64 << 20

// Generate implements llm.Backend: it authenticates, checks the allow-lists and
// limits, and routes the request, emitting the upstream's Deltas as they arrive.
func (g *Gateway) Generate(ctx context.Context, req *llm.Request, emit func(llm.Delta) error) (llm.Usage, error) {
	start := time.Now()
	k, err := g.principal(req.Key)
	if err != nil {
		return llm.Usage{}, g.clientError(err)
	}
	chain, err := g.chain(req.Model, k)
	if err != nil {
		return llm.Usage{}, g.clientError(err)
	}
	release, err := g.ledger.admit(k.accounts())
	if err != nil {
		return llm.Usage{}, g.clientError(err)
	}
	defer release()
	prompts := map[string]int{} // by encoding: targets sharing one count once
	exact := func(t *target) int {
		enc := t.up.enc.Name()
		n, ok := prompts[enc]
		if !ok {
			n = promptTokens(t.up, req)
			prompts[enc] = n
		}
		return n
	}
	bound := -1 // promptBound's, computed once when it may stand in for the count
	if req.Sampling.MaxTokens > 0 && !k.metered() {
		bound = promptBound(req)
	}
	p := plan{key: k, n: max(1, req.N), maxTokens: req.Sampling.MaxTokens, start: start,
		fits: func(t *target) (int, int, bool) {
			// Counting a prompt costs ~100 µs a request. When nothing is metered in
			// tokens or money and the answer's size is given, the count only decides
			// whether the prompt fits: a bound that fits settles that, and the
			// reservation it sizes is replaced by the upstream's usage.
			if bound >= 0 && bound+req.Sampling.MaxTokens <= t.up.cfg.ContextWindow {
				return bound, req.Sampling.MaxTokens, true
			}
			return fitWindow(t.up.cfg.ContextWindow, exact(t), req.Sampling.MaxTokens)
		},
		exact: exact,
		call: func(ctx context.Context, t *target, maxTokens int, o *outcome) error {
			return g.callGenerate(ctx, t, req, maxTokens, o, o.wrap(emit))
		},
	}
	res, err := g.try(ctx, chain, p)
	g.observe(start, res)
	// Shadows copy what the gateway admitted, once the caller has its answer.
	var r *rejected
	if !errors.As(err, &r) {
		for _, t := range chain[0].shadows {
			g.shadow(ctx, t, req)
		}
	}
	return res.usage, g.clientError(err)
}

// promptBound is at least a request's prompt tokens in any byte-level encoding (every
// token stands for one byte or more), with promptTokens' framing of a chat.
func promptBound(req *llm.Request) int {
	if req.Kind != llm.Chat {
		if len(req.PromptTokens) > 0 {
			return len(req.PromptTokens)
		}
		return len(req.Prompt)
	}
	n := 3 + len(req.Tools)
	for _, m := range req.Messages {
		n += 3 + len(m.Role) + len(m.Content) + len(m.ToolCalls) + len(m.ToolCallID)
		if m.Name != "" {
			n += 1 + len(m.Name)
		}
	}
	return n
}

// fitWindow is a target's prompt and completion budget, and whether the prompt (with
// the max_tokens asked, if any) fits its window.
func fitWindow(window, prompt, maxTokens int) (int, int, bool) {
	if maxTokens > 0 {
		return prompt, maxTokens, prompt+maxTokens <= window
	}
	return prompt, window - prompt, prompt < window
}

func (g *Gateway) observe(start time.Time, res result) {
	end := time.Now()
	g.m.duration.Observe(end.Sub(start).Seconds())
	g.m.tokens.WithLabelValues("input").Observe(float64(res.usage.PromptTokens))
	g.m.tokens.WithLabelValues("output").Observe(float64(res.usage.CompletionTokens))
	if res.o == nil || !res.o.started.Load() {
		return
	}
	g.m.ttft.Observe(res.o.first.Sub(start).Seconds())
	if n := res.usage.CompletionTokens; n > 1 {
		g.m.tpot.Observe(end.Sub(res.o.first).Seconds() / float64(n-1))
	}
}

// shadow sends a copy of req to t in the background. The copy never holds the
// caller: it is skipped when t is at its max_concurrency, is not charged to the key,
// outlives the caller's cancellation, and ends within t's timeout.
func (g *Gateway) shadow(ctx context.Context, t *target, req *llm.Request) {
	if !t.up.acquire() {
		g.m.upstream.WithLabelValues(t.up.cfg.Name, "shadow_skipped").Inc()
		return
	}
	cp := *req
	cp.Key = ""
	g.shadows.Add(1)
	go func() {
		defer g.shadows.Done()
		defer t.up.release()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), t.up.timeout)
		defer cancel()
		_, maxTokens, _ := fitWindow(t.up.cfg.ContextWindow, promptTokens(t.up, &cp), cp.Sampling.MaxTokens)
		o := &outcome{texts: map[int]*strings.Builder{}}
		err := g.callGenerate(sctx, t, &cp, max(1, maxTokens), o, o.wrap(func(llm.Delta) error { return nil }))
		code := "200"
		if le := llm.AsError(err); le != nil {
			code = strconv.Itoa(le.Status)
		} else if err != nil {
			code = "conn_error"
		}
		g.m.upstream.WithLabelValues(t.up.cfg.Name, code).Inc()
	}()
}

// callGenerate makes one chat or completion call to t, passing Deltas to send.
func (g *Gateway) callGenerate(ctx context.Context, t *target, req *llm.Request, maxTokens int, o *outcome, send func(llm.Delta) error) error {
	if t.up.cfg.Kind == KindNative {
		cp := *req
		cp.Model, cp.Sampling.MaxTokens = t.modelID, maxTokens
		u, err := g.native.Generate(ctx, &cp, send)
		if err == nil {
			o.usage, o.hasUsage = u, true
		}
		return err
	}
	body, err := json.Marshal(buildRequest(t.up.cfg.Kind, t.modelID, req, maxTokens))
	if err != nil {
		return err
	}
	path, chat := "/v1/completions", req.Kind == llm.Chat
	if chat {
		path = "/v1/chat/completions"
	}
	resp, err := g.post(ctx, t.up, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if !req.Stream {
		var c wireChunk
		if err := decodeBody(resp.Body, &c); err != nil {
			return err
		}
		return o.take(&c, chat, send)
	}
	sr := newSSEReader(resp.Body)
	for {
		data, err := sr.Next()
		if errors.Is(err, errDone) {
			return nil
		}
		if err != nil {
			return err
		}
		var c wireChunk
		if err := json.Unmarshal(data, &c); err != nil {
			return fmt.Errorf("upstream sent an event that is not a JSON chunk: %w", err)
		}
		if err := o.take(&c, chat, send); err != nil {
			return err
		}
	}
}

// take records a chunk's usage and sends its Deltas.
func (o *outcome) take(c *wireChunk, chat bool, send func(llm.Delta) error) error {
	if c.Error != nil {
		return fmt.Errorf("upstream error in stream: %s", c.Error.Message)
	}
	if c.Usage != nil {
		o.usage, o.hasUsage = c.Usage.usage(), true
	}
	for _, d := range c.deltas(chat) {
		if err := send(d); err != nil {
			return err
		}
	}
	return nil
}

func decodeBody(r io.Reader, v any) error {
	b, err := io.ReadAll(io.LimitReader(r, maxBody+1))
	if err != nil {
		return err
	}
	if len(b) > maxBody {
		return fmt.Errorf("upstream answer longer than %d bytes", maxBody)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("upstream answer is not JSON: %w", err)
	}
	return nil
}

// post sends an OpenAI-wire request; a status other than 200 becomes an *llm.Error.
func (g *Gateway) post(ctx context.Context, u *upstream, path string, body []byte) (*http.Response, error) {
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(u.cfg.BaseURL, "/")+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	hr.Header.Set("Content-Type", "application/json")
	if u.apiKey != "" {
		hr.Header.Set("Authorization", "Bearer "+u.apiKey)
	}
	resp, err := g.client.Do(hr)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, upstreamError(u.cfg.Name, resp)
	}
	return resp, nil
}

// Embed implements llm.Backend, routed, limited and charged like Generate.
func (g *Gateway) Embed(ctx context.Context, req *llm.EmbedRequest) (*llm.EmbedResponse, error) {
	k, err := g.principal(req.Key)
	if err != nil {
		return nil, g.clientError(err)
	}
	chain, err := g.chain(req.Model, k)
	if err != nil {
		return nil, g.clientError(err)
	}
	release, err := g.ledger.admit(k.accounts())
	if err != nil {
		return nil, g.clientError(err)
	}
	defer release()
	var out *llm.EmbedResponse
	p := plan{key: k, n: 1, start: time.Now(),
		fits: func(t *target) (int, int, bool) { return embedTokens(t.up, req), 0, true },
		call: func(ctx context.Context, t *target, _ int, o *outcome) error {
			r, err := g.callEmbed(ctx, t, req)
			if err == nil {
				out = r
				o.usage, o.hasUsage = r.Usage, r.Usage.PromptTokens > 0
			}
			return err
		},
	}
	res, err := g.try(ctx, chain, p)
	if err != nil {
		return nil, g.clientError(err)
	}
	out.Usage = res.usage
	return out, nil
}

func embedTokens(u *upstream, req *llm.EmbedRequest) int {
	n := 0
	for _, ids := range req.Tokens {
		n += len(ids)
	}
	for _, s := range req.Input {
		n += len(u.enc.Encode(s))
	}
	return n
}

func (g *Gateway) callEmbed(ctx context.Context, t *target, req *llm.EmbedRequest) (*llm.EmbedResponse, error) {
	if t.up.cfg.Kind == KindNative {
		cp := *req
		cp.Model = t.modelID
		return g.native.Embed(ctx, &cp)
	}
	w := wireEmbedRequest{Model: t.modelID, Input: req.Input, User: req.User}
	want := len(req.Input)
	if len(req.Tokens) > 0 {
		w.Input, want = req.Tokens, len(req.Tokens)
	}
	body, err := json.Marshal(w)
	if err != nil {
		return nil, err
	}
	resp, err := g.post(ctx, t.up, "/v1/embeddings", body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var wr wireEmbedResponse
	if err := decodeBody(resp.Body, &wr); err != nil {
		return nil, err
	}
	out := &llm.EmbedResponse{Vectors: make([][]float32, want)}
	for _, d := range wr.Data {
		if d.Index < 0 || d.Index >= want || out.Vectors[d.Index] != nil {
			return nil, fmt.Errorf("upstream embedding index %d out of range or repeated (%d inputs)", d.Index, want)
		}
		out.Vectors[d.Index] = d.Embedding
	}
	for i, v := range out.Vectors {
		if v == nil {
			return nil, fmt.Errorf("upstream sent no embedding for input %d", i)
		}
	}
	if wr.Usage != nil {
		out.Usage = wr.Usage.usage()
	}
	return out, nil
}
