package drift

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/platform/background"
	"github.com/ferryml/ferry/internal/tensor"
)

// ErrUnknownModel is returned for a model the configuration does not watch.
var ErrUnknownModel = errors.New("model is not watched for drift")

// Monitor watches the configured models' traffic for drift. Finished is safe to call
// from any goroutine; Run bins the queued records and must run for anything to be
// counted (without it every record is dropped and counted). Reports, Value and the
// collector read from any goroutine.
type Monitor struct {
	cfg Config
	log *slog.Logger
	// watched is the set of models, replaced whole when an upload adds one (Watch), so
	// Finished reads it without a lock; addMu serializes the additions.
	watched atomic.Pointer[watched]
	addMu   sync.Mutex
	free    freeList    // empty batches for Finished
	work    chan *batch // filled batches for Run; holds every batch, so a send never blocks
	now     func() time.Time
	epoch   time.Time // the rows-per-second bound's zero (model.due)
	closed  atomic.Bool
	done    chan struct{} // closed by Close
}

var _ core.Tap = (*Monitor)(nil)

// watched is a snapshot of the watched models.
type watched struct {
	byName map[string]*model
	names  []string // sorted
}

func (m *Monitor) model(name string) *model { return m.watched.Load().byName[name] }
func (m *Monitor) names() []string          { return m.watched.Load().names }

// model is one watched model. plan is read lock-free by Finished; mu guards the rest.
type model struct {
	name    string
	cfg     ModelConfig
	plan    atomic.Pointer[plan]
	dropped atomic.Uint64 // rows dropped because the queue was full
	shadow  atomic.Uint64 // shadow-copy records skipped
	failed  atomic.Uint64 // failed records skipped
	// due is the rows-per-second bound's clock (the generic cell rate algorithm): the
	// monotonic time, in ns since the Monitor's epoch, at which the rows kept so far
	// are paid for. A row is kept when that is at most a second ahead; sampledOut
	// counts the others.
	due        atomic.Int64
	sampledOut atomic.Uint64

	mu        sync.Mutex
	cur, last *window
	closedN   uint64   // windows closed so far
	cache     *Report  // report of last, computed on demand
	cacheN    uint64   // closedN the cache belongs to
	ref       *builder // filling reference window
	refStart  time.Time
	windowFor *plan // the plan cur and last were made for
}

// New validates cfg and reads the configured baselines; it starts nothing (Run does).
func New(cfg Config, log *slog.Logger) (*Monitor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("drift: %w", err)
	}
	cfg = cfg.withDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Monitor{cfg: cfg, log: log, now: time.Now, epoch: time.Now(),
		work: make(chan *batch, cfg.Queue), done: make(chan struct{})}
	for range cfg.Queue {
		m.free.put(new(batch))
	}
	var errs []error
	w := &watched{byName: map[string]*model{}}
	for name, mc := range cfg.Models {
		md := &model{name: name, cfg: mc}
		w.byName[name] = md
		w.names = append(w.names, name)
		switch {
		case mc.Baseline != nil:
			p, err := LoadBaseline(*mc.Baseline, mc.options())
			if err == nil {
				err = checkFeatures(p, mc)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("drift: models.%s.baseline: %w", name, err))
				continue
			}
			md.setPlan(newPlan(p, mc.Baseline.Path, mc), m.now())
		case mc.ReferenceWindow != nil:
			md.plan.Store(&plan{collect: true})
		}
	}
	sort.Strings(w.names)
	m.watched.Store(w)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return m, nil
}

// SetBaseline makes p the model's baseline (an upload, or a profile computed
// elsewhere); the windows restart empty. A model the configuration does not name starts
// being watched, with every feature on its defaults.
func (m *Monitor) SetBaseline(name string, p *Profile) error {
	if p == nil {
		return errors.New("drift: nil profile")
	}
	md := m.watch(name)
	if err := errors.Join(p.Validate(), checkFeatures(p, md.cfg)); err != nil {
		return fmt.Errorf("drift: %q: %w", name, err)
	}
	md.setPlan(newPlan(p, "upload", md.cfg), m.now())
	return nil
}

// watch returns the named model, adding it with the default configuration when it is
// not watched yet.
func (m *Monitor) watch(name string) *model {
	m.addMu.Lock()
	defer m.addMu.Unlock()
	old := m.watched.Load()
	if md := old.byName[name]; md != nil {
		return md
	}
	md := &model{name: name}
	w := &watched{byName: make(map[string]*model, len(old.byName)+1), names: append(slices.Clone(old.names), name)}
	maps.Copy(w.byName, old.byName)
	w.byName[name] = md
	sort.Strings(w.names)
	m.watched.Store(w)
	return md
}

func (md *model) setPlan(p *plan, now time.Time) {
	md.mu.Lock()
	defer md.mu.Unlock()
	md.windowFor = p
	md.cur, md.last, md.cache, md.ref = newWindow(p.features, now), nil, nil, nil
	md.plan.Store(p)
}

// Finished queues the watched tensors of a successful, non-shadow request; it never
// blocks and does not allocate once the queue's batches have grown to fit.
func (m *Monitor) Finished(r *core.Record) {
	md := m.model(r.Model)
	if md == nil || m.closed.Load() {
		return
	}
	switch {
	case r.Err != nil:
		md.failed.Add(1)
		return
	case r.Route == core.RouteShadow: // same inputs as the primary: counting them twice would skew the window
		md.shadow.Add(1)
		return
	}
	p := md.plan.Load()
	if p == nil {
		return
	}
	rows := uint64(max(r.Items, 1))
	if limit := m.cfg.MaxRowsPerSecond; limit >= 0 && !md.admit(limit, int64(m.now().Sub(m.epoch)), rows) {
		md.sampledOut.Add(rows)
		return
	}
	b := m.free.get()
	if b == nil {
		md.dropped.Add(uint64(max(r.Items, 1)))
		return
	}
	b.fill(md, p, r)
	if len(b.parts) == 0 {
		m.free.put(b)
		return
	}
	m.work <- b
}

// freeList is a stack of empty batches: the most recently used come back first, so
// only as many batches grow buffers as the queue actually gets deep.
type freeList struct {
	mu sync.Mutex
	s  []*batch
}

func (f *freeList) get() *batch {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.s) == 0 {
		return nil
	}
	b := f.s[len(f.s)-1]
	f.s = f.s[:len(f.s)-1]
	return b
}

func (f *freeList) put(b *batch) {
	f.mu.Lock()
	f.s = append(f.s, b)
	f.mu.Unlock()
}

// batch is one record's watched tensors, copied.
type batch struct {
	md    *model
	plan  *plan
	items int
	parts []part
	data  []byte // tensor names and bytes
}

type part struct {
	tp             *tensorPlan // nil while collecting a reference window
	name, off, end int         // data[name:off] is the tensor name, data[off:end] its bytes
	dtype          tensor.DType
}

func (b *batch) fill(md *model, p *plan, r *core.Record) {
	b.md, b.plan, b.items, b.parts, b.data = md, p, r.Items, b.parts[:0], b.data[:0]
	for _, ts := range [2][]*tensor.Tensor{r.Inputs, r.Outputs} {
		for _, t := range ts {
			tp := p.tensors[t.Name]
			if tp == nil && (!p.collect || len(t.Data) > maxCollectBytes) {
				continue
			}
			start := len(b.data)
			b.data = append(b.data, t.Name...)
			off := len(b.data)
			b.data = append(b.data, t.Data...)
			b.parts = append(b.parts, part{tp: tp, name: start, off: off, end: len(b.data), dtype: t.DType})
		}
	}
}

// pollEvery is how often a busy Run drains the queue. It polls rather than waiting on
// the channel so that Finished's send never has to wake a parked goroutine (a futex
// wake-up per request costs more than the copy it queues); after idlePolls empty polls
// (100 ms) it sleeps on the queue, and the first record after a lull wakes it. Every
// 10 ms, a drain bins tens of records while the window's state is in cache: polled
// every 1 ms under load, it found that state evicted by the serving in between and
// binned a 32-feature record in ~20 µs instead of ~1 (a CPU profile of the
// monitoring benchmark: 1.0 s against none measurable). The queue (1024 by default)
// holds 10 ms of 100,000 records a second.
const (
	pollEvery = 10 * time.Millisecond
	idlePolls = 10
)

// Run bins queued records and closes time windows until ctx ends or Close is called.
func (m *Monitor) Run(ctx context.Context) error {
	tick := time.Second
	if d := time.Duration(m.cfg.Window.Duration); d > 0 && d/10 < tick {
		tick = max(d/10, time.Millisecond)
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	poll := time.NewTicker(pollEvery)
	defer poll.Stop()
	for idle := 0; ; {
		if idle = idle + 1; m.drain() > 0 {
			idle = 0
		}
		work, polled := (<-chan *batch)(nil), poll.C
		if idle >= idlePolls {
			work, polled = m.work, nil // asleep until a record comes
		}
		select {
		case <-ctx.Done():
			return nil
		case <-m.done:
			return nil
		case b := <-work:
			m.ingest(b)
			idle = 0
		case <-polled:
			background.Yield()
		case <-t.C:
			for _, md := range m.watched.Load().byName {
				md.tick(m)
			}
		}
	}
}

// admit keeps rows (a record's) within limit rows a second, as a bucket of one
// second's rows refilled at limit a second: a burst under a second's budget is kept
// whole, a sustained rate past it keeps limit rows a second, spread evenly in time. A
// record of more rows than a second holds is kept when the bucket is full. now is
// monotonic ns.
func (md *model) admit(limit, now int64, rows uint64) bool {
	cost := int64(rows) * int64(time.Second) / max(limit, 1)
	for {
		due := md.due.Load()
		from := max(due, now)
		if from > now && from+cost-now > int64(time.Second) {
			return false
		}
		if md.due.CompareAndSwap(due, from+cost) {
			return true
		}
	}
}

// drain bins every queued record and says how many there were.
func (m *Monitor) drain() int {
	for n := 0; ; n++ {
		select {
		case b := <-m.work:
			m.ingest(b)
		default:
			return n
		}
	}
}

func (m *Monitor) ingest(b *batch) {
	b.md.ingest(m, b)
	b.md, b.plan = nil, nil
	m.free.put(b)
}

// Close stops Run; records finished afterwards are dropped.
func (m *Monitor) Close() {
	if m.closed.CompareAndSwap(false, true) {
		close(m.done)
	}
}
