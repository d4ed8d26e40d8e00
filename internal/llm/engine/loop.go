package engine

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/ferryml/ferry/internal/llm"
	"github.com/ferryml/ferry/internal/llm/sample"
)

// loop is the step loop's state; only Run's goroutine touches it.
type loop struct {
	e       *Engine
	running []*seq // admission order: the newest is preempted first
	waiting []*seq // FIFO; preempted sequences go back to the front
	decode  batch  // buffers of the decode run (one token per row)
	prefill batch  // buffers of the prefill run
	seen    struct{ queries, hits int64 }
	stepNo  uint64 // counts steps; seq.step holds the last one that scheduled it
}

// row is one sequence's share of a run: its next n uncomputed tokens.
type row struct {
	s *seq
	n int
}

// Run is the step loop. It owns the batch, the KV blocks and the session, and runs
// until ctx ends (it then returns nil) or Close is called. Sequences still running
// when it returns fail with a 503. Call it once.
func (e *Engine) Run(ctx context.Context) error {
	e.mu.Lock()
	if e.started {
		e.mu.Unlock()
		return errors.New("engine: Run called twice")
	}
	e.started = true
	e.mu.Unlock()
	l := &loop{e: e}
	defer close(e.stopped)
	defer l.failAll(llm.Unavailable(1, "model %s: the engine stopped", e.cfg.Model))
	for {
		if l.idle() {
			select {
			case s := <-e.submit:
				l.enqueue(s)
			case <-e.wake:
			case c := <-e.probe:
				c <- e.kv.Stats()
			case <-ctx.Done():
				return nil
			case <-e.closed:
				return nil
			}
		}
		if ctx.Err() != nil || isClosed(e.closed) {
			return nil
		}
		l.intake()
		l.step(ctx)
		l.publish()
	}
}

func (l *loop) idle() bool { return len(l.running) == 0 && len(l.waiting) == 0 }

func (l *loop) enqueue(s *seq) { l.waiting = append(l.waiting, s) }

// intake takes newly submitted sequences and drops cancelled ones.
func (l *loop) intake() {
	for more := true; more; {
		select {
		case s := <-l.e.submit:
			l.enqueue(s)
		case c := <-l.e.probe:
			c <- l.e.kv.Stats()
		default:
			more = false
		}
	}
	for _, s := range slices.Concat(l.running, l.waiting) {
		if s.cancelled.Load() {
			l.finish(s, "abort", nil)
		}
	}
	l.compact()
}

// step schedules one iteration and runs it: the decode rows as one batch, then the
// prefill chunks as another (padding a one-token decode to a long chunk would waste
// the chunk's compute on every decode row).
func (l *loop) step(ctx context.Context) {
	decode, prefill := l.schedule()
	for _, run := range []struct {
		rows []row
		b    *batch
	}{{decode, &l.decode}, {prefill, &l.prefill}} {
		if len(run.rows) == 0 {
			continue
		}
		logits, err := l.e.forward(ctx, run.b, run.rows)
		if err != nil {
			if ctx.Err() != nil {
				// Run returns and failAll ends every sequence still held; the ones an
				// earlier run of this step finished must leave the lists first (compact).
				break
			}
			l.e.log.Error("llm step failed", "rows", len(run.rows), "err", err)
			for _, r := range run.rows {
				l.finish(r.s, "", fmt.Errorf("model %s: %w", l.e.cfg.Model, err))
			}
			continue
		}
		l.advance(run.rows, logits)
	}
	l.compact()
}

// schedule picks this step's rows: every running decode first, then the running
// prefills, then new sequences, within MaxSeqs and MaxBatchedTokens. When blocks run
// out it preempts the newest running sequence.
func (l *loop) schedule() (decode, prefill []row) {
	budget := l.e.cfg.MaxBatchedTokens
	l.stepNo++
	add := func(r row) {
		budget -= r.n
		r.s.step = l.stepNo
		if r.n == 1 {
			decode = append(decode, r)
		} else {
			prefill = append(prefill, r)
		}
	}
	for _, decodes := range []bool{true, false} {
		for i := 0; i < len(l.running) && budget > 0; i++ {
			s := l.running[i]
			left := len(s.tokens) - s.computed
			if (left == 1) != decodes {
				continue
			}
			n := min(left, budget)
			if l.reserve(s, n) {
				add(row{s, n})
			}
		}
	}
	for len(l.waiting) > 0 && len(l.running) < l.e.cfg.MaxSeqs && budget > 0 {
		s := l.waiting[0]
		n, ok := l.admit(s, budget)
		if !ok {
			break
		}
		l.waiting = l.waiting[1:]
		l.running = append(l.running, s)
		add(row{s, n})
	}
	return decode, prefill
}

// reserve makes room for n more tokens of running sequence s, preempting the newest
// sequences not yet scheduled in this step until it fits. It reports false when s
// itself had to go.
func (l *loop) reserve(s *seq, n int) bool {
	for {
		if err := l.e.kv.Reserve(&s.table, s.computed+n); err == nil {
			return true
		}
		victim := s
		for _, x := range slices.Backward(l.running) {
			if x == s || x.step != l.stepNo {
				victim = x
				break
			}
		}
		l.preempt(victim)
		if victim == s {
			return false
		}
	}
}

// preempt frees s's blocks and puts it back at the head of the queue, to be
// recomputed (prompt and generated tokens) when there is room.
func (l *loop) preempt(s *seq) {
	l.e.kv.Free(&s.table)
	l.e.freeSlot(s)
	s.computed = 0
	l.running = slices.DeleteFunc(l.running, func(x *seq) bool { return x == s })
	l.waiting = slices.Insert(l.waiting, 0, s)
	l.e.met.preempted()
	l.e.log.Debug("llm sequence preempted", "seq", s.id, "tokens", len(s.tokens))
}

// admit matches s's cached prefix and reserves its first chunk (of at most budget
// tokens). It returns false, holding nothing, when the blocks are not there.
func (l *loop) admit(s *seq, budget int) (int, bool) {
	hit := l.e.kv.Match(&s.table, s.tokens)
	s.computed = hit
	n := min(len(s.tokens)-s.computed, budget)
	if err := l.e.kv.Reserve(&s.table, s.computed+n); err != nil {
		l.e.kv.Free(&s.table)
		s.computed = 0
		return 0, false
	}
	if l.e.slots != nil {
		l.e.takeSlot(s)
	}
	if !s.admitted {
		s.admitted = true
		s.mu.Lock()
		s.cached, s.queued = hit, time.Since(s.arrival)
		s.mu.Unlock()
	}
	return n, true
}

// advance records each row's computed tokens and samples the rows that reached the
// end of their sequence. logits holds one vocabulary row per batch row.
func (l *loop) advance(rows []row, logits []float32) {
	toks := l.sample(rows, logits)
	for i, r := range rows {
		s := r.s
		s.computed += r.n
		l.e.kv.Commit(&s.table, s.tokens[:s.computed])
		if s.computed < len(s.tokens) {
			continue // a prompt chunk: more to prefill
		}
		tok := toks[i]
		s.sampler.Accept(tok.ID)
		s.tokens = append(s.tokens, tok.ID)
		l.e.met.generatedToken()
		t := Token(tok)
		reason := s.finishReason()
		s.push(&t, "", nil)
		if reason != "" {
			l.finish(s, reason, nil)
		}
	}
}

// finish ends s: its blocks go back to the pool and Generate learns the outcome.
// compact drops it from the loop's lists.
func (l *loop) finish(s *seq, reason string, err error) {
	l.e.kv.Free(&s.table)
	l.e.freeSlot(s)
	s.computed = -1 // marks it for compact
	s.push(nil, reason, err)
	close(s.freed)
}

func (l *loop) compact() {
	gone := func(s *seq) bool { return s.computed < 0 }
	l.running = slices.DeleteFunc(l.running, gone)
	l.waiting = slices.DeleteFunc(l.waiting, gone)
	if l.e.slots != nil {
		l.e.compactSlots()
	}
}

// failAll ends every sequence the loop holds or that is queued for it.
func (l *loop) failAll(err error) {
	for more := true; more; {
		select {
		case s := <-l.e.submit:
			l.enqueue(s)
		default:
			more = false
		}
	}
	for _, s := range slices.Concat(l.running, l.waiting) {
		l.finish(s, "", err)
	}
	l.running, l.waiting = nil, nil
	l.publish()
}

// publish sets the gauges and the prefix cache counters after a step.
func (l *loop) publish() {
	st := l.e.kv.Stats()
	l.e.met.state(len(l.running), len(l.waiting)+len(l.e.submit), st.Usage(), st.Queries-l.seen.queries, st.Hits-l.seen.hits)
	l.seen.queries, l.seen.hits = st.Queries, st.Hits
}

// sample picks the next token of every row that reaches the end of its sequence in
// this run. Rows are split over the cores: ONNX Runtime is idle meanwhile, and each
// row's sampler belongs to its own sequence.
func (l *loop) sample(rows []row, logits []float32) []sample.Token {
	v := l.e.shape.vocab
	toks := make([]sample.Token, len(rows))
	var due []int
	for i, r := range rows {
		if r.s.computed+r.n == len(r.s.tokens) {
			due = append(due, i)
		}
	}
	workers := min(runtime.GOMAXPROCS(0), len(due))
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for j := w; j < len(due); j += workers {
				i := due[j]
				toks[i] = rows[i].s.sampler.Next(logits[i*v : (i+1)*v])
			}
		})
	}
	wg.Wait()
	return toks
}
