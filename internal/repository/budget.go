package repository

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/internal/scheduler"
)

// The memory budget (--memory-budget, on-demand mode only) bounds the bytes the budget
// accounts, which are:
//
//   - the charge of every loaded version: its measured bytes (resident.go), never less
//     than its floor, plus a fixed overhead (charge);
//   - those of versions retired but not closed yet (a replaced version draining its
//     requests, a victim being closed): their memory is still held;
//   - for the one load in progress (loads run one at a time under a budget), its
//     estimate until its first version is measured, then the measured bytes of its
//     versions that are open but not yet swapped in.
//
// Before a load, the estimate must fit: the last measurement of the model when it was
// loaded before, else the size of its files (a floor: a runtime holds at least the
// weights; scaling it by what other models measured over their files misleads, since
// small models are mostly fixed overhead and large ones mostly weights). Least recently used idle models (no lease out, no request waiting for them, not
// being loaded) are unloaded until it fits; their memory is counted until they are
// closed, which happens before the load starts. When each version is measured, the
// difference from the estimate must fit too, by the same rule. What cannot fit fails
// with ErrUnavailable and no model is unloaded for nothing. So the accounted total
// never exceeds the budget. The process itself can, briefly: when a version measures
// more than its estimate, its memory is there before the idle models it displaces are
// closed (they are idle, so closing takes milliseconds).

// budgetError is a load refused by the memory budget: the server cannot take the request
// now (ErrUnavailable), and the model is not remembered as broken.
type budgetError struct{ msg string }

func (e *budgetError) Error() string { return e.msg }
func (e *budgetError) Unwrap() error { return core.ErrUnavailable }

// loadAccount is the budget's view of the load in progress.
type loadAccount struct {
	estimate int64 // counted until a version is measured
	measured bool
	pending  int64 // measured bytes of versions open but not swapped in yet
	refused  error // a version the budget could not fit, if any
	// refusedBytes is what the refused versions measured, so the next attempt's estimate
	// knows and fails before loading while they still cannot fit.
	refusedBytes int64
}

func (a *loadAccount) counted() int64 {
	if a.measured {
		return a.pending
	}
	return a.estimate
}

// ResidentBytes reports what the memory budget accounts now (see above); 0 without a
// budget.
func (r *Repository) ResidentBytes() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.residentLocked()
}

func (r *Repository) residentLocked() int64 {
	total := r.od.closing
	for _, m := range r.models {
		for _, v := range m.versions {
			total += v.resident
		}
	}
	for _, a := range r.od.loads {
		total += a.counted()
	}
	return total
}

// openMeasured opens a version and, under a budget, measures it and makes room for it.
func (r *Repository) openMeasured(ctx context.Context, name string, n int64, vdir string, base *inference.ModelConfig,
	explicitMax bool, backend Backend) (*inference.ModelConfig, *scheduler.Scheduler, int64, error) {
	ver := strconv.FormatInt(n, 10)
	if r.opts.MemoryBudget <= 0 {
		cfg, sched, err := r.open(ctx, name, ver, vdir, base, explicitMax, backend)
		return cfg, sched, 0, err
	}
	cfg, sched, bytes, err := r.openCharged(ctx, name, ver, vdir, base, explicitMax, backend)
	if err == nil && bytes > r.opts.MemoryBudget {
		// More than the whole budget, which refuses the model until its files change. A
		// load is measured while other requests run and can be charged their memory, so
		// one measurement is not enough to refuse on: measure a second load.
		sched.Close()
		cfg, sched, bytes, err = r.openCharged(ctx, name, ver, vdir, base, explicitMax, backend)
	}
	if err != nil {
		return nil, nil, 0, err
	}
	err = r.makeRoom(name, func(a *loadAccount) int64 {
		if a == nil {
			return bytes // a load outside loadBudgeted (none today): count it as it is
		}
		return a.pending + bytes - a.counted()
	}, func(a *loadAccount) {
		if a != nil {
			a.pending += bytes
			a.measured = true
		}
	})
	if err != nil {
		if sched != nil {
			sched.Close()
		}
		r.mu.Lock()
		if a := r.od.loads[name]; a != nil {
			a.refused = err
			a.refusedBytes += bytes
		}
		r.mu.Unlock()
		return nil, nil, 0, fmt.Errorf("measured %s: %w", formatBytes(bytes), err)
	}
	if r.opts.Hooks.Resident != nil {
		r.opts.Hooks.Resident(name, ver, bytes)
	}
	return cfg, sched, bytes, nil
}

// openCharged opens a version and returns its charge (below).
func (r *Repository) openCharged(ctx context.Context, name, ver, vdir string, base *inference.ModelConfig,
	explicitMax bool, backend Backend) (cfg *inference.ModelConfig, sched *scheduler.Scheduler, bytes int64, err error) {
	backend, opened := keepOpened(backend)
	measured, err := r.measureLoad(func() (err error) {
		cfg, sched, err = r.open(ctx, name, ver, vdir, base, explicitMax, backend)
		return err
	})
	if err != nil {
		return nil, nil, 0, err
	}
	bytes = charge(measured, opened(), backend, vdir)
	return cfg, sched, bytes, nil
}

// A loaded version also holds memory on Go's heap (its config, scheduler, batcher and
// metrics) and goroutine stacks (each instance's), which the measurement leaves out
// (resident.go). Measured over 97 small ONNX models loaded one after another with no
// traffic (heap after a collection, stacks in use): 40-56 KiB of heap per version, and
// stacks of 37, 72 and 141 KiB with 1, 2 and 4 instances. A version is charged these
// fixed amounts for them.
const (
	versionOverhead  = 48 << 10
	instanceOverhead = 36 << 10
)

// sizer is an instance that knows a floor of the memory it holds (onnx.Session: its
// file plus the smallest session's C heap; python: its child's resident memory).
type sizer interface{ ResidentBytes() int64 }

// charge is what a loaded version counts against the budget: what its load measured
// plus what its instances hold in other processes, never less than its floor (what its
// instances report holding, at least the size of its files), plus its Go side. The
// floor matters under traffic: a load measured while other requests freed memory can
// come out below what the version holds, even negative, and a version charged nothing
// would never be evicted nor counted.
func charge(measured int64, instances []scheduler.Instance, b Backend, vdir string) int64 {
	var floor, outside int64
	for _, in := range instances {
		if s, ok := in.(sizer); ok {
			floor += max(s.ResidentBytes(), 0)
		}
		if b.OutsideMemory != nil {
			outside += max(b.OutsideMemory(in), 0)
		}
	}
	floor = max(floor, dirBytes(vdir))
	return max(measured+outside, floor) + versionOverhead + int64(len(instances))*instanceOverhead
}

// keepOpened wraps the backend's Open to keep the instances it opens, which opened
// returns.
func keepOpened(b Backend) (Backend, func() []scheduler.Instance) {
	var mu sync.Mutex // instances may be opened concurrently
	var kept []scheduler.Instance
	if open := b.Open; open != nil {
		b.Open = func(ctx context.Context, path string, cfg *inference.ModelConfig) (scheduler.Instance, error) {
			in, err := open(ctx, path, cfg)
			if err == nil {
				mu.Lock()
				kept = append(kept, in)
				mu.Unlock()
			}
			return in, err
		}
	}
	return b, func() []scheduler.Instance {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(kept)
	}
}

// swappedLocked moves the measured bytes of freshly loaded versions from the load's
// account to the versions, which count from now on. Caller holds r.mu.
func (r *Repository) swappedLocked(name string, fresh map[int64]*version) {
	a := r.od.loads[name]
	if a == nil {
		return
	}
	for _, v := range fresh {
		a.pending -= v.resident
	}
}

// reserve makes room for a model's estimate before it loads and opens its account.
func (r *Repository) reserve(name string, estimate int64) error {
	return r.makeRoom(name, func(*loadAccount) int64 { return estimate }, func(*loadAccount) {
		r.od.loads[name] = &loadAccount{estimate: estimate}
	})
}

// settle closes a load's account and remembers its measurement for the next estimate.
// It returns the budget's refusal of a version, if there was one.
func (r *Repository) settle(name string) (refused error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var total int64
	if a := r.od.loads[name]; a != nil {
		refused, total = a.refused, a.refusedBytes
	}
	delete(r.od.loads, name)
	m := r.models[name]
	if m == nil {
		return refused
	}
	for _, v := range m.versions {
		total += v.resident
	}
	if total > 0 {
		r.od.lastMeasured[name] = total
	}
	m.lastUsed.Store(time.Now().UnixNano())
	return refused
}

// estimateLocked is the bytes a model is expected to take: its last measurement, else
// the size of its files.
func (r *Repository) estimateLocked(name string, fileBytes int64) int64 {
	if b, ok := r.od.lastMeasured[name]; ok {
		return b
	}
	return fileBytes
}

// makeRoom commits bytes to the budget: extra (given the load's account) must fit, after
// evicting least recently used idle models if needed. commit runs under r.mu once it
// fits. Victims are closed before it commits, so the total stays within the budget.
// When the models in use hold too much for it to fit now, it waits for one of them to
// become idle, up to the load timeout: a lease lasts one request, so room comes soon
// unless traffic keeps every loaded model busy. What cannot fit even in an empty
// budget fails at once.
func (r *Repository) makeRoom(name string, extra func(*loadAccount) int64, commit func(*loadAccount)) error {
	var timeout <-chan time.Time
	for {
		r.mu.Lock()
		a := r.od.loads[name]
		need := r.residentLocked() + extra(a) - r.opts.MemoryBudget
		if need <= 0 {
			commit(a)
			r.mu.Unlock()
			return nil
		}
		if victims := r.evictLocked(name, need); len(victims) > 0 {
			r.mu.Unlock()
			r.closeVictims(victims, "evicted")
			continue
		}
		err := r.budgetErrorLocked(name, extra(a))
		if extra(a) > r.opts.MemoryBudget || r.od.stopped {
			r.mu.Unlock()
			return err
		}
		room := r.od.room
		r.od.roomWaiters.Add(1)
		r.od.roomFor[name] = err
		r.mu.Unlock()
		if timeout == nil {
			t := time.NewTimer(r.opts.LoadTimeout)
			defer t.Stop()
			timeout = t.C
		}
		if !r.awaitRoom(name, room, timeout) {
			return err
		}
	}
}

// awaitRoom waits for room to be signalled (true), the load timeout or Close (false),
// and then takes the load off the waiting list makeRoom put it on.
func (r *Repository) awaitRoom(name string, room <-chan struct{}, timeout <-chan time.Time) bool {
	signalled := false
	select {
	case <-room:
		signalled = true
	case <-timeout:
	case <-r.od.stop:
	}
	r.mu.Lock()
	r.od.roomWaiters.Add(-1)
	delete(r.od.roomFor, name)
	r.mu.Unlock()
	return signalled
}

// roomLocked wakes a load waiting in makeRoom: a model may have become idle or memory
// been freed. Caller holds r.mu.
func (r *Repository) roomLocked() {
	if r.od.roomWaiters.Load() > 0 {
		close(r.od.room)
		r.od.room = make(chan struct{})
	}
}

// released is called when a lease ends: the version may have become idle.
func (r *Repository) released(v *version) {
	if v.leases.Add(-1) == 0 && r.od.roomWaiters.Load() > 0 {
		r.mu.Lock()
		r.roomLocked()
		r.mu.Unlock()
	}
}

// victim is a model retired by eviction; its ctl is held until its versions are closed.
type victim struct {
	m  *model
	vs []*version
}

// evictLocked retires least recently used idle models until need bytes are freed, and
// returns them for closeVictims; when all idle models together free less, it retires
// none. Caller holds r.mu.
func (r *Repository) evictLocked(except string, need int64) []victim {
	var cands []*model
	var free int64
	for name, m := range r.models {
		if name != except && r.idleLocked(m) {
			cands = append(cands, m)
			free += m.residentLocked()
		}
	}
	if free < need {
		return nil
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].lastUsed.Load() < cands[j].lastUsed.Load() })
	var out []victim
	for _, m := range cands {
		if need <= 0 {
			break
		}
		// TryLock under r.mu cannot deadlock (it never waits); a model whose lock is held
		// is being loaded or unloaded, so it is not a victim.
		if !m.ctl.TryLock() {
			continue
		}
		need -= m.residentLocked()
		out = append(out, victim{m: m, vs: r.retireModelLocked(m)})
	}
	return out
}

// idleLocked reports whether a model may be unloaded: it has READY versions, none with a
// lease out, no request is waiting for it, and no sequence may be live in it (a stateful
// model used within its sequence idle time keeps its sequences' state between requests).
func (r *Repository) idleLocked(m *model) bool {
	if r.od.flights[m.name] != nil || r.od.loads[m.name] != nil {
		return false
	}
	ready := false
	for _, v := range m.versions {
		if v.leases.Load() > 0 {
			return false
		}
		if sb := v.cfg.GetSequenceBatching(); sb != nil {
			live := time.Duration(sb.GetMaxSequenceIdleMicroseconds()) * time.Microsecond
			if time.Since(time.Unix(0, m.lastUsed.Load())) < live {
				return false
			}
		}
		ready = ready || v.state == core.StateReady
	}
	return ready
}

func (m *model) residentLocked() int64 {
	var n int64
	for _, v := range m.versions {
		n += v.resident
	}
	return n
}

// retireModelLocked retires every version of a model and forgets it (its bytes move to
// r.od.closing until closeVersions). Caller holds r.mu and m.ctl.
func (r *Repository) retireModelLocked(m *model) []*version {
	vs := m.sortedVersions()
	for _, v := range vs {
		r.retireLocked(m, v)
	}
	if r.models[m.name] == m {
		delete(r.models, m.name)
	}
	return vs
}

// closeVictims closes retired models' versions and releases their locks.
func (r *Repository) closeVictims(victims []victim, reason string) {
	for _, v := range victims {
		if err := r.closeVersions(v.m.name, v.vs, reason); err != nil {
			r.log.Warn("model unload failed", "model", v.m.name, "reason", reason, "err", err)
		}
		v.m.ctl.Unlock()
	}
}

// hookUnloaded reports a closed version. Caller does not hold r.mu.
func (r *Repository) hookUnloaded(name string, v *version, reason string) {
	if v.resident > 0 {
		r.mu.Lock()
		r.od.closing -= v.resident
		r.roomLocked()
		r.mu.Unlock()
		if r.opts.Hooks.Resident != nil {
			r.opts.Hooks.Resident(name, strconv.FormatInt(v.n, 10), -1)
		}
	}
	if v.cfg != nil && r.opts.Hooks.Unloaded != nil {
		r.opts.Hooks.Unloaded(name, strconv.FormatInt(v.n, 10), reason)
	}
}

// budgetErrorLocked says why bytes more do not fit. Caller holds r.mu.
func (r *Repository) budgetErrorLocked(name string, extra int64) error {
	inUse, held := 0, int64(0)
	for n, m := range r.models {
		if n != name && !r.idleLocked(m) && m.residentLocked() > 0 {
			inUse++
			held += m.residentLocked()
		}
	}
	return &budgetError{fmt.Sprintf("memory budget %s: model '%s' needs about %s more, and %d models in use hold %s",
		formatBytes(r.opts.MemoryBudget), name, formatBytes(extra), inUse, formatBytes(held))}
}

// dirBytes is the size of the files under dir.
func dirBytes(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}
