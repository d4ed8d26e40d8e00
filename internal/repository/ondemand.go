package repository

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferryml/ferry/internal/platform/periodic"

	"github.com/ferryml/ferry/internal/core"
)

// In on-demand mode (--model-control-mode on-demand) Start loads nothing and the index
// lists every model folder. The first request for a model that is not loaded starts its
// load and waits for it, as long as its context and the load timeout allow; requests
// that come meanwhile wait for the same load (one flight per model). The load belongs to
// no request: it goes on when the request that started it gives up, so the requests
// behind it are served. Under a memory budget (budget.go) loads run one at a time and
// may unload idle models first; with --model-idle-unload a model unused that long is
// unloaded, and its next request loads it again.

// DefaultLoadTimeout is how long a request waits for its model to load by default.
const DefaultLoadTimeout = 30 * time.Second

// onDemand is the Repository's state for on-demand loading. Guarded by Repository.mu,
// except roomWaiters, sem, stop and running, which synchronise themselves.
type onDemand struct {
	flights map[string]*flight // loads requests wait for, by model
	stopped bool               // Close has begun: no new loads

	// The memory budget (budget.go).
	loads        map[string]*loadAccount // the load in progress (at most one)
	closing      int64                   // measured bytes of retired versions not closed yet
	lastMeasured map[string]int64        // each model's last measurement, kept after it unloads

	// room is closed (and replaced) when a load waiting for room in the budget may find
	// it: a lease ended, a flight finished, memory was freed. roomWaiters counts the
	// loads waiting, so that nothing is signalled when none is.
	room        chan struct{}
	roomWaiters atomic.Int32
	roomFor     map[string]error // the loads waiting for room, and why they do not fit yet

	sem     chan struct{}  // serialises loads under a budget, so a measurement is one load's
	stop    chan struct{}  // closed by Close: loads in progress are cancelled
	running sync.WaitGroup // flights in progress
}

func newOnDemand(opts Options) onDemand {
	return onDemand{
		flights: map[string]*flight{}, loads: map[string]*loadAccount{}, lastMeasured: map[string]int64{},
		roomFor: map[string]error{}, room: make(chan struct{}), sem: make(chan struct{}, 1), stop: make(chan struct{}),
	}
}

// checkOnDemand completes and checks the on-demand options.
func checkOnDemand(opts *Options) error {
	var errs []error
	if opts.LoadTimeout <= 0 {
		opts.LoadTimeout = DefaultLoadTimeout
	}
	if opts.MemoryBudget < 0 {
		errs = append(errs, fmt.Errorf("memory budget: must be >= 0, got %d", opts.MemoryBudget))
	}
	if opts.IdleUnload < 0 {
		errs = append(errs, fmt.Errorf("idle unload: must be >= 0, got %s", opts.IdleUnload))
	}
	if opts.Mode != ModeOnDemand && (opts.MemoryBudget > 0 || opts.IdleUnload > 0) {
		// In the other modes nothing would load an unloaded model again.
		errs = append(errs, fmt.Errorf("a memory budget and idle unloading need model control mode %q, not %q", ModeOnDemand, opts.Mode))
	}
	return errors.Join(errs...)
}

// flight is one on-demand load and the requests waiting for it.
type flight struct {
	done chan struct{} // closed when the load has finished
	// Guarded by Repository.mu.
	finished bool
	err      error
	waiters  int // requests waiting or about to take their lease; they keep the model loaded
}

// acquireOnDemand leases a version, loading the model first when it is not loaded.
func (r *Repository) acquireOnDemand(ctx context.Context, name, version string) (*core.Lease, error) {
	var f *flight
	var timeout <-chan time.Time
	for {
		r.mu.Lock()
		l, err := r.leaseLocked(name, version)
		if f != nil {
			r.leaveLocked(name, f) // after leasing: until then the waiter keeps the model from eviction
		}
		if err == nil || !errors.Is(err, core.ErrUnavailable) || !r.needsLoadLocked(name) {
			r.mu.Unlock()
			return l, err
		}
		if f != nil { // loaded (or failed) and still not leasable
			ferr := f.err
			r.mu.Unlock()
			return nil, loadFailure(name, ferr, err)
		}
		f = r.joinLocked(ctx, name)
		r.mu.Unlock()
		if timeout == nil {
			t := time.NewTimer(r.opts.LoadTimeout)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-f.done:
		case <-ctx.Done():
			r.leave(name, f)
			return nil, fmt.Errorf("model '%s' is loading: %w", name, ctx.Err())
		case <-timeout:
			r.mu.Lock()
			r.leaveLocked(name, f)
			room := r.od.roomFor[name]
			r.mu.Unlock()
			if room != nil { // the clearer reason: the budget, not a slow load
				return nil, fmt.Errorf("no room after %s (the model load timeout): %w", r.opts.LoadTimeout, room)
			}
			return nil, core.Unavailablef("model '%s' is loading and not ready after %s (the model load timeout)", name, r.opts.LoadTimeout)
		}
	}
}

// loadFailure is the error for a request whose model load failed: the load's own error
// when it says more than the lease's.
func loadFailure(name string, loadErr, leaseErr error) error {
	switch {
	case loadErr == nil:
		return leaseErr
	case errors.Is(loadErr, core.ErrUnavailable), errors.Is(loadErr, core.ErrNotFound):
		return loadErr
	}
	return core.Unavailablef("model '%s' failed to load: %v", name, loadErr)
}

// needsLoadLocked reports whether a request should load the model: it exists on disk (the
// lease found its folder) and has no READY version. Caller holds r.mu.
func (r *Repository) needsLoadLocked(name string) bool {
	if r.od.stopped {
		return false
	}
	m := r.models[name]
	if m == nil {
		return true
	}
	for _, v := range m.versions {
		if v.state == core.StateReady {
			return false // the version asked for is not there; loading would not change that
		}
	}
	return true // loading, never loaded, or failed (the load skips a failed model whose files did not change)
}

// joinLocked adds the request to the model's flight, starting one when none is in
// progress. Caller holds r.mu.
func (r *Repository) joinLocked(ctx context.Context, name string) *flight {
	f := r.od.flights[name]
	if f == nil || f.finished {
		f = &flight{done: make(chan struct{})}
		r.od.flights[name] = f
		r.od.running.Add(1)
		go r.fly(context.WithoutCancel(ctx), name, f) // ends when the load does; Close waits for it
	}
	f.waiters++
	return f
}

func (r *Repository) leave(name string, f *flight) {
	r.mu.Lock()
	r.leaveLocked(name, f)
	r.mu.Unlock()
}

func (r *Repository) leaveLocked(name string, f *flight) {
	f.waiters--
	if f.waiters == 0 && f.finished && r.od.flights[name] == f {
		delete(r.od.flights, name)
		r.roomLocked() // the model may be idle now
	}
}

// fly runs one flight's load. ctx carries the values of the request that started it but
// not its cancellation; Close cancels it.
func (r *Repository) fly(ctx context.Context, name string, f *flight) {
	defer r.od.running.Done()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { // ends with the load
		select {
		case <-r.od.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	err := r.loadBudgeted(ctx, name, nil)
	if err != nil {
		r.log.Warn("on-demand model load failed", "model", name, "err", err)
	}
	r.mu.Lock()
	f.finished, f.err = true, err
	close(f.done)
	if f.waiters == 0 && r.od.flights[name] == f {
		delete(r.od.flights, name)
		r.roomLocked()
	}
	r.mu.Unlock()
}

// loadBudgeted loads a model from disk (or from a load request's files) within the
// memory budget: one load at a time, room made before, measured during (budget.go).
func (r *Repository) loadBudgeted(ctx context.Context, name string, opts *core.LoadOptions) error {
	if r.opts.MemoryBudget <= 0 {
		err := r.loadFromDisk(ctx, name, opts)
		r.touch(name) // idle from now, not from the epoch
		return err
	}
	dir := filepath.Join(r.opts.Root, name)
	if opts == nil && r.failedUnchanged(name, dir) {
		return nil // the lease reports the failure; nothing to make room for
	}
	select {
	case r.od.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-r.od.sem }()
	if opts == nil && r.serving(name) {
		return nil // another load (a load request) did it while this one waited
	}
	fileBytes := dirBytes(dir)
	if opts != nil && len(opts.Files) > 0 {
		fileBytes = 0
		for _, b := range opts.Files {
			fileBytes += int64(len(b))
		}
	}
	r.mu.Lock()
	estimate := r.estimateLocked(name, fileBytes)
	r.mu.Unlock()
	if err := r.reserve(name, estimate); err != nil {
		return err
	}
	err := r.loadFromDisk(ctx, name, opts)
	if refused := r.settle(name); refused != nil {
		// Forget the half-loaded model, so its next request tries again rather than
		// finding it failed: the budget is a reason of the moment, not of the model.
		if uerr := r.unloadModel(name, "evicted"); uerr != nil {
			r.log.Warn("model unload failed", "model", name, "err", uerr)
		}
		return refused
	}
	return err
}

// failedUnchanged reports whether the model failed to load and its files have not
// changed since, so loading it again would fail the same way.
func (r *Repository) failedUnchanged(name, dir string) bool {
	r.mu.Lock()
	m := r.models[name]
	failed, fp := m != nil && m.fp != "" && !m.healthyLocked(), ""
	if m != nil {
		fp = m.fp
	}
	r.mu.Unlock()
	return failed && fingerprint(dir) == fp
}

// serving reports whether the model has a READY version.
func (r *Repository) serving(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.models[name] != nil && !r.needsLoadLocked(name)
}

func (r *Repository) touch(name string) {
	r.mu.Lock()
	if m := r.models[name]; m != nil {
		m.lastUsed.Store(time.Now().UnixNano())
	}
	r.mu.Unlock()
}

// lockModel returns the model's entry with its ctl held. An entry an eviction removed
// while this waited for its lock is dropped for a fresh one.
func (r *Repository) lockModel(name string) *model {
	for {
		m := r.model(name)
		m.ctl.Lock()
		r.mu.Lock()
		current := r.models[name] == m
		r.mu.Unlock()
		if current {
			return m
		}
		m.ctl.Unlock()
	}
}

// stopLoads cancels the on-demand loads in progress and waits for them to end.
func (r *Repository) stopLoads() {
	r.mu.Lock()
	already := r.od.stopped
	r.od.stopped = true
	r.mu.Unlock()
	if !already {
		close(r.od.stop)
	}
	r.od.running.Wait()
}

// runIdleUnload unloads models unused for IdleUnload, checking a few times per period,
// until ctx ends.
// refreshOnDemand brings an on-demand repository up to date with its files: it syncs
// the source (an object store), then unloads each loaded model whose files changed or
// went away, so that its next request loads what is there now. New models need nothing:
// their first request finds them.
func (r *Repository) refreshOnDemand(ctx context.Context) {
	if err := r.syncSource(ctx); err != nil {
		r.log.Warn("model store sync failed; the repository keeps its current files", "err", err)
	}
	for _, name := range r.loadedNames() {
		dir := filepath.Join(r.opts.Root, name)
		r.mu.Lock()
		m := r.models[name]
		fp := ""
		if m != nil && !m.fromRequest {
			fp = m.fp
		}
		r.mu.Unlock()
		if fp == "" || fp == fingerprint(dir) {
			continue
		}
		reason := "replaced"
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			reason = "removed"
		}
		if err := r.unloadModel(name, reason); err != nil {
			r.log.Warn("model unload failed", "model", name, "err", err)
		}
	}
}

func (r *Repository) runIdleUnload(ctx context.Context) error {
	if r.opts.IdleUnload <= 0 {
		<-ctx.Done()
		return nil
	}
	periodic.Run(ctx, min(max(r.opts.IdleUnload/4, 10*time.Millisecond), time.Second),
		func(context.Context) { r.unloadIdle(time.Now()) })
	return nil
}

// unloadIdle unloads every idle model last used IdleUnload or more before now.
func (r *Repository) unloadIdle(now time.Time) {
	cutoff := now.Add(-r.opts.IdleUnload).UnixNano()
	r.mu.Lock()
	var victims []victim
	for _, m := range r.models {
		if m.lastUsed.Load() <= cutoff && r.idleLocked(m) && m.ctl.TryLock() {
			victims = append(victims, victim{m: m, vs: r.retireModelLocked(m)})
		}
	}
	r.mu.Unlock()
	r.closeVictims(victims, "idle")
}
