package engine

import (
	"context"
	"errors"
	"time"

	"github.com/ferryml/ferry/internal/llm"
	"github.com/ferryml/ferry/internal/llm/sample"
)

// Token is one generated token: its id, its log probability, and the best
// alternatives when the request asked for logprobs.
type Token struct {
	ID      int
	Logprob float32
	Top     []sample.Alt
}

// Result sums up one finished Generate.
type Result struct {
	PromptTokens, CachedTokens, CompletionTokens int
	FinishReason                                 string // "stop" | "length" | "abort"
}

// Generate runs prompt to completion under p, calling emit once per generated token,
// in order, on the caller's goroutine. A sequence that ends on the end-of-sequence id
// or a StopTokenIDs id emits that token last (finish "stop"; the caller leaves it out
// of the text); one that reaches MaxTokens or the context finishes "length".
//
// When emit returns an error or ctx ends, the sequence's KV blocks are released
// before Generate returns the error (finish "abort"); when emit returns ErrStop (the
// caller's stop string matched), they are released and the sequence finishes "stop"
// with no error. A prompt that does not fit the
// context is llm.ContextLengthExceeded, never truncated. Generate needs Run.
func (e *Engine) Generate(ctx context.Context, prompt []int, p llm.Sampling, emit func(Token) error) (Result, error) {
	s, err := e.newSeq(prompt, p)
	if err != nil {
		return Result{}, err
	}
	res := Result{PromptTokens: len(prompt)}
	select {
	case e.submit <- s:
	case <-ctx.Done():
		return e.abandon(res, ctx.Err())
	case <-e.stopped:
		return res, llm.Unavailable(1, "model %s: the engine is stopped", e.cfg.Model)
	case <-e.closed:
		return res, llm.Unavailable(1, "model %s: the engine is closed", e.cfg.Model)
	default:
		return res, llm.Unavailable(1, "model %s: the engine's queue is full", e.cfg.Model)
	}
	reason, err := e.deliver(ctx, s, emit, &res)
	switch {
	case reason == "abort" && errors.Is(err, ErrStop):
		e.release(s)
		reason, err = "stop", nil
	case reason == "abort":
		return e.cancel(s, res, err)
	case err != nil:
		return res, err
	}
	res.FinishReason = reason
	s.mu.Lock()
	res.CachedTokens = s.cached
	queued := s.queued
	s.mu.Unlock()
	e.met.finished(res, queued, time.Since(s.arrival))
	return res, nil
}

// deliver passes s's tokens to emit as the loop produces them, counting them in
// res, until the sequence finishes (its reason), the caller leaves ("abort" and why)
// or the engine fails it (its error).
func (e *Engine) deliver(ctx context.Context, s *seq, emit func(Token) error, res *Result) (string, error) {
	var (
		buf  []Token
		last time.Time
	)
	for {
		select {
		case <-s.notify:
		case <-ctx.Done():
			return "abort", ctx.Err()
		case <-e.stopped:
		case <-e.closed:
		}
		toks, done, reason, err := s.take(buf)
		buf = toks
		for _, tok := range toks {
			now := time.Now()
			if res.CompletionTokens == 0 {
				e.met.firstToken(now.Sub(s.arrival))
			} else {
				e.met.interToken(now.Sub(last))
			}
			last = now
			res.CompletionTokens++
			if err := emit(tok); err != nil {
				return "abort", err
			}
		}
		switch {
		case err != nil:
			return "", err
		case done:
			return reason, nil
		case isClosed(e.stopped) || isClosed(e.closed):
			// The loop ends the sequences it holds before stopped closes; this
			// one was still in the submit queue.
			return "", llm.Unavailable(1, "model %s: the engine stopped", e.cfg.Model)
		}
	}
}

// newSeq checks prompt and p against the model and builds the sequence.
func (e *Engine) newSeq(prompt []int, p llm.Sampling) (*seq, error) {
	n, ctxLen := len(prompt), e.cfg.ContextLength
	switch {
	case n == 0:
		return nil, llm.BadRequest("prompt", "the prompt is empty: at least one token is needed")
	case p.MaxTokens < 0:
		return nil, llm.BadRequest("max_tokens", "max_tokens must be >= 0, got %d", p.MaxTokens)
	case n >= ctxLen || (p.MaxTokens > 0 && n+p.MaxTokens > ctxLen):
		return nil, llm.ContextLengthExceeded(e.cfg.Model, ctxLen, n, p.MaxTokens)
	}
	for i, id := range prompt {
		if id < 0 || id >= e.shape.vocab {
			return nil, llm.BadRequest("prompt", "prompt token %d is id %d, outside the vocabulary [0, %d)", i, id, e.shape.vocab)
		}
	}
	eos := e.cfg.EOS
	if p.IgnoreEOS {
		eos = -1
	}
	s := &seq{
		tokens: append(make([]int, 0, n+16), prompt...), promptLen: n, limit: ctxLen,
		sampler: sample.New(p, prompt, e.cfg.EOS), eos: eos, arrival: time.Now(),
		freed: make(chan struct{}), notify: make(chan struct{}, 1), slot: -1,
	}
	if p.MaxTokens > 0 {
		s.limit = n + p.MaxTokens
	}
	if len(p.StopTokenIDs) > 0 {
		s.stop = make(map[int]bool, len(p.StopTokenIDs))
		for _, id := range p.StopTokenIDs {
			s.stop[id] = true
		}
	}
	e.mu.Lock()
	e.nextID++
	s.id = e.nextID
	e.mu.Unlock()
	return s, nil
}

// ErrStop, returned by Generate's emit, ends the sequence as finished ("stop"): the
// caller saw its stop string in the text.
var ErrStop = errors.New("engine: stop")

// cancel drops s as aborted.
func (e *Engine) cancel(s *seq, res Result, err error) (Result, error) {
	e.release(s)
	return e.abandon(res, err)
}

// release asks the loop to drop s and waits until its blocks are free.
func (e *Engine) release(s *seq) {
	s.cancelled.Store(true)
	select {
	case e.wake <- struct{}{}:
	default:
	}
	e.mu.Lock()
	started := e.started
	e.mu.Unlock()
	if !started { // no loop holds s yet; one that starts later drops it unrun
		return
	}
	select {
	case <-s.freed:
	case <-e.stopped:
	case <-e.closed:
	}
}

// abandon counts an aborted request.
func (e *Engine) abandon(res Result, err error) (Result, error) {
	res.FinishReason = "abort"
	e.met.aborted(res)
	return res, err
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
