package engine

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferryml/ferry/internal/llm/kv"
	"github.com/ferryml/ferry/internal/llm/sample"
)

// seq is one request's sequence. The step loop owns every field above the outbox;
// Generate reads the outbox under mu.
type seq struct {
	id        uint64
	tokens    []int // the prompt, then each generated token
	promptLen int
	limit     int // generation ends ("length") when len(tokens) reaches it
	computed  int // leading tokens whose KV is in table
	table     kv.Table
	slot      int // its row of a shared-KV cache (slots.go); -1: none
	sampler   *sample.Sampler
	stop      map[int]bool // StopTokenIDs
	eos       int          // -1 when ignored
	cached    int          // prompt tokens the first admission found in the prefix cache
	admitted  bool         // scheduled at least once
	step      uint64       // the last step that scheduled it
	arrival   time.Time

	cancelled atomic.Bool   // set by Generate when its caller leaves
	freed     chan struct{} // closed by the loop once the sequence's blocks are released

	mu     sync.Mutex
	notify chan struct{} // cap 1: the outbox changed
	out    []Token       // produced, not yet taken by Generate
	queued time.Duration // arrival to first scheduling, set once
	done   bool
	reason string // finish reason once done
	err    error  // set when the engine failed the sequence
}

// push hands tokens (and the end, when reason is set) to Generate without blocking.
func (s *seq) push(tok *Token, reason string, err error) {
	s.mu.Lock()
	if tok != nil {
		s.out = append(s.out, *tok)
	}
	if reason != "" || err != nil {
		s.done, s.reason, s.err = true, reason, err
	}
	s.mu.Unlock()
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// take returns what the loop produced since the last take.
func (s *seq) take(buf []Token) (toks []Token, done bool, reason string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	toks = append(buf[:0], s.out...)
	s.out = s.out[:0]
	return toks, s.done, s.reason, s.err
}

// generated is how many tokens the sequence has produced.
func (s *seq) generated() int { return len(s.tokens) - s.promptLen }

// finishReason is why the sequence ends after its newest token, or "".
func (s *seq) finishReason() string {
	last := s.tokens[len(s.tokens)-1]
	switch {
	case last == s.eos || s.stop[last]:
		return "stop"
	case len(s.tokens) >= s.limit:
		return "length"
	}
	return ""
}
