package python

import (
	"context"
	"fmt"
	"time"
)

// Restart back-off: the first restart after a crash is immediate; each further crash of
// a process that served for less than stableAfter (counted from the end of its
// initialize()) doubles the wait, from minBackoff up to maxBackoff. A process that
// served for stableAfter was not in a crash loop, so its crash restarts at once again.
//
// Kubernetes forgets a container's crashes only after 10 minutes of running (twice its
// 5-minute cap). That suits a cluster, where a restart means scheduling and pulling an
// image; here a restart is one interpreter start, and every second of back-off is a
// second the model does not serve. With a long window a model that crashes on some
// inputs now and then ends up waiting the full cap after each crash (what
// kubernetes/kubernetes#57291 reports for pods). A 5 s window still holds a loop that
// is not backed off to 12 starts a minute, under systemd's default limit for a service
// restarted too often (5 starts in 10 s), and at half the cap the back-off it forgoes
// would at most have halved that rate.
const (
	minBackoff  = 100 * time.Millisecond
	maxBackoff  = 10 * time.Second
	stableAfter = 5 * time.Second
)

// RestartingError says why an instance has no process to run requests on: the last one
// exited, or a restart failed, and the supervisor is starting another. Ready returns it
// for as long as the instance is down. Execute waits while a start is under way
// (Starting) and fails with it at once while the supervisor waits out a back-off.
type RestartingError struct {
	Model, Instance string
	PID             int       // the process that exited
	Status          string    // how it ended: "exit status 1", "signal: killed"
	Cause           error     // why the last restart failed; nil when none has
	Next            time.Time // when the next start begins; zero while one is under way
}

func (e *RestartingError) Error() string {
	next := "a new process is starting"
	if !e.Starting() {
		next = fmt.Sprintf("the next start is in %s", max(time.Until(e.Next), 0).Round(time.Millisecond))
	}
	if e.Cause != nil {
		return e.Cause.Error() + "; " + next
	}
	return fmt.Sprintf("python model '%s' (instance %s): the process (pid %d) exited (%s); %s",
		e.Model, e.Instance, e.PID, e.Status, next)
}

func (e *RestartingError) Unwrap() error { return e.Cause }

// Starting reports whether a new process is being started now, which requests wait for.
func (e *RestartingError) Starting() bool { return e.Next.IsZero() }

// Unavailable marks the error as temporary: the server answers it with 503, not 500.
func (e *RestartingError) Unavailable() bool { return true }

// Local reports that the cause lies in this server (its child process), not in
// something every replica shares: with strict readiness the server then reports not
// ready while every instance of the model is down, so a load balancer can send the
// requests to another replica.
func (e *RestartingError) Local() bool { return true }

// restarting describes the exit of p, whose restart failed with cause (nil: none has).
func (in *Instance) restarting(p *proc, cause error) *RestartingError {
	e := &RestartingError{Model: in.spec.model, Instance: in.spec.instance, Status: "not running", Cause: cause}
	if p != nil {
		e.PID, e.Status = p.pid, p.status()
	}
	return e
}

// supervise owns the process from the first successful start until Close: it restarts
// the process whenever it exits, and runs finalize() on Close.
func (in *Instance) supervise(p *proc) {
	defer close(in.done)
	var backoff time.Duration
	for {
		in.publish(p, nil)
		select {
		case <-p.exited:
		case <-in.quit:
			in.publish(nil, nil)
			in.closeErr = in.shutdown(p)
			return
		}
		served := time.Since(p.readyAt)
		if served >= in.spec.opts.stableAfter {
			backoff = 0
		}
		down := in.restarting(p, nil)
		down.Next = nextStart(backoff)
		in.publish(nil, down)
		in.log.Error("python process exited; restarting it", "pid", p.pid, "status", p.status(),
			"served", served.Round(time.Millisecond), "backoff", backoff)
		p.retire()
		if p = in.restart(*down, &backoff); p == nil {
			return
		}
	}
}

// nextStart is when a start that waits backoff begins: zero (now) when it does not wait.
func nextStart(backoff time.Duration) time.Time {
	if backoff == 0 {
		return time.Time{}
	}
	return time.Now().Add(backoff)
}

// restart starts a new process, retrying with backoff until it succeeds or Close is
// called (then it returns nil). down is what Ready and Execute report meanwhile.
func (in *Instance) restart(down RestartingError, backoff *time.Duration) *proc {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { // ends with restart
		select {
		case <-in.quit:
			cancel()
		case <-ctx.Done():
		}
	}()
	for {
		if *backoff > 0 {
			t := time.NewTimer(*backoff)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return nil
			}
			down.Next = time.Time{}
			in.publish(nil, ptr(down))
		}
		*backoff = min(max(2*(*backoff), minBackoff), maxBackoff)
		p, err := in.start(ctx)
		if err == nil {
			return p
		}
		if ctx.Err() != nil {
			return nil
		}
		in.log.Error("python process failed to restart", "err", err, "retry_in", *backoff)
		down.Cause, down.Next = err, nextStart(*backoff)
		in.publish(nil, ptr(down))
	}
}

// ptr returns a pointer to a copy of e: a published error is never changed afterwards.
func ptr(e RestartingError) *RestartingError { return &e }
