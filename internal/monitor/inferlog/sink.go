package inferlog

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"
)

// sink is one destination. Its runner calls write and tick from one goroutine, so a
// sink needs no locking of its own for them.
type sink interface {
	name() string
	// write delivers a batch and reports how many entries it delivered; ctx ends when
	// Close gives up waiting.
	write(ctx context.Context, batch []*capture) (int, error)
	// tick lets a sink act on time while idle (roll an old file).
	tick(now time.Time)
	// close flushes and releases the sink.
	close(ctx context.Context) error
}

// maxBatch bounds one write: large enough to amortize a syscall or a produce request.
const maxBatch = 256

// tickEvery is how often a sink is ticked (the file sink flushes its buffers then).
const tickEvery = 100 * time.Millisecond

// runner owns one sink: its bounded queue and the goroutine draining it. A stuck sink
// fills only its own queue; the dispatcher then drops that sink's entries.
type runner struct {
	s       sink
	log     *slog.Logger
	queue   chan *capture
	done    chan struct{}
	ctx     context.Context
	cancel  context.CancelFunc
	records atomic.Uint64 // delivered
	dropped atomic.Uint64 // refused by a full queue
	failed  atomic.Uint64 // lost to write errors
	err     error         // close's, read after done
	warned  atomic.Int64  // unix ns of the last write-failure warning
}

func startRunner(s sink, buffer int, log *slog.Logger) *runner {
	ctx, cancel := context.WithCancel(context.Background())
	r := &runner{s: s, log: log.With("sink", s.name()), queue: make(chan *capture, buffer), done: make(chan struct{}), ctx: ctx, cancel: cancel}
	go r.run()
	return r
}

// offer queues c for the sink, or drops it at once when the queue is full.
func (r *runner) offer(c *capture) {
	select {
	case r.queue <- c:
	default:
		r.dropped.Add(1)
		c.release()
	}
}

// run drains the queue in batches until the dispatcher closes it, then closes the sink.
func (r *runner) run() {
	defer close(r.done)
	t := time.NewTicker(tickEvery)
	defer t.Stop()
	batch := make([]*capture, 0, maxBatch)
	for {
		select {
		case c, ok := <-r.queue:
			if !ok {
				r.err = r.s.close(r.ctx)
				return
			}
			batch = r.fill(append(batch[:0], c))
			r.deliver(batch)
			clear(batch)
		case now := <-t.C:
			r.s.tick(now)
		}
	}
}

// fill adds what is already queued, without waiting.
func (r *runner) fill(batch []*capture) []*capture {
	for len(batch) < maxBatch {
		select {
		case c, ok := <-r.queue:
			if !ok {
				return batch
			}
			batch = append(batch, c)
		default:
			return batch
		}
	}
	return batch
}

// warnEvery rate-limits the write-failure warnings.
const warnEvery = 5 * time.Second

func (r *runner) deliver(batch []*capture) {
	n, err := r.s.write(r.ctx, batch)
	r.records.Add(uint64(n))
	if err != nil {
		r.failed.Add(uint64(len(batch) - n))
		r.warn(err, len(batch)-n)
	}
	for _, c := range batch {
		c.release()
	}
}

func (r *runner) warn(err error, lost int) {
	now := time.Now().UnixNano()
	if prev := r.warned.Load(); now-prev < int64(warnEvery) || !r.warned.CompareAndSwap(prev, now) {
		return
	}
	r.log.Warn("inference log entries lost", "lost", lost, "err", err)
}

// wait blocks until the runner has drained its queue and closed its sink, or ctx ends
// (then it cancels the sink's writes and still waits for the goroutine to exit).
func (r *runner) wait(ctx context.Context) error {
	select {
	case <-r.done:
	case <-ctx.Done():
		r.cancel()
		<-r.done
		return fmt.Errorf("sink %s: %w", r.s.name(), ctx.Err())
	}
	r.cancel()
	if r.err != nil {
		return fmt.Errorf("sink %s: %w", r.s.name(), r.err)
	}
	return nil
}
