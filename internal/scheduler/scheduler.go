package scheduler

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

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

// ErrClosed is returned for requests submitted after Close began.
var ErrClosed = errors.New("scheduler closed")

// Request is the scheduler's view of one inference request.
type Request struct {
	Inputs  []*tensor.Tensor
	Outputs []string // nil: all outputs
}

// Timing breaks a request's time down the way the statistics extension reports it.
type Timing struct {
	Queue   time.Duration // waiting for an instance
	Input   time.Duration // preparing the batch's inputs
	Infer   time.Duration // the backend's Execute
	Output  time.Duration // preparing this request's outputs
	Batch   int           // rows in the execution this request was part of
	Started time.Time
}

// Result is what Submit returns.
type Result struct {
	Outputs []*tensor.Tensor
	Timing  Timing
}

// Scheduler hands requests to idle instances of one model version.
type Scheduler struct {
	name      string
	idle      chan Instance
	instances []Instance

	mu       sync.Mutex
	closed   bool
	inflight sync.WaitGroup
}

// New builds a scheduler over already-open instances; it owns them from now on.
func New(name string, instances []Instance) *Scheduler {
	s := &Scheduler{name: name, idle: make(chan Instance, len(instances)), instances: instances}
	for _, in := range instances {
		s.idle <- in
	}
	return s
}

// Submit runs req on the next idle instance. It returns when the outputs are ready, the
// context ends (the request then does not run), or the scheduler is closed.
func (s *Scheduler) Submit(ctx context.Context, req *Request) (*Result, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, fmt.Errorf("%s: %w", s.name, ErrClosed)
	}
	s.inflight.Add(1)
	s.mu.Unlock()
	defer s.inflight.Done()

	start := time.Now()
	var inst Instance
	select {
	case inst = <-s.idle:
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
	defer func() { s.idle <- inst }()
	if err := ctx.Err(); err != nil {
		return nil, context.Cause(ctx)
	}
	res := &Result{Timing: Timing{Queue: time.Since(start), Started: start, Batch: rows(req.Inputs)}}
	t0 := time.Now()
	out, err := execute(ctx, inst, req.Inputs, req.Outputs)
	res.Timing.Infer = time.Since(t0)
	if err != nil {
		return nil, err
	}
	res.Outputs = out
	return res, nil
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

// rows is the batch size of a request: the first dimension of its first input, or 1.
func rows(in []*tensor.Tensor) int {
	if len(in) == 0 || len(in[0].Shape) == 0 {
		return 1
	}
	return int(in[0].Shape[0])
}

// Close stops taking requests, waits for those in flight, then closes every instance.
func (s *Scheduler) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.inflight.Wait()
	var errs []error
	for _, in := range s.instances {
		errs = append(errs, in.Close())
	}
	return errors.Join(errs...)
}
