package native

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ferryml/ferry/internal/llm"
	"github.com/ferryml/ferry/internal/llm/chat"
	"github.com/ferryml/ferry/internal/llm/engine"
	"github.com/ferryml/ferry/internal/llm/stop"
	"github.com/ferryml/ferry/internal/llm/tokenizer"
)

// Model is one generative model: its engine, tokenizer and chat template.
type Model struct {
	spec    Spec
	eng     *engine.Engine
	tok     tokenizer.Tokenizer
	tmpl    chat.Template
	created int64
}

// Open loads spec's tokenizer, template and engine; base gives what every engine of the
// process shares (the ONNX Runtime, the metrics, the logger), spec the rest. The
// engine's step loop runs in Server.Run.
func Open(spec Spec, base engine.Config) (*Model, error) {
	tok, err := openTokenizer(spec)
	if err != nil {
		return nil, fmt.Errorf("llm model %q: tokenizer: %w", spec.Name, err)
	}
	tmpl, err := openTemplate(spec)
	if err != nil {
		return nil, fmt.Errorf("llm model %q: chat_template: %w", spec.Name, err)
	}
	cfg := base
	cfg.Model, cfg.Path, cfg.Threads, cfg.ContextLength = spec.Name, spec.ModelPath, spec.Threads, spec.ContextLength
	cfg.BlockSize, cfg.CacheTokens, cfg.MaxSeqs, cfg.MaxBatchedTokens = spec.BlockSize, spec.CacheTokens, spec.MaxSeqs, spec.MaxBatchedTokens
	cfg.PrefixCache, cfg.EOS, cfg.SessionConfig = spec.PrefixCache, tok.EOS(), spec.SessionConfig
	if cfg.Logger != nil {
		cfg.Logger = cfg.Logger.With("version", spec.Version) // a model's versions run side by side
	}
	eng, err := engine.Open(cfg)
	if err != nil {
		return nil, fmt.Errorf("llm model %q: %w", spec.Name, err)
	}
	created := time.Now().Unix()
	if fi, err := os.Stat(spec.ModelPath); err == nil {
		created = fi.ModTime().Unix()
	}
	return &Model{spec: spec, eng: eng, tok: tok, tmpl: tmpl, created: created}, nil
}

// openTokenizer takes a file in the version folder when one is named (or the default
// tokenizer.json exists), else a tiktoken encoding by name.
func openTokenizer(spec Spec) (tokenizer.Tokenizer, error) {
	path := filepath.Join(spec.Dir, spec.Tokenizer)
	if strings.HasSuffix(spec.Tokenizer, ".json") {
		return tokenizer.LoadFile(path)
	}
	return tokenizer.Load(spec.Tokenizer)
}

// openTemplate takes a file in the version folder when one exists by that name, else a
// named template.
func openTemplate(spec Spec) (chat.Template, error) {
	path := filepath.Join(spec.Dir, spec.ChatTemplate)
	if filepath.Base(path) == spec.ChatTemplate {
		if text, err := os.ReadFile(path); err == nil {
			return chat.Parse(string(text))
		}
	}
	return chat.Lookup(spec.ChatTemplate)
}

// Close frees the engine.
func (m *Model) Close() error { return m.eng.Close() }

// Info is the model's /v1/models entry.
func (m *Model) Info() llm.ModelInfo {
	return llm.ModelInfo{ID: m.spec.Name, OwnedBy: "ferry", Created: m.created, ContextLength: m.eng.ContextLength(), Embeddings: true}
}

// prompt turns a request into the token ids the engine continues, and the stop
// strings that end it.
func (m *Model) prompt(req *llm.Request) ([]int, []string, error) {
	stops := req.Sampling.Stop
	switch {
	case req.Kind == llm.Chat:
		text, err := m.tmpl.Render(req.Messages, true)
		if err != nil {
			return nil, nil, llm.BadRequest("messages", "%v", err)
		}
		// The template's markers are special tokens; the messages' text inside it is
		// the client's, which a template model accepts as HF's tokenizers do.
		return m.tok.EncodeSpecial(text), append(stops[:len(stops):len(stops)], m.tmpl.Stop()...), nil
	case len(req.PromptTokens) > 0:
		for _, id := range req.PromptTokens {
			if id < 0 || id >= m.tok.VocabSize() {
				return nil, nil, llm.BadRequest("prompt", "token id %d is outside the vocabulary (0..%d)", id, m.tok.VocabSize()-1)
			}
		}
		return req.PromptTokens, stops, nil
	default:
		return m.tok.Encode(req.Prompt), stops, nil
	}
}

// checkLength refuses what does not fit the context window: never a silent truncation.
func (m *Model) checkLength(prompt []int, maxTokens int) error {
	limit := m.eng.ContextLength()
	if len(prompt) == 0 {
		return llm.BadRequest("prompt", "the prompt is empty")
	}
	if len(prompt) >= limit || (maxTokens > 0 && len(prompt)+maxTokens > limit) {
		return llm.ContextLengthExceeded(m.spec.Name, limit, len(prompt), maxTokens)
	}
	return nil
}

// generate runs the request's choices concurrently on the engine and serialises
// their Deltas into emit.
func (m *Model) generate(ctx context.Context, req *llm.Request, emit func(llm.Delta) error) (llm.Usage, error) {
	if err := req.Unsupported(); err != nil { // no tools, no structured output
		return llm.Usage{}, err
	}
	prompt, stops, err := m.prompt(req)
	if err != nil {
		return llm.Usage{}, err
	}
	if err := m.checkLength(prompt, req.Sampling.MaxTokens); err != nil {
		return llm.Usage{}, err
	}
	n := max(req.N, 1)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu      sync.Mutex // emit is called by one goroutine at a time
		emitErr error
		wg      sync.WaitGroup
		results = make([]choiceResult, n)
	)
	send := func(d llm.Delta) error {
		mu.Lock()
		defer mu.Unlock()
		if emitErr != nil {
			return emitErr
		}
		if emitErr = emit(d); emitErr != nil {
			cancel() // the client left: every choice frees its sequence
		}
		return emitErr
	}
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = m.choice(ctx, req, i, prompt, stops, send)
		}()
	}
	wg.Wait()
	u := llm.Usage{PromptTokens: len(prompt)}
	for _, r := range results {
		u.CompletionTokens += r.tokens
		u.CachedTokens = max(u.CachedTokens, r.cached)
	}
	if emitErr != nil {
		return u, emitErr
	}
	for _, r := range results {
		if r.err != nil {
			return u, r.err
		}
	}
	return u, nil
}

type choiceResult struct {
	tokens, cached int
	err            error
}

// choice generates one choice: token ids from the engine, text through a stream
// decoder and the stop matcher, a final Delta with the finish reason.
func (m *Model) choice(ctx context.Context, req *llm.Request, index int, prompt []int, stops []string, send func(llm.Delta) error) choiceResult {
	p := req.Sampling
	if p.Seed != nil && index > 0 {
		seed := *p.Seed + int64(index) // n choices from one seed differ, and repeat together
		p.Seed = &seed
	}
	dec := tokenizer.NewStreamDecoder(m.tok)
	match := stop.NewMatcher(stops)
	first := true
	delta := func(text string, ids []int, lps []llm.Logprob, finish string) llm.Delta {
		d := llm.Delta{Index: index, Text: text, TokenIDs: ids, Logprobs: lps, FinishReason: finish}
		if first && req.Kind == llm.Chat {
			d.Role = "assistant"
		}
		first = false
		return d
	}
	if req.Echo && req.Kind == llm.Completion {
		if err := send(delta(m.tok.Decode(prompt), nil, nil, "")); err != nil {
			return choiceResult{err: err}
		}
	}
	res, err := m.eng.Generate(ctx, prompt, p, func(t engine.Token) error {
		if m.ends(t.ID, p) {
			return nil // the engine's last token: counted, as vLLM counts it, but not text
		}
		text := dec.Add(t.ID)
		out, stopped := match.Push(text)
		var lps []llm.Logprob
		if p.WantLogprobs {
			lps = []llm.Logprob{m.logprob(t)}
		}
		if out != "" || lps != nil {
			if err := send(delta(out, []int{t.ID}, lps, "")); err != nil {
				return err
			}
		}
		if stopped {
			return engine.ErrStop // the engine frees the sequence and finishes it "stop"
		}
		return nil
	})
	if err != nil {
		return choiceResult{tokens: res.CompletionTokens, cached: res.CachedTokens, err: err}
	}
	tail := ""
	if !match.Stopped() { // what a stop string cut stays cut
		tail, _ = match.Push(dec.Flush())
		if !match.Stopped() {
			tail += match.Flush()
		}
	}
	finish := res.FinishReason
	if match.Stopped() {
		finish = "stop"
	}
	if e := send(delta(tail, nil, nil, finish)); e != nil {
		return choiceResult{tokens: res.CompletionTokens, cached: res.CachedTokens, err: e}
	}
	return choiceResult{tokens: res.CompletionTokens, cached: res.CachedTokens}
}

// ends reports whether id is the token that ends a sequence (the engine emits it last).
func (m *Model) ends(id int, p llm.Sampling) bool {
	return (id == m.tok.EOS() && !p.IgnoreEOS) || slices.Contains(p.StopTokenIDs, id)
}

func (m *Model) logprob(t engine.Token) llm.Logprob {
	lp := llm.Logprob{ID: t.ID, Token: m.tok.Decode([]int{t.ID}), Logprob: float64(t.Logprob)}
	for _, a := range t.Top {
		lp.Top = append(lp.Top, llm.TopLogprob{ID: a.ID, Token: m.tok.Decode([]int{a.ID}), Logprob: float64(a.Logprob)})
	}
	return lp
}

// embed tokenizes the inputs and asks the engine for their vectors.
func (m *Model) embed(ctx context.Context, req *llm.EmbedRequest) (*llm.EmbedResponse, error) {
	inputs := req.Tokens
	if len(inputs) == 0 {
		for _, s := range req.Input {
			inputs = append(inputs, m.tok.Encode(s))
		}
	}
	u := llm.Usage{}
	for i, ids := range inputs {
		if len(ids) == 0 {
			return nil, llm.BadRequest("input", "input %d is empty", i)
		}
		if len(ids) > m.eng.ContextLength() {
			return nil, llm.BadRequest("input", "input %d has %d tokens; this model's maximum context length is %d", i, len(ids), m.eng.ContextLength())
		}
		u.PromptTokens += len(ids)
	}
	vecs, err := m.eng.Embed(ctx, inputs)
	if err != nil {
		return nil, err
	}
	return &llm.EmbedResponse{Vectors: vecs, Usage: u}, nil
}
