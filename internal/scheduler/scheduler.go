package scheduler

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ferryml/ferry/internal/platform/threadprio"
	"github.com/ferryml/ferry/internal/tensor"
)

// Instance is one execution instance of a model version (an ONNX Runtime session, a
// child process, an upstream connection). The scheduler calls Execute from one goroutine
// at a time per instance and Close once, after the last Execute has returned.
type Instance interface {
	// Execute runs the model on in (full tensors, batch dimension included when the
	// model batches) and returns the outputs named in want (all when want is nil).
	Execute(ctx context.Context, in []*tensor.Tensor, want []string) ([]*tensor.Tensor, error)
	Close() error
}

// Errors a request can end with before it runs. Core maps them to its vocabulary.
var (
	ErrClosed    = errors.New("scheduler closed")
	ErrQueueFull = errors.New("queue is full")
	ErrTimeout   = errors.New("request timeout expired in the queue")
)

// Request is the scheduler's view of one inference request.
type Request struct {
	Inputs  []*tensor.Tensor
	Outputs []string // nil: all outputs
	// Priority is the request's priority level (1 is highest); 0 means the default.
	Priority int
	// Background queues the request behind every priority level (a batch job's rows):
	// the dynamic batcher fills a batch with it only when no other request waits.
	Background bool
	// Timeout bounds the time in the queue when the queue policy allows overriding its
	// default; 0 means the policy's default.
	Timeout time.Duration
	// Sequence places the request in its stateful sequence (models with sequence batching).
	Sequence *Sequence
}

// Timing breaks a request's time down the way the statistics extension reports it.
type Timing struct {
	Queue  time.Duration // waiting in the queue for a batch and an instance
	Input  time.Duration // preparing the batch's inputs (concatenation)
	Infer  time.Duration // the backend's Execute for the whole batch
	Output time.Duration // splitting the batch's outputs
	Batch  int           // rows in the execution this request was part of
	// Leader is true for exactly one request of each execution, so counting executions
	// and per-batch statistics over requests counts each execution once.
	Leader bool
}

// Result is what Submit returns.
type Result struct {
	Outputs []*tensor.Tensor
	Timing  Timing
}

// Observer is told what the queue does; metrics implement it. Calls must not block.
type Observer interface {
	Executed(rows int)               // one backend execution of that many rows
	Dropped(reason string)           // a request left without running: "cancelled", "deadline", "timeout", "queue_full"
	QueueDepth(level int, delta int) // requests waiting at a priority level
	// Batched is told, once per batch the dynamic batcher forms, how long its oldest
	// request waited and why it ran (ReasonFull, ReasonPreferred, ReasonDelay, ReasonIdle).
	Batched(waited time.Duration, reason string)
}

// Options configure a Scheduler.
type Options struct {
	// MaxBatchSize is the model's max_batch_size: 0 means it does not batch.
	MaxBatchSize int
	// Batching enables the dynamic batcher; nil runs each request as it comes.
	Batching *Batching
	// Sequencing enables the sequence batcher (stateful models); it replaces Batching.
	Sequencing *Sequencing
	Observer   Observer // may be nil
}

// Scheduler runs requests for one model version on its instances: directly on the next
// idle instance, or through the dynamic batcher's queue when batching is configured.
type Scheduler struct {
	name      string
	opts      Options
	idle      chan *slot // instances free to run; each is in the channel or running
	slots     []*slot
	instances []Instance // the same instances by index (the sequence batcher addresses them so)
	batcher   *batcher   // nil without dynamic batching
	sequencer *sequencer // nil without sequence batching

	mu       sync.Mutex
	closed   bool
	inflight sync.WaitGroup
}

// New builds a scheduler over already-open instances and owns them from now on. With
// dynamic batching it starts the batcher goroutine, which Close stops.
func New(name string, instances []Instance, opts Options) *Scheduler {
	if opts.Observer == nil {
		opts.Observer = nopObserver{}
	}
	s := &Scheduler{name: name, opts: opts, idle: make(chan *slot, len(instances)), instances: instances}
	for _, in := range instances {
		sl := &slot{inst: in}
		s.slots = append(s.slots, sl)
		s.idle <- sl
	}
	if opts.Sequencing != nil {
		s.sequencer = newSequencer(s, *opts.Sequencing)
		go s.sequencer.loop()
	} else if opts.Batching != nil {
		s.batcher = newBatcher(s, *opts.Batching)
		s.batcher.start()
	}
	return s
}

// Submit runs req and returns when its outputs are ready, the context ends (a request
// still queued then leaves without running), or the scheduler is closed.
func (s *Scheduler) Submit(ctx context.Context, req *Request) (*Result, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, fmt.Errorf("%s: %w", s.name, ErrClosed)
	}
	s.inflight.Add(1)
	s.mu.Unlock()
	defer s.inflight.Done()
	if s.sequencer != nil {
		return s.sequencer.submit(ctx, req)
	}
	if s.batcher != nil {
		return s.batcher.submit(ctx, req)
	}
	return s.direct(ctx, req)
}

// direct runs a request on the next idle instance, without batching.
func (s *Scheduler) direct(ctx context.Context, req *Request) (*Result, error) {
	start := time.Now()
	var sl *slot
	select {
	case sl = <-s.idle:
	case <-ctx.Done():
		s.opts.Observer.Dropped(dropReason(ctx))
		return nil, context.Cause(ctx)
	}
	defer func() { s.idle <- sl }()
	if err := ctx.Err(); err != nil {
		s.opts.Observer.Dropped(dropReason(ctx))
		return nil, context.Cause(ctx)
	}
	res := &Result{Timing: Timing{Queue: time.Since(start), Batch: s.rows(req), Leader: true}}
	t0 := time.Now()
	out, err := execute(ctx, sl.inst, req.Inputs, req.Outputs)
	res.Timing.Infer = time.Since(t0)
	s.opts.Observer.Executed(res.Timing.Batch)
	if err != nil {
		return nil, err
	}
	res.Outputs = out
	return res, nil
}

// onThread calls do with each value from work, in order, from one OS thread of its own,
// until work is closed. The batcher and the sequencer run each
// instance this way. ONNX Runtime keeps per-thread state for the thread that calls Run
// (which of its workers served it last, its queue), and a goroutine that Go moves
// between threads loses it: with the mlp example (one 2-thread session) a 64-row run
// takes 1.21-1.24 ms inside the server on one thread, 1.56-1.63 ms otherwise, and 32
// clients sending 8 items each get 22% more through. (Handing each unbatched request to
// its instance's thread instead cost more than it gained, so direct runs stay on the
// caller's goroutine.) The thread is an inference thread: in front of request handling
// for the Linux scheduler (see threadprio).
//
// When work closes, the thread goes back to Go's pool rather than exiting with the
// goroutine: a child process started from it earlier (os/exec forks from whichever
// thread runs the caller) would get its parent-death signal. A Python model's process
// was killed so when an unrelated model's scheduler stopped.
func onThread[T any](work <-chan T, do func(T)) {
	threadprio.Do(func() error { //nolint:errcheck // the loop returns no error
		for v := range work {
			do(v)
		}
		return nil
	})
}

// execute shields the server from a panicking backend: the panic becomes this request's error.
func execute(ctx context.Context, inst Instance, in []*tensor.Tensor, want []string) (out []*tensor.Tensor, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("backend panic: %v", r)
		}
	}()
	return inst.Execute(ctx, in, want)
}

// rows is a request's batch size: the first dimension of its first input when the model
// batches, else 1.
func (s *Scheduler) rows(req *Request) int {
	if s.opts.MaxBatchSize == 0 || len(req.Inputs) == 0 || len(req.Inputs[0].Shape) == 0 {
		return 1
	}
	return int(req.Inputs[0].Shape[0])
}

// Close stops taking requests, waits for those in flight (queued ones still run), stops
// the batcher, then closes every instance.
func (s *Scheduler) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.inflight.Wait()
	if s.batcher != nil {
		s.batcher.stop()
	}
	if s.sequencer != nil {
		s.sequencer.stop()
	}
	var errs []error
	for _, sl := range s.slots {
		errs = append(errs, sl.inst.Close())
	}
	return errors.Join(errs...)
}

// slot is one instance and, with dynamic batching, the worker goroutine that runs the
// batches formed for it (a long-lived goroutine keeps its grown stack between batches).
type slot struct {
	inst Instance
	work chan []*item
}

type nopObserver struct{}

func (nopObserver) Executed(int)                  {}
func (nopObserver) Dropped(string)                {}
func (nopObserver) QueueDepth(int, int)           {}
func (nopObserver) Batched(time.Duration, string) {}

// dropReason names why a request whose context ended left the queue: "deadline" when
// its end-to-end deadline passed (gRPC deadline, Ferry-Timeout), else "cancelled" (the
// client went away). "timeout" is the queue policy's own timeout.
func dropReason(ctx context.Context) string {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return "deadline"
	}
	return "cancelled"
}
