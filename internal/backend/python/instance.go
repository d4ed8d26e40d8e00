package python

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/ferryml/ferry/internal/tensor"
)

// ErrClosed is returned by Execute after Close.
var ErrClosed = errors.New("python instance closed")

// Instance is one instance of a Python model: a supervised child process running
// model.py. Execute and ExecuteRequests are called by one goroutine at a time; Close
// once, after the last of them has returned.
type Instance struct {
	spec spec
	log  *slog.Logger
	exec sync.Mutex // serializes executions, which share the process's pipes

	mu      sync.Mutex
	cur     *proc            // the initialized process; nil while (re)starting or closed
	down    *RestartingError // why cur is nil while the supervisor restarts it; never mutated
	closed  bool             // Close has begun
	changed chan struct{}    // closed and replaced whenever cur, down or closed change

	quit      chan struct{} // closed by Close
	done      chan struct{} // closed when the supervisor has stopped the last process
	closeOnce sync.Once
	closeErr  error // the supervisor's verdict on finalize(); read after done
}

// spec is everything needed to (re)start the process, fixed at Open.
type spec struct {
	model, version, instance string
	interpreter, runner      string
	dir                      string // the temporary folder holding the runner, removed by Close
	initArgs                 []byte // JSON for the init frame
	outputs                  map[string]outputSpec
	outputOrder              []string
	batched                  bool
	opts                     Options
}

// Execute runs one request: execute() receives a list of one request.
func (in *Instance) Execute(ctx context.Context, inputs []*tensor.Tensor, want []string) ([]*tensor.Tensor, error) {
	outs, errs := in.ExecuteRequests(ctx, [][]*tensor.Tensor{inputs}, [][]string{want})
	return outs[0], errs[0]
}

// ExecuteRequests runs a batch of requests in one call of execute(), which receives
// them as a list, as Triton's Python backend does; each request gets its own outputs
// or its own error. want[i] names request i's outputs (nil: all of the config's).
func (in *Instance) ExecuteRequests(ctx context.Context, inputs [][]*tensor.Tensor, want [][]string) ([][]*tensor.Tensor, []error) {
	in.exec.Lock()
	defer in.exec.Unlock()
	outs := make([][]*tensor.Tensor, len(inputs))
	errs := make([]error, len(inputs))
	fail := func(err error) ([][]*tensor.Tensor, []error) {
		for i := range errs {
			errs[i] = err
		}
		return outs, errs
	}
	names := make([][]string, len(inputs))
	for i := range inputs {
		if i < len(want) && want[i] != nil {
			names[i] = want[i]
		} else {
			names[i] = in.spec.outputOrder
		}
	}
	if err := ctx.Err(); err != nil { // else the frame may still be sent and execute() run
		return fail(in.errorf("%w", context.Cause(ctx)))
	}
	p, err := in.acquire(ctx)
	if err != nil {
		return fail(err)
	}
	res, err := in.roundTrip(ctx, p, inputs, names)
	p.users.Done()
	var nr notRun
	if errors.As(err, &nr) {
		// The process died (a hung execute() killed) before it took this batch: run it
		// on the new one.
		if p, err = in.acquire(ctx); err != nil {
			return fail(err)
		}
		res, err = in.roundTrip(ctx, p, inputs, names)
		p.users.Done()
	}
	if err != nil {
		return fail(err)
	}
	if len(res) != len(inputs) {
		p.kill()
		return fail(in.errorf("protocol error: %d results for %d requests", len(res), len(inputs)))
	}
	for i, r := range res {
		var w []string
		if i < len(want) {
			w = want[i]
		}
		outs[i], errs[i] = in.check(r, w)
	}
	return outs, errs
}

// roundTrip sends one execute frame and returns the results.
func (in *Instance) roundTrip(ctx context.Context, p *proc, inputs [][]*tensor.Tensor, want [][]string) ([]result, error) {
	for p.abandoned > 0 { // the process is still busy with calls whose callers left
		f, ok, err := p.await(ctx)
		if err != nil {
			return nil, in.errorf("waiting for the process to finish an abandoned execute(): %w", err)
		}
		if !ok {
			return nil, notRun{in.lost(p, "an abandoned execute()")}
		}
		if f.kind != kindResults {
			p.kill()
			return nil, in.errorf("protocol error: frame %q instead of results", f.kind)
		}
		if p.abandoned--; p.abandoned == 0 && p.watchdog != nil {
			p.watchdog.Stop()
			p.watchdog = nil
		}
	}
	b, err := encodeExecute(inputs, want)
	if err != nil {
		return nil, in.errorf("%w", err)
	}
	if err := p.send(ctx, kindExecute, b); err != nil {
		if ctx.Err() != nil {
			p.kill() // a partial frame may be in the pipe
			return nil, in.errorf("sending the request: %w", err)
		}
		return nil, in.lost(p, "execute()")
	}
	f, ok, err := p.await(ctx)
	switch {
	case err != nil:
		p.abandoned++ // execute() cannot be interrupted; the next call reads its results first
		if t := in.spec.opts.HangTimeout; t > 0 && p.watchdog == nil {
			p.watchdog = time.AfterFunc(t, func() {
				in.log.Warn("execute() still running past its caller's end: the process counts as hung and is killed", "pid", p.pid, "after", t)
				p.kill()
			})
		}
		return nil, in.errorf("request ended while execute() ran: %w", err)
	case !ok:
		return nil, in.lost(p, "execute()")
	case f.kind != kindResults:
		p.kill()
		return nil, in.errorf("protocol error: frame %q instead of results", f.kind)
	}
	res, err := decodeResults(f.payload)
	if err != nil {
		p.kill()
		return nil, in.errorf("protocol error: %w", err)
	}
	return res, nil
}

// notRun is an error for a batch the process never took: it died first.
type notRun struct{ error }

func (e notRun) Unwrap() error { return e.error }

// lost reports a process that went away (or broke the protocol) during an operation.
func (in *Instance) lost(p *proc, during string) error {
	p.reap()
	err := &ProcessError{Model: in.spec.model, Instance: in.spec.instance, PID: p.pid, Status: p.status(), During: during}
	if perr := p.protocolErr(); perr != nil {
		err.Protocol = perr.Error()
	}
	return err
}

// acquire returns the live process. While a new one is being started it waits for it
// (within RestartWait); while the supervisor waits out a back-off it fails at once
// with the RestartingError, rather than hold the request for up to maxBackoff. The
// caller must call users.Done on the process.
func (in *Instance) acquire(ctx context.Context) (*proc, error) {
	var timeout <-chan time.Time
	for {
		in.mu.Lock()
		p, down, closed, changed := in.cur, in.down, in.closed, in.changed
		if p != nil && p.hasExited() { // the supervisor has yet to notice; it publishes soon
			p = nil
		}
		if p != nil && !closed {
			p.users.Add(1)
		}
		in.mu.Unlock()
		switch {
		case closed:
			return nil, in.errorf("%w", ErrClosed)
		case p != nil:
			return p, nil
		case down != nil && !down.Starting():
			return nil, down
		}
		if timeout == nil {
			t := time.NewTimer(in.spec.opts.RestartWait)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-changed:
		case <-timeout:
			return nil, in.errorf("the process is still restarting after %s", in.spec.opts.RestartWait)
		case <-ctx.Done():
			return nil, in.errorf("waiting for the process to restart: %w", context.Cause(ctx))
		}
	}
}

// publish makes p the process requests run on, or (p nil) says why there is none.
func (in *Instance) publish(p *proc, down *RestartingError) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.cur, in.down = p, down
	close(in.changed)
	in.changed = make(chan struct{})
}

// start spawns a process and runs initialize(); on failure nothing is left running.
func (in *Instance) start(ctx context.Context) (*proc, error) {
	p, err := spawn(in.spec.opts.Interpreter, in.spec.runner, in.spec.opts.MaxFrameBytes, in.log)
	if err != nil {
		return nil, in.errorf("starting %s: %w", in.spec.opts.Interpreter, err)
	}
	b := &frameBuilder{}
	b.data(in.spec.initArgs)
	err = p.send(ctx, kindInit, b)
	var f frame
	ok := false
	if err == nil {
		f, ok, err = p.await(ctx)
	}
	switch {
	case err == nil && ok && f.kind == kindReady:
		p.readyAt = time.Now()
		in.log.Info("python process ready", "pid", p.pid, "took", time.Since(p.started).Round(time.Millisecond), "runtime", string(f.payload))
		return p, nil
	case ctx.Err() != nil:
		err = fmt.Errorf("initialize() did not finish: %w", context.Cause(ctx))
	case err == nil && ok && f.kind == kindFatal:
		err = errors.New(string(f.payload))
	case err == nil && ok:
		err = fmt.Errorf("protocol error: frame %q before the ready frame", f.kind)
	default:
		err = nil // a pipe closed: the interpreter failed before or during initialize()
	}
	p.reap()
	p.retire()
	if err == nil {
		err = fmt.Errorf("the process ended (%s) before initialize() finished; its last stderr lines:%s", p.status(), p.tail.String())
	}
	return nil, in.errorf("%w", err)
}

// shutdown runs finalize() within FinalizeTimeout, then makes sure the process is gone.
func (in *Instance) shutdown(p *proc) error {
	ctx, cancel := context.WithTimeout(context.Background(), in.spec.opts.FinalizeTimeout)
	defer cancel()
	err := p.send(ctx, kindFinalize, nil)
	for err == nil { // results of abandoned calls may come before the done frame
		f, ok, aerr := p.await(ctx)
		if aerr != nil {
			err = aerr
		}
		if !ok && aerr == nil && p.protocolErr() != nil { // frames closed: readErr is set
			err = fmt.Errorf("protocol error: %w", p.protocolErr()) // they ended on garbage
		}
		if !ok || f.kind == kindDone {
			break
		}
	}
	if err == nil {
		select {
		case <-p.exited:
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	p.reap()
	p.retire()
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		in.log.Warn("python finalize() did not finish; the process was killed", "timeout", in.spec.opts.FinalizeTimeout, "err", err)
		return in.errorf("finalize() did not finish within %s; the process was killed", in.spec.opts.FinalizeTimeout)
	default: // the process was gone or broke the protocol: say so rather than blame a timeout
		in.log.Warn("python finalize() failed", "pid", p.pid, "status", p.status(), "err", err)
		return in.errorf("finalize() failed (process %d, %s): %w", p.pid, p.status(), err)
	}
}

// Close runs finalize(), waits for the process to exit (killing it after
// FinalizeTimeout) and removes the runner's temporary folder.
func (in *Instance) Close() error {
	in.closeOnce.Do(func() {
		in.mu.Lock()
		in.closed = true
		close(in.changed)
		in.changed = make(chan struct{})
		in.mu.Unlock()
		close(in.quit)
		<-in.done
		if err := os.RemoveAll(in.spec.dir); err != nil {
			in.closeErr = errors.Join(in.closeErr, err)
		}
	})
	return in.closeErr
}

// pid is the live process's id, 0 while there is none (tests kill it).
func (in *Instance) pid() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.cur == nil {
		return 0
	}
	return in.cur.pid
}

func (in *Instance) errorf(format string, args ...any) error {
	return fmt.Errorf("python model '%s' (instance %s): %w", in.spec.model, in.spec.instance, fmt.Errorf(format, args...))
}

// Ready reports whether the instance can take requests: it cannot once closed, nor
// while its process is down, from the moment it exits until a new one has run
// initialize() (a *RestartingError says why and whether a start is under way).
func (in *Instance) Ready() error {
	in.mu.Lock()
	defer in.mu.Unlock()
	switch {
	case in.closed:
		return in.errorf("%w", ErrClosed)
	case in.cur != nil && in.cur.hasExited(): // the supervisor has yet to publish why
		return in.restarting(in.cur, nil)
	case in.cur != nil:
		return nil
	case in.down != nil:
		return in.down
	}
	return in.restarting(nil, nil) // not reached: down is set whenever cur is nil before Close
}
