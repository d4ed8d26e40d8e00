package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
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
	// SharedMemory names, in the report, the shared memory the client's tensors travel
	// in: "" or ShmSystem.
	SharedMemory string
	Batch        int // items per request (the batch dimension); 1 for a model that does not batch
	// Concurrency lists the closed-loop levels: each keeps that many requests in flight.
	Concurrency []int
	// RequestRates, when set, are open-loop levels instead: arrivals at that many
	// requests per second, whatever the server's pace, spaced as Distribution says
	// (Poisson or Constant; "" is Poisson).
	RequestRates []float64
	Distribution string
	// Intervals, when set, is one open-loop level instead whose arrivals are spaced by
	// these gaps in turn, repeated (perf_analyzer's --request-intervals).
	Intervals []time.Duration
	// MaxInFlight caps open-loop requests in flight; an arrival beyond it is dropped and
	// counted.
	MaxInFlight int
	Duration    time.Duration // measurement window per level
	Warmup      time.Duration // load before each window that is not measured
	Shapes      map[string]tensor.Shape
	Data        Data
	Seed        uint64 // seeds a Poisson schedule
	// ServerCPU, when set, reads the CPU time the server process has used so far
	// (process_cpu_seconds_total from its /metrics), for CPU per request.
	ServerCPU func(ctx context.Context) (time.Duration, error)
	// Stability > 0 measures each level in back-to-back windows of Duration until the
	// last three agree within this percentage (throughput and latency, see Percentile), at most
	// MaxWindows of them (0: DefaultMaxWindows), and reports those three, as
	// perf_analyzer's --stability-percentage and --max-trials do. 0 measures one window.
	Stability  float64
	MaxWindows int
	// Percentile is the latency that stability and LatencyLimit judge: 50, 90, 95 or 99;
	// 0 is the mean (perf_analyzer's --percentile).
	Percentile float64
	// LatencyLimit > 0 ends a sweep, of concurrency or of request rates, after the first
	// level whose latency (see Percentile) is above it (perf_analyzer's
	// --latency-threshold).
	LatencyLimit time.Duration
	// BinarySearch measures only the levels a binary search for the last one within
	// LatencyLimit needs, assuming latency grows with the level (perf_analyzer's
	// --binary-search), instead of every level up to the first one over it.
	BinarySearch bool
	// Sequences shape the requests to a stateful model; ignored for other models.
	Sequences Sequences
	// WindowRequests > 0 ends each measurement window once that many requests have
	// completed instead of after Duration (perf_analyzer's --measurement-mode
	// count_windows with --measurement-request-count); Duration then only paces an
	// open loop's planning.
	WindowRequests int
	// Progress, when set, receives each level as soon as it is measured.
	Progress func(Level)
	// Live, when set, is told how the window being measured goes: when it ends, and
	// every LiveEvery during it when LiveEvery > 0.
	Live      func(Live)
	LiveEvery time.Duration
}

func (o Options) validate() error {
	var errs []error
	if o.Duration <= 0 {
		errs = append(errs, fmt.Errorf("duration %v: must be > 0", o.Duration))
	}
	if o.Warmup < 0 {
		errs = append(errs, fmt.Errorf("warmup %v: must be >= 0", o.Warmup))
	}
	for _, r := range o.RequestRates {
		if !(r > 0) {
			errs = append(errs, fmt.Errorf("request rate %v: must be > 0", r))
		}
	}
	if d := o.Distribution; d != "" && d != Poisson && d != Constant {
		errs = append(errs, fmt.Errorf("request distribution %q: want %s or %s", d, Poisson, Constant))
	}
	if len(o.Intervals) > 0 && (len(o.RequestRates) > 0 || o.Distribution != "") {
		errs = append(errs, errors.New("request intervals replace request rates and their distribution"))
	}
	if (len(o.RequestRates) > 0 || len(o.Intervals) > 0) && o.MaxInFlight < 1 {
		errs = append(errs, fmt.Errorf("max in-flight %d: must be at least 1", o.MaxInFlight))
	}
	if o.BinarySearch && o.LatencyLimit <= 0 {
		errs = append(errs, errors.New("a binary search needs a latency limit to search for"))
	}
	if len(o.RequestRates) == 0 && len(o.Intervals) == 0 && len(o.Concurrency) == 0 {
		errs = append(errs, errors.New("no concurrency level and no request rate"))
	}
	for _, c := range o.Concurrency {
		if c < 1 {
			errs = append(errs, fmt.Errorf("concurrency %d: must be at least 1", c))
		}
	}
	if !slices.Contains([]float64{0, 50, 90, 95, 99}, o.Percentile) {
		errs = append(errs, fmt.Errorf("percentile %v: want 50, 90, 95 or 99 (or 0, the mean)", o.Percentile))
	}
	if o.LatencyLimit < 0 {
		errs = append(errs, fmt.Errorf("latency limit %v: must be >= 0", o.LatencyLimit))
	}
	if o.WindowRequests < 0 {
		errs = append(errs, fmt.Errorf("requests per window %d: must be >= 0", o.WindowRequests))
	}
	if o.Stability < 0 || o.MaxWindows < 0 {
		errs = append(errs, fmt.Errorf("stability %v%%, max windows %d: must be >= 0", o.Stability, o.MaxWindows))
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
	rep := &Report{Model: m.Name, Version: m.Version, Protocol: o.Protocol, SharedMemory: o.SharedMemory, Duration: o.Duration.Seconds(),
		Inputs: inputReports(samples[0])}
	if seqs != nil {
		rep.SequenceLength = seqs.length
	}
	rep.Stability, rep.Percentile, rep.WindowRequests = o.Stability, o.Percentile, o.WindowRequests
	var levels []func() (Level, error)
	if open := openLevels(o); len(open) > 0 {
		rep.Mode, rep.Distribution = ModeRequestRate, cmp.Or(o.Distribution, Poisson)
		if len(o.Intervals) > 0 {
			rep.Distribution = Intervals
		}
		for _, l := range open {
			levels = append(levels, func() (Level, error) { return openLoop(ctx, c, send, seqs, l.rate, l.plan, o) })
		}
	} else {
		rep.Mode = ModeConcurrency
		for _, n := range o.Concurrency {
			levels = append(levels, func() (Level, error) { return closedLoop(ctx, c, send, seqs, n, o) })
		}
	}
	measure := func(i int) (over bool, err error) {
		l, err := levels[i]()
		if err != nil {
			return false, err
		}
		if o.Progress != nil {
			o.Progress(l)
		}
		rep.Levels = append(rep.Levels, l)
		if o.LatencyLimit > 0 && l.latency(o.Percentile) > us(o.LatencyLimit) {
			rep.LatencyLimit = us(o.LatencyLimit)
			return true, nil
		}
		return false, nil
	}
	if o.BinarySearch {
		rep.BinarySearch = true
		return rep, searchLevels(rep, len(levels), measure)
	}
	for i := range levels {
		if over, err := measure(i); err != nil || over {
			return rep, err // beyond a level over the limit, the others would only be slower
		}
	}
	return rep, nil
}

// searchLevels measures levels 0..n-1 by binary search for the last one not over the
// latency limit, then puts the report's levels in sweep order.
func searchLevels(rep *Report, n int, measure func(i int) (over bool, err error)) error {
	var at []int // the sweep index of each measured level
	lo, hi := 0, n-1
	for lo <= hi {
		mid := (lo + hi) / 2
		over, err := measure(mid)
		if err != nil {
			return err
		}
		at = append(at, mid)
		if over {
			hi = mid - 1
		} else {
			lo = mid + 1
		}
	}
	byIndex := make(map[int]Level, len(at))
	for k, i := range at {
		byIndex[i] = rep.Levels[k]
	}
	slices.Sort(at)
	for k, i := range at {
		rep.Levels[k] = byIndex[i]
	}
	return nil
}

func inputReports(ts []*tensor.Tensor) []InputReport {
	out := make([]InputReport, len(ts))
	for i, t := range ts {
		out[i] = InputReport{Name: t.Name, DataType: t.DType.String(), Shape: t.Shape.Clone()}
	}
	return out
}

// tally collects the results of the requests that completed in one window.
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

// closedLoop keeps n requests in flight: each worker sends its next request as soon as
// the previous one is answered. For a stateful model each worker runs one sequence
// after another.
func closedLoop(ctx context.Context, c Client, send Sender, seqs *sequencer, n int, o Options) (Level, error) {
	reqCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	tl := newTimeline(o)
	rec := newRecorder(tl)
	var next atomic.Int64 // request numbers, so that file samples take turns
	var wg sync.WaitGroup
	for k := range n {
		wg.Go(func() {
			seq := seqs.walker()
			defer func() { seq.finish(ctx, send, k) }()
			for reqCtx.Err() == nil {
				i := int(next.Add(1) - 1)
				t0 := time.Now()
				err := send(reqCtx, i, seq.next())
				if reqCtx.Err() != nil {
					return // cut off by the level's end, not failed
				}
				rec.add(t0, time.Now(), err)
			}
		})
	}
	lv := Level{Concurrency: n, BatchSize: o.Batch}
	sp, ok := watch(ctx, c, o, tl, rec, lv)
	cancel() // the level is over: requests still in flight are not counted
	wg.Wait()
	if err := ctx.Err(); err != nil || !ok {
		return Level{}, cmp.Or(err, context.Canceled)
	}
	return sp.level(lv, rec, o), nil
}

// openLevel is one open-loop level: its rate, and the arrival times it plans for a span.
type openLevel struct {
	rate float64
	plan func(span time.Duration) ([]time.Duration, error)
}

// openLevels are the open-loop levels o asks for: one replaying Intervals, or one per
// request rate, their schedules drawn in turn from one seeded source. None for a
// closed loop.
func openLevels(o Options) []openLevel {
	if len(o.Intervals) > 0 {
		var sum time.Duration
		for _, g := range o.Intervals {
			sum += g
		}
		return []openLevel{{rate: float64(len(o.Intervals)) / sum.Seconds(),
			plan: func(span time.Duration) ([]time.Duration, error) { return IntervalSchedule(o.Intervals, span) }}}
	}
	rng := rand.New(rand.NewPCG(o.Seed, o.Seed+1))
	var out []openLevel
	for _, rate := range o.RequestRates {
		out = append(out, openLevel{rate: rate,
			plan: func(span time.Duration) ([]time.Duration, error) { return Schedule(o.Distribution, rate, span, rng) }})
	}
	return out
}

// openLoop sends requests at the arrival times plan gives, each on its own goroutine,
// whether or not earlier ones were answered. For a stateful model requests take turns on a few
// sequences, each of which sends one request at a time. Arrivals are planned for the
// level's nominal span; count windows, whose end is not known, plan span after span
// until they are filled.
func openLoop(ctx context.Context, c Client, send Sender, seqs *sequencer, rate float64,
	plan func(span time.Duration) ([]time.Duration, error), o Options) (Level, error) {
	tl := newTimeline(o)
	chunk := tl.last().Sub(tl.begin)
	sched, err := plan(chunk)
	if err != nil {
		return Level{}, err
	}
	reqCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	rec := newRecorder(tl)
	lv := Level{RequestRate: rate, BatchSize: o.Batch}
	var sp span
	var ok bool
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	dispatch, measured := context.WithCancel(ctx) // ends when the measurement does
	defer measured()
	var sg sync.WaitGroup
	sg.Go(func() { // apart, so the dispatcher keeps time
		defer measured()
		sp, ok = watch(watchCtx, c, o, tl, rec, lv)
	})

	late, dropped := make([]int, tl.n), make([]int, tl.n) // per window
	count := func(counts []int, at time.Time) {
		if k := rec.index(at); k >= 0 {
			counts[k]++
		}
	}
	lanes := seqs.lanes()
	sem := make(chan struct{}, o.MaxInFlight)
	var wg sync.WaitGroup
	i := 0
	for base := tl.begin; ; base = base.Add(chunk) {
		for _, off := range sched {
			at := base.Add(off)
			if !sleepUntil(dispatch, at) {
				break
			}
			n := i
			i++
			select {
			case sem <- struct{}{}:
			default:
				count(dropped, at)
				continue
			}
			if time.Since(at) > lateAfter {
				count(late, at)
			}
			wg.Go(func() {
				defer func() { <-sem }()
				t0 := time.Now()
				err := lanes.send(reqCtx, send, n)
				if reqCtx.Err() == nil {
					rec.add(t0, time.Now(), err)
				}
			})
		}
		if tl.count == 0 || dispatch.Err() != nil {
			break
		}
		if sched, err = plan(chunk); err != nil {
			stopWatch()
			break
		}
	}
	sg.Wait() // returns at the last window's end, after its statistics snapshot
	cancel()
	wg.Wait()
	lanes.finish(ctx, send)
	if err != nil {
		return Level{}, err
	}
	if err := ctx.Err(); err != nil || !ok {
		return Level{}, cmp.Or(err, context.Canceled)
	}
	l := lv
	for k := sp.lo; k < sp.hi; k++ {
		l.Late += late[k]
		l.Dropped += dropped[k]
	}
	return sp.level(l, rec, o), nil
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
