package openai

import (
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/ferryml/ferry/internal/llm"
	"github.com/ferryml/ferry/internal/transport/middleware"
)

// sseWriter writes server-sent events to one response. The backend's emit and the
// keep-alive goroutine both write, so a mutex orders them. Nothing is written, not
// even the headers, until the first event or keep-alive: an error the backend returns
// before that (a prompt past the context window, an unknown model) is still answered
// with its own status.
type sseWriter struct {
	mu      sync.Mutex
	w       http.ResponseWriter
	rc      *http.ResponseController
	started bool
	last    time.Time // of the last write, for the keep-alive
}

func newSSEWriter(w http.ResponseWriter) *sseWriter {
	return &sseWriter{w: w, rc: http.NewResponseController(w), last: time.Now()}
}

// write sends one event (or comment) and flushes it, so the client sees each token as
// it is made. It is called with mu held.
func (s *sseWriter) write(p []byte) error {
	if !s.started {
		s.started = true
		hd := s.w.Header()
		hd.Set("Content-Type", "text/event-stream")
		hd.Set("Cache-Control", "no-cache")
		hd.Set("X-Accel-Buffering", "no") // nginx would buffer the stream otherwise
		s.w.WriteHeader(http.StatusOK)
	}
	s.last = time.Now()
	if _, err := s.w.Write(p); err != nil {
		return err
	}
	// A writer that cannot flush (a layer without Unwrap) still delivers the stream,
	// only later: that must not fail the request.
	if err := s.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	return nil
}

// data sends "data: <payload>\n\n".
func (s *sseWriter) data(payload []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	buf := make([]byte, 0, len(payload)+8)
	buf = append(append(append(buf, "data: "...), payload...), "\n\n"...)
	return s.write(buf)
}

// begun is whether any byte of the answer was written.
func (s *sseWriter) begun() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.started
}

// keepAlive writes a comment line whenever nothing was written for every, until stop
// is closed; the stream's handler closes it and waits for done before it returns, so
// this goroutine never outlives the response.
func (s *sseWriter) keepAlive(every time.Duration, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTimer(every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		s.mu.Lock()
		wait := every - time.Since(s.last)
		if wait <= 0 {
			if s.write([]byte(": keep-alive\n\n")) != nil {
				s.mu.Unlock()
				return // the client left; emit will see it too
			}
			wait = every
		}
		s.mu.Unlock()
		t.Reset(wait)
	}
}

// stream answers a streamed request as OpenAI does: one chunk per Delta, then (with
// include_usage) a chunk with no choices and the usage, then [DONE]. An error before
// anything was written is answered with its status; after, as one error event that
// ends the stream.
func (h *Handler) stream(w http.ResponseWriter, r *http.Request, s *decoded) {
	ctx, req := r.Context(), s.req
	sw := newSSEWriter(w)
	stop, done := make(chan struct{}), make(chan struct{})
	go sw.keepAlive(h.keepAlive, stop, done)
	c := h.newChunker(req, s.includeUsage)
	usage, err := h.backend.Generate(ctx, req, func(d llm.Delta) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		p, err := c.chunk(d)
		if err != nil {
			return err
		}
		return sw.data(p)
	})
	close(stop)
	<-done
	if err != nil {
		if !sw.begun() {
			h.writeError(w, r, err)
			return
		}
		_ = sw.data(errorJSON(h.logged(r, err)))
		return
	}
	if s.includeUsage {
		if err := sw.data(c.usage(usage)); err != nil {
			return
		}
	}
	_ = sw.data([]byte("[DONE]"))
}

// chunker turns Deltas into the stream's JSON chunks.
type chunker struct {
	req          *llm.Request
	created      int64
	includeUsage bool
	t            *tracker
}

func (h *Handler) newChunker(req *llm.Request, includeUsage bool) *chunker {
	return &chunker{req: req, created: h.now().Unix(), includeUsage: includeUsage, t: newTracker(req.N)}
}

// nullUsage is what every chunk but the last carries when the client asked for usage.
var nullUsage = json.RawMessage("null")

func (c *chunker) chunk(d llm.Delta) ([]byte, error) {
	first, offset, err := c.t.observe(d)
	if err != nil {
		return nil, err
	}
	var usage any // absent
	if c.includeUsage {
		usage = nullUsage
	}
	if c.req.Kind == llm.Completion {
		ch := textChoice{Index: d.Index, Text: d.Text, FinishReason: finishReason(d.FinishReason)}
		if c.req.Sampling.WantLogprobs {
			ch.Logprobs = appendText(nil, d.Logprobs, offset)
		}
		return middleware.MarshalJSON(answer[textChoice]{ID: c.req.ID, Object: "text_completion", Created: c.created, Model: c.req.Model, Choices: []textChoice{ch}, Usage: usage})
	}
	ch := chunkChoice{Index: d.Index, FinishReason: finishReason(d.FinishReason)}
	if d.Text != "" || first && len(d.ToolCalls) == 0 { // the first delta has content "" at least, as OpenAI's
		text := d.Text
		ch.Delta.Content = &text
	}
	ch.Delta.ToolCalls = d.ToolCalls
	if first {
		ch.Delta.Role = "assistant"
	}
	if c.req.Sampling.WantLogprobs {
		ch.Logprobs = appendChat(nil, d.Logprobs)
	}
	return middleware.MarshalJSON(answer[chunkChoice]{ID: c.req.ID, Object: "chat.completion.chunk", Created: c.created, Model: c.req.Model, Choices: []chunkChoice{ch}, Usage: usage})
}

// usage is the last chunk of an include_usage stream: no choices, the exchange's usage.
func (c *chunker) usage(u llm.Usage) []byte {
	object := "chat.completion.chunk"
	if c.req.Kind == llm.Completion {
		object = "text_completion"
	}
	p, _ := middleware.MarshalJSON(answer[struct{}]{ID: c.req.ID, Object: object, Created: c.created, Model: c.req.Model, Choices: []struct{}{}, Usage: toUsage(u)}) // strings and integers always encode
	return p
}
