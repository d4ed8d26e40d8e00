package repository

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferryml/ferry/internal/platform/periodic"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/scheduler"
)

// Mode is the model control mode, named as Triton's --model-control-mode values.
type Mode string

// The control modes.
const (
	ModeNone     Mode = "none"     // load every model at start; no load/unload API
	ModeExplicit Mode = "explicit" // load only what is asked for (flag or API)
	ModePoll     Mode = "poll"     // load everything, then rescan and apply changes
	// ModeOnDemand loads nothing at start; a model loads on its first request, and may be
	// unloaded again under a memory budget or when idle (ondemand.go).
	ModeOnDemand Mode = "on-demand"
)

// ParseMode checks a --model-control-mode value.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case ModeNone, ModeExplicit, ModePoll, ModeOnDemand:
		return m, nil
	}
	return "", fmt.Errorf("model control mode %q: want none, explicit, poll or on-demand", s)
}

// Hooks let an observer (metrics) follow loads without being on their path.
type Hooks struct {
	// Loaded is called after every version load attempt.
	Loaded func(model, version string, took time.Duration, err error)
	// State is called when a version changes state (READY, UNAVAILABLE, UNLOADING, ...);
	// state "" means the version is gone.
	State func(model, version, state string)
	// Unloaded is called when a version that was loaded is unloaded, with why: evicted
	// (memory budget), idle, api, replaced (by a reload), removed (from disk), shutdown.
	Unloaded func(model, version, reason string)
	// Resident is called with a version's measured resident bytes once it is loaded, and
	// with -1 when it is unloaded; only while a memory budget is set (budget.go).
	Resident func(model, version string, bytes int64)
}

// Options configure a Repository.
type Options struct {
	Root         string
	Mode         Mode
	Startup      []string // models to load at start in explicit mode
	PollInterval time.Duration
	Backends     Backends
	Logger       *slog.Logger
	Hooks        Hooks
	// SchedulerObserver, when set, gives each loaded version's scheduler its observer.
	SchedulerObserver func(model, version string) scheduler.Observer
	// Source, when set, fills Root before the repository reads it (source.go).
	Source Source
	// ExitOnError makes Start fail when any startup model fails to load, naming each
	// (tritonserver --exit-on-error); otherwise failures are only indexed and logged.
	ExitOnError bool
	// DisableAutoComplete loads only configs that state everything themselves
	// (tritonserver --disable-auto-complete-config): nothing is filled in from the model
	// file, which is still checked against the config.
	DisableAutoComplete bool
	// AllowLoadFiles lets a repository load request carry its own config and files
	// (Triton's "config" and "file:<path>" parameters); without it they are refused, since
	// a request's model is code and data the operator never saw (load.go).
	AllowLoadFiles bool
	// LoadFilesDir is the folder a load request's files are written under (a fresh
	// folder per request); "" is the system's temporary folder.
	LoadFilesDir string
	// AllowCodeUploads additionally lets those files be loaded by a backend whose model
	// file is code it runs (Backend.Code: python).
	AllowCodeUploads bool

	// On-demand mode (ondemand.go, budget.go).
	LoadTimeout  time.Duration // how long a request waits for its model to load (default 30s)
	MemoryBudget int64         // bytes the loaded models may hold, measured at load; 0: no budget
	IdleUnload   time.Duration // unload a model unused this long; 0: never
	// NativeHeapInUse, when set, reports the bytes the C heap has handed out and not
	// freed; loads are then measured with it (resident.go). cmd/ferry passes the ONNX
	// Runtime backend's.
	NativeHeapInUse func() int64
}

// Repository owns the loaded models. All methods are safe for concurrent use.
type Repository struct {
	opts Options
	log  *slog.Logger

	mu     sync.Mutex // guards models and every version's state and refs
	models map[string]*model
	od     onDemand           // on-demand loads and the memory budget (ondemand.go); guarded by mu
	pins   map[string][]int64 // versions kept loaded beside the policy's (pins.go); guarded by mu
	// refused holds the last sync's refusals by model (source.go); never mutated once stored.
	refused atomic.Pointer[map[string]error]
	// private are the folder prefixes public cuts from messages clients see (load.go).
	private []string
}

var _ core.Repository = (*Repository)(nil)

// New checks the options; it loads nothing (Start does).
func New(opts Options) (*Repository, error) {
	if opts.Root == "" {
		return nil, errors.New("model repository: no folder given")
	}
	st, err := os.Stat(opts.Root)
	if err != nil {
		return nil, fmt.Errorf("model repository: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("model repository %s: not a folder", opts.Root)
	}
	if opts.Mode == "" {
		opts.Mode = ModeNone
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 15 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if err := checkOnDemand(&opts); err != nil {
		return nil, err
	}
	return &Repository{opts: opts, log: opts.Logger, models: map[string]*model{}, od: newOnDemand(opts), private: privateDirs(opts)}, nil
}

// Start loads the startup models: all of them in none and poll modes, the named ones in
// explicit mode. A model that fails is reported in the index and does not stop the
// others; Start returns an error only when the repository itself cannot be read, a
// named startup model does not exist or, with ExitOnError, a startup model failed.
func (r *Repository) Start(ctx context.Context) error {
	if err := r.syncSource(ctx); err != nil {
		return err
	}
	if r.opts.Mode == ModeOnDemand {
		return nil // each model loads on its first request
	}
	names := r.opts.Startup
	if r.opts.Mode != ModeExplicit {
		var err error
		if names, err = modelDirs(r.opts.Root); err != nil {
			return err
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, len(names))
	for i, name := range names {
		wg.Go(func() { errs[i] = r.loadFromDisk(ctx, name, nil) })
	}
	wg.Wait()
	var failed []error // load failures are logged and indexed where they happen
	for _, err := range errs {
		if errors.Is(err, core.ErrNotFound) || err != nil && r.opts.ExitOnError {
			failed = append(failed, err)
		}
	}
	return errors.Join(failed...)
}

// Run polls the repository in poll mode until ctx ends; in on-demand mode it unloads
// idle models and, every PollInterval, the models whose files changed (ondemand.go); in
// other modes it just waits.
func (r *Repository) Run(ctx context.Context) error {
	switch r.opts.Mode {
	case ModeOnDemand:
		var wg sync.WaitGroup
		wg.Go(func() { periodic.Run(ctx, r.opts.PollInterval, r.refreshOnDemand) })
		err := r.runIdleUnload(ctx)
		wg.Wait()
		return err
	case ModePoll:
		periodic.Run(ctx, r.opts.PollInterval, r.Poll)
	default:
		<-ctx.Done()
	}
	return nil
}

// Poll rescans the repository once: new and changed models are (re)loaded, models whose
// folder is gone are unloaded.
func (r *Repository) Poll(ctx context.Context) {
	if err := r.syncSource(ctx); err != nil {
		r.log.Warn("model store sync failed; the repository keeps its current files", "err", err)
	}
	names, err := modelDirs(r.opts.Root)
	if err != nil {
		r.log.Warn("repository poll failed", "err", err)
		return
	}
	onDisk := map[string]bool{}
	for _, name := range names {
		onDisk[name] = true
		if err := r.loadFromDisk(ctx, name, nil); err != nil {
			r.log.Warn("model reload failed", "model", name, "err", err)
		}
	}
	for _, name := range r.loadedNames() {
		if !onDisk[name] {
			if err := r.unloadModel(name, "removed"); err != nil {
				r.log.Warn("model unload failed", "model", name, "err", err)
			}
		}
	}
}

// Close unloads every model, waiting for the requests that hold leases (and for
// on-demand loads in progress, which it cancels).
func (r *Repository) Close() error {
	r.stopLoads() // ondemand.go
	var errs []error
	for _, name := range r.loadedNames() {
		errs = append(errs, r.unloadModel(name, "shutdown"))
	}
	return errors.Join(errs...)
}

func (r *Repository) loadedNames() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	names := make([]string, 0, len(r.models))
	for name := range r.models {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// Acquire implements core.Repository. In on-demand mode it loads the model first when it
// is not loaded, waiting as long as ctx and the load timeout allow (ondemand.go).
func (r *Repository) Acquire(ctx context.Context, name, version string) (*core.Lease, error) {
	if err := r.refusedError(name); err != nil {
		return nil, err
	}
	if r.opts.Mode == ModeOnDemand {
		return r.acquireOnDemand(ctx, name, version)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.leaseLocked(name, version)
}

// Ready implements core.Repository: the state as it is, loading nothing (in on-demand
// mode an unloaded model is simply not ready).
func (r *Repository) Ready(name, version string) (bool, error) {
	if err := r.refusedError(name); err != nil {
		return false, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.models[name]
	if m == nil {
		if st, err := os.Stat(filepath.Join(r.opts.Root, name)); err == nil && st.IsDir() {
			return false, nil
		}
		return false, &core.NotFoundError{Model: name, Version: version}
	}
	v, err := m.pick(version)
	if err != nil {
		if errors.Is(err, core.ErrUnavailable) {
			return false, nil
		}
		return false, err
	}
	return v.instancesReady() == nil, nil // pick lets requests wait for a restart (readiness.go)
}

// leaseLocked leases a READY version of a loaded model. Caller holds r.mu.
func (r *Repository) leaseLocked(name, version string) (*core.Lease, error) {
	m := r.models[name]
	if m == nil {
		if st, err := os.Stat(filepath.Join(r.opts.Root, name)); err == nil && st.IsDir() {
			return nil, core.Unavailablef("model '%s' is not loaded", name)
		}
		return nil, &core.NotFoundError{Model: name, Version: version}
	}
	v, err := m.pick(version)
	if err != nil {
		return nil, err
	}
	v.refs.Add(1)
	v.leases.Add(1)
	m.lastUsed.Store(time.Now().UnixNano())
	var once sync.Once
	return core.NewLease(name, strconv.FormatInt(v.n, 10), v.cfg, v.sched, func() {
		once.Do(func() {
			m.lastUsed.Store(time.Now().UnixNano())
			r.released(v) // budget.go
			v.refs.Done()
		})
	}), nil
}

// Healthy implements core.Repository: every model loaded (or tried) serves every version.
func (r *Repository) Healthy() bool {
	if r.opts.Mode == ModeOnDemand {
		return true // models load and unload with the traffic; each reports its own state
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range r.models {
		if !m.servesLocked() || m.downLocked() { // a failed reload leaves a model serving: readiness.go
			return false
		}
	}
	return r.refusedCount() == 0 // source.go: a model whose files were all refused cannot serve
}

// Versions implements core.Repository.
func (r *Repository) Versions(name string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.models[name]
	if m == nil {
		return nil
	}
	var out []string
	for _, v := range m.sortedVersions() {
		if v.state == core.StateReady {
			out = append(out, strconv.FormatInt(v.n, 10))
		}
	}
	return out
}

// Index implements core.Repository: every model folder, with the state of each version
// that was loaded or tried; a model never loaded is listed without a version.
func (r *Repository) Index(readyOnly bool) []core.ModelIndexEntry {
	names, _ := modelDirs(r.opts.Root)
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := map[string]bool{}
	var out []core.ModelIndexEntry
	add := func(e core.ModelIndexEntry) {
		if !readyOnly || e.State == core.StateReady {
			out = append(out, e)
		}
	}
	for _, name := range names {
		seen[name] = true
		m := r.models[name]
		if f := r.od.flights[name]; f != nil && !f.finished {
			add(core.ModelIndexEntry{Name: name, State: core.StateLoading})
			continue
		}
		if m == nil {
			add(core.ModelIndexEntry{Name: name, State: core.StateUnavailable, Reason: "unloaded"})
			continue
		}
		for _, e := range m.indexEntries() {
			add(e)
		}
	}
	for name, m := range r.models { // loaded through the API with override files, or removed from disk
		if !seen[name] {
			for _, e := range m.indexEntries() {
				add(e)
			}
		}
	}
	out = r.addRefusedLocked(out, seen, readyOnly) // source.go
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Load implements the repository extension's load: (re)load the model from disk, or from
// the config and files supplied with the request.
func (r *Repository) Load(ctx context.Context, name string, opts core.LoadOptions) error {
	if r.opts.Mode != ModeExplicit && r.opts.Mode != ModeOnDemand {
		return core.Unavailablef("explicit model load / unload is not allowed in model control mode %q", r.opts.Mode)
	}
	if err := core.CheckModelName(name); err != nil {
		return err
	}
	if err := r.syncSource(ctx); err != nil {
		r.log.Warn("model store sync failed; loading the files already here", "model", name, "err", err)
	}
	load := r.loadFromDisk
	if r.opts.Mode == ModeOnDemand {
		load = r.loadBudgeted // ondemand.go: under the memory budget
	}
	err := load(ctx, name, &opts)
	if err != nil && !errors.Is(err, core.ErrNotFound) && !errors.Is(err, core.ErrInvalid) {
		// The request was understood; the model is what failed (Triton answers 400 too).
		return core.Invalidf("failed to load '%s': %s", name, r.public(err.Error()))
	}
	return err
}

// Unload implements the repository extension's unload.
func (r *Repository) Unload(ctx context.Context, name string) error {
	if r.opts.Mode != ModeExplicit && r.opts.Mode != ModeOnDemand {
		return core.Unavailablef("explicit model load / unload is not allowed in model control mode %q", r.opts.Mode)
	}
	if err := core.CheckModelName(name); err != nil {
		return err
	}
	r.mu.Lock()
	_, ok := r.models[name]
	r.mu.Unlock()
	if !ok {
		if _, err := os.Stat(filepath.Join(r.opts.Root, name)); err != nil {
			return &core.NotFoundError{Model: name}
		}
		return nil // already unloaded
	}
	return r.unloadModel(name, "api")
}

// unloadModel retires every version of a model and forgets it; reason goes to the
// Unloaded hook.
func (r *Repository) unloadModel(name, reason string) error {
	r.mu.Lock()
	m := r.models[name]
	r.mu.Unlock()
	if m == nil {
		return nil
	}
	m.ctl.Lock()
	defer m.ctl.Unlock()
	r.mu.Lock()
	vs := m.sortedVersions()
	for _, v := range vs {
		r.retireLocked(m, v)
	}
	if r.models[name] == m { // an eviction may have replaced the entry meanwhile
		delete(r.models, name)
	}
	r.mu.Unlock()
	return r.closeVersions(name, vs, reason)
}

// privateDirs are the folders whose paths clients must not see, each with a trailing
// separator, longest first so a folder inside another is cut whole: the repository (as
// given and absolute), where load requests' files go, and the temporary folder.
func privateDirs(opts Options) []string {
	var dirs []string
	for _, d := range []string{opts.Root, opts.LoadFilesDir, os.TempDir()} {
		if d == "" {
			continue
		}
		dirs = append(dirs, filepath.Clean(d)+string(filepath.Separator))
		if abs, err := filepath.Abs(d); err == nil {
			dirs = append(dirs, abs+string(filepath.Separator))
		}
	}
	slices.SortFunc(dirs, func(a, b string) int { return len(b) - len(a) })
	return slices.Compact(dirs)
}
