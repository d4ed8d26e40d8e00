package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ferryml/ferry/internal/tensor"
)

// lateAfter is how far behind its scheduled time an open-loop request may be sent
// before it counts as late: beyond it the generator, not the server, shaped the load.
// Go's timers wake up to about 1 ms late on Linux (the runtime waits in epoll with
// millisecond timeouts), so a tighter bound would count the clock, not the machine.
const lateAfter = 2 * time.Millisecond

// statsTimeout bounds one statistics request, so a server that stopped answering them
// costs a level its average batch size, not the run.
const statsTimeout = 5 * time.Second

// Options configure a run against a server.
type Options struct {
	Protocol string // names the protocol in the report
	Batch    int    // items per request (the batch dimension); 1 for a model that does not batch
	// Concurrency lists the closed-loop levels: each keeps that many requests in flight.
	Concurrency []int
	// RequestRate > 0 runs one open-loop level instead: Poisson arrivals at this many
	// requests per second, whatever the server's pace.
	RequestRate float64
	// MaxInFlight caps open-loop requests in flight; an arrival beyond it is dropped and
	// counted.
	MaxInFlight int
	Duration    time.Duration // measurement window per level
	Warmup      time.Duration // load before each window that is not measured
	Shapes      map[string]tensor.Shape
	Data        Data
	Seed        uint64 // seeds the Poisson schedule
	// ServerCPU, when set, reads the CPU time the server process has used so far
	// (process_cpu_seconds_total from its /metrics), for CPU per request.
	ServerCPU func(ctx context.Context) (time.Duration, error)
	// Sequences shape the requests to a stateful model; ignored for other models.
	Sequences Sequences
	// Progress, when set, receives each level as soon as it is measured.
	Progress func(Level)
}

func (o Options) validate() error {
	var errs []error
	if o.Duration <= 0 {
		errs = append(errs, fmt.Errorf("duration %v: must be > 0", o.Duration))
	}
	if o.Warmup < 0 {
		errs = append(errs, fmt.Errorf("warmup %v: must be >= 0", o.Warmup))
	}
	if o.RequestRate < 0 {
		errs = append(errs, fmt.Errorf("request rate %v: must be > 0", o.RequestRate))
	}
	if o.RequestRate > 0 && o.MaxInFlight < 1 {
		errs = append(errs, fmt.Errorf("max in-flight %d: must be at least 1", o.MaxInFlight))
	}
	if o.RequestRate == 0 && len(o.Concurrency) == 0 {
		errs = append(errs, errors.New("no concurrency level and no request rate"))
	}
	for _, c := range o.Concurrency {
		if c < 1 {
			errs = append(errs, fmt.Errorf("concurrency %d: must be at least 1", c))
		}
	}
	if err := o.Sequences.validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Run benchmarks the client's model: it reads the model's metadata, builds the
// requests, checks that one succeeds, then measures each level in turn.
func Run(ctx context.Context, c Client, o Options) (*Report, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	m, err := c.Model(ctx)
	if err != nil {
		return nil, err
	}
	samples, err := Samples(m, o.Batch, o.Shapes, o.Data)
	if err != nil {
		return nil, err
	}
	send, err := c.Prepare(m, samples)
	if err != nil {
		return nil, err
	}
	// One request first: a wrong input or a missing model is one clear error, not a
	// table of failures.
	seqs := newSequencer(m, o.Sequences)
	if err := send(ctx, 0, seqs.single()); err != nil {
		return nil, fmt.Errorf("first request to model %s: %w", m.ref(), err)
	}
	rep := &Report{Model: m.Name, Version: m.Version, Protocol: o.Protocol, Duration: o.Duration.Seconds(),
		Inputs: inputReports(samples[0])}
	if seqs != nil {
		rep.SequenceLength = seqs.length
	}
	var levels []func() (Level, error)
	if o.RequestRate > 0 {
		rep.Mode = ModeRequestRate
		levels = append(levels, func() (Level, error) { return openLoop(ctx, c, send, seqs, o) })
	} else {
		rep.Mode = ModeConcurrency
		for _, n := range o.Concurrency {
			levels = append(levels, func() (Level, error) { return closedLoop(ctx, c, send, seqs, n, o) })
		}
	}
	for _, level := range levels {
		l, err := level()
		if err != nil {
			return nil, err
		}
		if o.Progress != nil {
			o.Progress(l)
		}
		rep.Levels = append(rep.Levels, l)
	}
	return rep, nil
}

func inputReports(ts []*tensor.Tensor) []InputReport {
	out := make([]InputReport, len(ts))
	for i, t := range ts {
		out[i] = InputReport{Name: t.Name, DataType: t.DType.String(), Shape: t.Shape.Clone()}
	}
	return out
}

// tally collects one goroutine's results inside the window.
type tally struct {
	lat      []time.Duration
	errors   int
	firstErr error
}

func (t *tally) add(d time.Duration, err error) {
	if err == nil {
		t.lat = append(t.lat, d)
		return
	}
	t.errors++
	if t.firstErr == nil {
		t.firstErr = err
	}
}

func (t *tally) merge(o tally) {
	t.lat = append(t.lat, o.lat...)
	t.errors += o.errors
	if t.firstErr == nil {
		t.firstErr = o.firstErr
	}
}

// window is one level's timeline: load starts at begin, measurement runs from start
// to end. A request belongs to the level when it completes inside [start, end].
type window struct{ begin, start, end time.Time }

func newWindow(o Options) window {
	begin := time.Now()
	return window{begin: begin, start: begin.Add(o.Warmup), end: begin.Add(o.Warmup + o.Duration)}
}

func (w window) contains(t time.Time) bool { return !t.Before(w.start) && !t.After(w.end) }

// closedLoop keeps n requests in flight: each worker sends its next request as soon as
// the previous one is answered. For a stateful model each worker runs one sequence
// after another.
func closedLoop(ctx context.Context, c Client, send Sender, seqs *sequencer, n int, o Options) (Level, error) {
	reqCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := newWindow(o)
	var next atomic.Int64 // request numbers, so that file samples take turns
	tallies := make([]tally, n)
	var wg sync.WaitGroup
	for k := range tallies {
		wg.Go(func() {
			t := &tallies[k]
			seq := seqs.walker()
			defer func() { seq.finish(ctx, send, k) }()
			for reqCtx.Err() == nil {
				i := int(next.Add(1) - 1)
				t0 := time.Now()
				err := send(reqCtx, i, seq.next())
				t1 := time.Now()
				if t1.After(w.end) || reqCtx.Err() != nil {
					return // cut off by the window's end, not failed
				}
				if w.contains(t1) {
					t.add(t1.Sub(t0), err)
				}
			}
		})
	}
	e := observe(ctx, c, o, w)
	cancel() // the window is over: requests still in flight are not counted
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return Level{}, err
	}
	var all tally
	for _, t := range tallies {
		all.merge(t)
	}
	return e.apply(level(Level{Concurrency: n, BatchSize: o.Batch}, all, o.Duration)), nil
}

// openLoop sends requests at Poisson arrival times, each on its own goroutine, whether
// or not earlier ones were answered. For a stateful model requests take turns on a few
// sequences, each of which sends one request at a time.
func openLoop(ctx context.Context, c Client, send Sender, seqs *sequencer, o Options) (Level, error) {
	rng := rand.New(rand.NewPCG(o.Seed, o.Seed+1))
	sched, err := PoissonSchedule(o.RequestRate, o.Warmup+o.Duration, rng)
	if err != nil {
		return Level{}, err
	}
	reqCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := newWindow(o)
	l := Level{RequestRate: o.RequestRate, BatchSize: o.Batch}
	var e edges
	var sg sync.WaitGroup
	sg.Go(func() { e = observe(ctx, c, o, w) }) // apart, so the dispatcher keeps time

	var mu sync.Mutex
	var all tally // guarded by mu
	lanes := seqs.lanes()
	sem := make(chan struct{}, o.MaxInFlight)
	var wg sync.WaitGroup
	for i, off := range sched {
		at := w.begin.Add(off)
		if !sleepUntil(ctx, at) {
			break
		}
		measured := !at.Before(w.start)
		select {
		case sem <- struct{}{}:
		default:
			if measured {
				l.Dropped++
			}
			continue
		}
		if measured && time.Since(at) > lateAfter {
			l.Late++
		}
		wg.Go(func() {
			defer func() { <-sem }()
			t0 := time.Now()
			err := lanes.send(reqCtx, send, i)
			t1 := time.Now()
			if w.contains(t1) && reqCtx.Err() == nil {
				mu.Lock()
				all.add(t1.Sub(t0), err)
				mu.Unlock()
			}
		})
	}
	sg.Wait() // returns at the window's end, after the second statistics snapshot
	cancel()
	wg.Wait()
	lanes.finish(ctx, send)
	if err := ctx.Err(); err != nil {
		return Level{}, err
	}
	return e.apply(level(l, all, o.Duration)), nil
}

func level(l Level, t tally, d time.Duration) Level {
	l.Errors = t.errors
	if t.firstErr != nil {
		l.FirstError = t.firstErr.Error()
	}
	l.measure(t.lat, d)
	return l
}

// edges is what a level reads at its window's start and end, beyond the latencies.
type edges struct {
	before, after      Stats
	statsOK            bool
	serverCPU, ownCPU  time.Duration
	serverOK, ownCPUOK bool
}

// observe reads, at the window's start and at its end, the server's statistics, the
// server's CPU time (when Options.ServerCPU is set) and this process's CPU time.
func observe(ctx context.Context, c Client, o Options, w window) edges {
	var e edges
	if !sleepUntil(ctx, w.start) {
		return e
	}
	before, errBefore := stats(ctx, c)
	srvBefore, errSrvBefore := serverCPU(ctx, o)
	ownBefore, errOwnBefore := processCPU()
	if !sleepUntil(ctx, w.end) {
		return e
	}
	after, errAfter := stats(ctx, c)
	srvAfter, errSrvAfter := serverCPU(ctx, o)
	ownAfter, errOwnAfter := processCPU()
	e.before, e.after = before, after
	e.statsOK = errBefore == nil && errAfter == nil && after.ExecutionCount > before.ExecutionCount
	e.serverCPU, e.serverOK = srvAfter-srvBefore, errSrvBefore == nil && errSrvAfter == nil
	e.ownCPU, e.ownCPUOK = ownAfter-ownBefore, errOwnBefore == nil && errOwnAfter == nil
	return e
}

// apply adds the server's average batch size (Δinference_count / Δexecution_count) and
// the CPU per request, server's and this process's, to a measured level.
func (e edges) apply(l Level) Level {
	if e.statsOK {
		l.ServerAvgBatch = float64(e.after.InferenceCount-e.before.InferenceCount) / float64(e.after.ExecutionCount-e.before.ExecutionCount)
	}
	if l.Requests > 0 {
		if e.serverOK {
			l.ServerCPUPerRequest = us(e.serverCPU / time.Duration(l.Requests))
		}
		if e.ownCPUOK {
			l.ClientCPUPerRequest = us(e.ownCPU / time.Duration(l.Requests))
		}
	}
	return l
}

func serverCPU(ctx context.Context, o Options) (time.Duration, error) {
	if o.ServerCPU == nil {
		return 0, errors.New("no server CPU reader")
	}
	ctx, cancel := context.WithTimeout(ctx, statsTimeout)
	defer cancel()
	return o.ServerCPU(ctx)
}

// processCPU is the CPU time (user and system) this process has used so far.
func processCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, err
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

func stats(ctx context.Context, c Client) (Stats, error) {
	ctx, cancel := context.WithTimeout(ctx, statsTimeout)
	defer cancel()
	return c.Stats(ctx)
}

// sleepUntil waits for t; false means ctx ended first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}
