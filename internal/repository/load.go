package repository

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/internal/modelconfig"
	"github.com/ferryml/ferry/internal/scheduler"
)

// Backend is one execution engine as the repository uses it. cmd/ferry builds the table
// of backends from the engine packages, which never import this one.
type Backend struct {
	// Platform is the config `platform` that selects this backend ("onnxruntime_onnx").
	Platform string
	// DefaultFilename is the model file in a version folder ("model.onnx"); a model
	// without config is given the backend whose file it has.
	DefaultFilename string
	// ModelFile, when set, names the model file of a version folder for a config
	// without default_model_filename, for a backend reading several formats (trees:
	// model.json or model.txt); "" falls back to DefaultFilename.
	ModelFile func(vdir string, cfg *inference.ModelConfig) string
	// Inspect reads the inputs and outputs from the model file, for auto-complete.
	Inspect func(path string) (modelconfig.IO, error)
	// InspectConfig, when set, is used instead of Inspect by a backend whose inputs and
	// outputs are described by the config rather than a file (remote: the upstream its
	// parameters name), or that reads the config to inspect (onnxruntime: the session
	// options its max_batch_size probe runs with). path is the model file, or the
	// version folder when there is none.
	InspectConfig func(ctx context.Context, path string, cfg *inference.ModelConfig) (modelconfig.IO, error)
	// Open creates one execution instance from the model file and complete config.
	Open func(ctx context.Context, path string, cfg *inference.ModelConfig) (scheduler.Instance, error)
	// Aliases are other config `backend` names that select this backend; the config is
	// given the backend's own name.
	Aliases []string
	// DefaultInstances, when > 0, is the instance count of a CPU group whose config sets
	// none, instead of modelconfig's (Triton's) default.
	DefaultInstances int
	// OutsideMemory, when set, reports the memory an instance holds outside this process
	// (python: its child), which the memory budget adds to what it measures here.
	OutsideMemory func(scheduler.Instance) int64
	// Code marks a backend whose model file is a program it runs (python): a load
	// request's uploaded files load on it only with Options.AllowCodeUploads.
	Code bool
}

// Backends maps a config `backend` name ("onnxruntime") to its Backend.
type Backends map[string]Backend

// lookup finds the backend a config names, by its name or one of its aliases, and
// returns its own name.
func (bs Backends) lookup(name string) (string, Backend, bool) {
	if b, ok := bs[name]; ok {
		return name, b, true
	}
	for own, b := range bs {
		if slices.Contains(b.Aliases, name) {
			return own, b, true
		}
	}
	return "", Backend{}, false
}

// loadFromDisk (re)loads a model so its versions match the files and version policy.
// Unchanged versions keep serving; a changed or new version is loaded and READY before
// the version it replaces stops taking requests.
func (r *Repository) loadFromDisk(ctx context.Context, name string, opts *core.LoadOptions) error {
	if err := core.CheckModelName(name); err != nil {
		return err
	}
	dir := filepath.Join(r.opts.Root, name)
	if err := r.checkLoadOptions(opts); err != nil {
		return err
	}
	if opts != nil && len(opts.Files) > 0 {
		tmp, err := writeOverride(r.opts.LoadFilesDir, name, opts.Files)
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	} else if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return &core.NotFoundError{Model: name}
	}
	m := r.lockModel(name) // ondemand.go
	defer m.ctl.Unlock()

	fp := fingerprint(dir)
	if opts != nil && opts.Config != "" {
		fp += "+" + opts.Config
	}
	r.mu.Lock()
	pins := r.pinKeyLocked(name)
	// Polling skips an unchanged model even when it failed (no retry every interval); a
	// load request retries anything that is not fully serving; a change of the pinned
	// versions always reloads.
	unchanged := m.fp == fp && m.pins == pins && (opts == nil || len(opts.Files) == 0 && m.healthyLocked())
	if !unchanged {
		m.fromRequest = opts != nil && (opts.Config != "" || len(opts.Files) > 0)
	}
	r.mu.Unlock()
	if unchanged {
		return nil
	}
	cfg, explicitMax, backend, err := r.readConfig(dir, name, opts)
	if err != nil {
		r.setModelFailure(m, fp, err)
		return fmt.Errorf("model '%s': %w", name, err)
	}
	if backend.Code && opts != nil && len(opts.Files) > 0 && !r.opts.AllowCodeUploads {
		return core.Invalidf("model '%s': uploaded files for backend %q, which runs them as code, are refused; start the server with --allow-python-uploads to allow it", name, cfg.GetBackend())
	}
	if isEnsemble(cfg) {
		if err := r.ensembleSteps(ctx, name, cfg); err != nil {
			r.setModelFailure(m, "", err) // no fingerprint: the next load or poll tries again, once the step models are there
			return fmt.Errorf("model '%s': %w", name, err)
		}
	}
	onDisk, err := versionDirs(dir)
	if err != nil {
		r.setModelFailure(m, fp, err)
		return fmt.Errorf("model '%s': %w", name, err)
	}
	want, missing := modelconfig.Versions(cfg.GetVersionPolicy(), onDisk)
	r.mu.Lock()
	want = r.pinnedLocked(name, want, onDisk) // pins.go
	r.mu.Unlock()
	if len(want) == 0 {
		err := fmt.Errorf("no version folder matches the version policy (found %v, missing %v)", onDisk, missing)
		r.setModelFailure(m, fp, err)
		return fmt.Errorf("model '%s': %w", name, err)
	}
	err = r.applyVersions(ctx, m, dir, fp, want, cfg, explicitMax, backend)
	if err == nil {
		r.mu.Lock()
		m.pins = pins // a failed pinned version is tried again by the next load
		r.mu.Unlock()
	}
	return err
}

// applyVersions loads the wanted versions that are new or changed, then swaps them in
// and retires the versions no longer wanted.
func (r *Repository) applyVersions(ctx context.Context, m *model, dir, fp string, want []int64,
	cfg *inference.ModelConfig, explicitMax bool, backend Backend) error {
	fresh := map[int64]*version{}
	var errs []error
	for _, n := range want {
		vdir := filepath.Join(dir, strconv.FormatInt(n, 10))
		vfp := fingerprint(vdir) + fp
		r.mu.Lock()
		old := m.versions[n]
		r.mu.Unlock()
		if old != nil && old.fp == vfp && old.state == core.StateReady {
			r.mu.Lock()
			old.stale = "" // its own files are back
			r.mu.Unlock()
			continue
		}
		v := r.openVersion(ctx, m.name, n, vdir, cfg, explicitMax, backend)
		v.fp = vfp
		if v.state != core.StateReady {
			errs = append(errs, fmt.Errorf("model '%s' version %d: %s", m.name, n, v.reason))
			if old != nil && old.state == core.StateReady {
				r.mu.Lock()
				old.stale = v.reason // the old copy keeps serving, as Triton does when a reload fails
				r.mu.Unlock()
				continue
			}
		}
		fresh[n] = v
	}
	if len(errs) > 0 && r.abandonReload(m, fp, fresh, errs) {
		return errors.Join(errs...)
	}
	wanted := map[int64]bool{}
	for _, n := range want {
		wanted[n] = true
	}
	r.mu.Lock()
	var retired []*version
	for n, v := range m.versions {
		if _, replaced := fresh[n]; replaced || !wanted[n] {
			r.retireLocked(m, v)
			retired = append(retired, v)
		}
	}
	for n, v := range fresh {
		m.versions[n] = v
	}
	r.swappedLocked(m.name, fresh) // budget.go: their measured bytes now count as resident
	m.fp, m.reason, m.stale = fp, "", ""
	r.mu.Unlock()
	for _, v := range fresh {
		r.hookState(m.name, v)
	}
	errs = append(errs, r.closeVersions(m.name, retired, "replaced"))
	return errors.Join(errs...)
}

// abandonReload undoes a reload in which a version failed while versions loaded before
// still serve, as Triton does: swapping it in would retire them (a new version under a
// latest-N policy) or leave the model with a version that cannot serve, and take a
// model that serves out of service. The versions loaded before keep serving, the
// failure is stale (readiness.go), and the fresh versions are unloaded. It reports false,
// changing nothing, when no version serves: then the failed versions are swapped in, so
// the index shows why. The fingerprint is taken, so polling does not retry unchanged
// files; a load request does.
func (r *Repository) abandonReload(m *model, fp string, fresh map[int64]*version, errs []error) bool {
	r.mu.Lock()
	serving := false
	for _, v := range m.versions {
		serving = serving || v.serving()
	}
	if !serving {
		r.mu.Unlock()
		return false
	}
	r.swappedLocked(m.name, fresh) // budget.go: loaded, so they count until closed
	undone := make([]*version, 0, len(fresh))
	for _, v := range fresh {
		r.retireLocked(m, v)
		undone = append(undone, v)
	}
	m.fp, m.stale = fp, errors.Join(errs...).Error()
	r.mu.Unlock()
	r.log.Error("model reload failed; the versions loaded before keep serving", "model", m.name, "err", errors.Join(errs...))
	if err := r.closeVersions(m.name, undone, "reload failed"); err != nil {
		r.log.Warn("closing the versions of a failed reload", "model", m.name, "err", err)
	}
	r.republish(m, undone)
	return true
}

// republish gives the hooks again the state and resident bytes of the versions that
// serve under the numbers of undone ones, which loading and closing those overwrote.
func (r *Repository) republish(m *model, undone []*version) {
	for _, u := range undone {
		r.mu.Lock()
		v := m.versions[u.n]
		r.mu.Unlock()
		if v == nil {
			continue
		}
		r.hookState(m.name, v)
		if v.resident > 0 && r.opts.Hooks.Resident != nil {
			r.opts.Hooks.Resident(m.name, strconv.FormatInt(v.n, 10), v.resident)
		}
	}
}

// openVersion completes the config for one version and opens its instances. Failure is
// recorded in the returned version's state rather than returned, so the index shows it.
func (r *Repository) openVersion(ctx context.Context, name string, n int64, vdir string,
	base *inference.ModelConfig, explicitMax bool, backend Backend) *version {
	start := time.Now()
	v := &version{n: n, state: core.StateLoading}
	r.hookState(name, v)
	cfg, sched, resident, err := r.openMeasured(ctx, name, n, vdir, base, explicitMax, backend) // budget.go
	v.resident = resident
	if r.opts.Hooks.Loaded != nil {
		r.opts.Hooks.Loaded(name, strconv.FormatInt(n, 10), time.Since(start), err)
	}
	if err != nil {
		v.state, v.reason = core.StateUnavailable, r.public(err.Error())
		r.log.Error("model version failed to load", "model", name, "version", n, "err", err)
		return v
	}
	v.state, v.cfg, v.sched = core.StateReady, cfg, sched
	r.log.Info("model version loaded", "model", name, "version", n, "took", time.Since(start).Round(time.Millisecond))
	return v
}

func (r *Repository) open(ctx context.Context, name, ver, vdir string, base *inference.ModelConfig,
	explicitMax bool, backend Backend) (*inference.ModelConfig, *scheduler.Scheduler, error) {
	if isEnsemble(base) {
		cfg, err := openEnsemble(name, base) // no model file, no instances, no scheduler
		return cfg, nil, err
	}
	cfg := cloneConfig(base)
	file := cfg.GetDefaultModelFilename()
	if file == "" {
		file = backend.modelFile(vdir, cfg)
		cfg.DefaultModelFilename = file // the served config names the file used (trees: model.json or model.txt)
	}
	// Checked before any file access: a stat of "../../etc/shadow" would tell the
	// client, by its error, whether that file exists.
	if file != "" { // "": a backend without a model file (remote) opens the version folder
		if err := modelconfig.CheckFileName(file); err != nil {
			return nil, nil, fmt.Errorf("default_model_filename %q: %v", file, err)
		}
	}
	path := filepath.Join(vdir, file)
	if _, err := os.Stat(path); err != nil {
		return nil, nil, fmt.Errorf("model file: %w", err)
	}
	if err := within(vdir, path); err != nil {
		return nil, nil, fmt.Errorf("model file %s: %w", file, err)
	}
	inspect := backend.Inspect
	if backend.InspectConfig != nil {
		inspect = func(p string) (modelconfig.IO, error) { return backend.InspectConfig(ctx, p, cfg) }
	}
	if inspect != nil {
		io, err := inspect(path)
		if err != nil {
			return nil, nil, err
		}
		if err := modelconfig.AutoComplete(cfg, io, explicitMax); err != nil {
			return nil, nil, err
		}
	}
	if err := modelconfig.Validate(cfg, name); err != nil {
		return nil, nil, err
	}
	seq, err := sequencing(cfg, vdir) // sequence.go
	if err != nil {
		return nil, nil, err
	}
	count, err := instanceCount(cfg)
	if err != nil {
		return nil, nil, err
	}
	instances := make([]scheduler.Instance, 0, count)
	for range count {
		in, err := backend.Open(ctx, path, cfg)
		if err != nil {
			for _, done := range instances {
				done.Close()
			}
			return nil, nil, err
		}
		instances = append(instances, in)
	}
	opts := schedulerOptions(cfg)
	opts.Sequencing = seq
	if r.opts.SchedulerObserver != nil {
		opts.Observer = r.opts.SchedulerObserver(name, ver)
	}
	unmute := muteWarmup(&opts, cfg) // warmup.go
	sched := scheduler.New(name+"/"+ver, instances, opts)
	if err := r.warmUp(ctx, name, ver, vdir, cfg, sched, len(instances)); err != nil {
		sched.Close() // closes the instances too
		return nil, nil, err
	}
	unmute()
	return cfg, sched, nil
}

// instanceCount adds up the instance groups; Ferry runs on CPUs only.
func instanceCount(cfg *inference.ModelConfig) (int, error) {
	for i, g := range cfg.GetInstanceGroup() {
		if g.GetKind() == inference.ModelInstanceGroup_KIND_GPU {
			return 0, fmt.Errorf("instance_group[%d]: KIND_GPU is not available; this server runs models on the CPU (use KIND_CPU)", i)
		}
	}
	return modelconfig.Instances(cfg), nil
}

// readConfig parses config.pbtxt (or the JSON config given with a load request) and
// picks the backend.
func (r *Repository) readConfig(dir, name string, opts *core.LoadOptions) (*inference.ModelConfig, bool, Backend, error) {
	var cfg *inference.ModelConfig
	explicitMax := false
	switch {
	case opts != nil && opts.Config != "":
		c, err := modelconfig.ParseJSON([]byte(opts.Config))
		if err != nil {
			return nil, false, Backend{}, core.Invalidf("config parameter: %v", err)
		}
		cfg, explicitMax = c, modelconfig.HasMaxBatchSizeJSON([]byte(opts.Config))
	default:
		text, err := os.ReadFile(filepath.Join(dir, "config.pbtxt"))
		switch {
		case errors.Is(err, os.ErrNotExist) && r.opts.DisableAutoComplete:
			return nil, false, Backend{}, errors.New("no config.pbtxt; auto-complete is disabled, so every model needs a complete config")
		case errors.Is(err, os.ErrNotExist):
			cfg = &inference.ModelConfig{}
		case err != nil:
			return nil, false, Backend{}, err
		default:
			if cfg, err = modelconfig.Parse(text); err != nil {
				return nil, false, Backend{}, err // Parse names the file and line
			}
			explicitMax = modelconfig.HasMaxBatchSize(text)
		}
	}
	if r.opts.DisableAutoComplete {
		if err := modelconfig.CheckComplete(cfg); err != nil {
			return nil, false, Backend{}, fmt.Errorf("auto-complete is disabled, so the config must state what the model file would have filled in:\n%w", err)
		}
		explicitMax = true // max_batch_size 0 means 0, not "pick one"
	}
	backend, err := r.pickBackend(dir, cfg)
	if err != nil {
		return nil, false, Backend{}, err
	}
	if backend.DefaultInstances > 0 {
		modelconfig.SetInstanceCount(cfg, backend.DefaultInstances)
	}
	modelconfig.SetDefaults(cfg, name)
	return cfg, explicitMax, backend, nil
}

// pickBackend follows the config's backend, then its platform, then the model file found.
func (r *Repository) pickBackend(dir string, cfg *inference.ModelConfig) (Backend, error) {
	if isEnsemble(cfg) {
		return Backend{}, nil // core runs an ensemble's steps on their own models
	}
	if name := cfg.GetBackend(); name != "" {
		name, b, ok := r.opts.Backends.lookup(name)
		if !ok && cfg.GetBackend() == modelconfig.BackendLLM {
			return Backend{}, fmt.Errorf("backend %q: LLM models are served at /v1 by the LLM lane, which opens the ones it finds at start, not by the V2 repository", cfg.GetBackend())
		}
		if !ok {
			return Backend{}, fmt.Errorf("backend %q is not available in this server", cfg.GetBackend())
		}
		cfg.Backend = name
		if cfg.Platform == "" {
			cfg.Platform = b.Platform
		}
		return b, nil
	}
	for name, b := range r.opts.Backends {
		if cfg.GetPlatform() != "" && b.Platform == cfg.GetPlatform() {
			cfg.Backend = name
			return b, nil
		}
	}
	if cfg.GetPlatform() != "" {
		return Backend{}, fmt.Errorf("platform %q is not available in this server", cfg.GetPlatform())
	}
	vs, _ := versionDirs(dir)
	for name, b := range r.opts.Backends {
		for _, n := range vs {
			if vdir := filepath.Join(dir, strconv.FormatInt(n, 10)); fileExists(filepath.Join(vdir, b.modelFile(vdir, cfg))) {
				cfg.Backend, cfg.Platform = name, b.Platform
				return b, nil
			}
		}
	}
	return Backend{}, errors.New("no backend or platform in the config, and no version folder holds a model file a backend recognises")
}

// model returns the entry for name, creating it on first use.
func (r *Repository) model(name string) *model {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.models[name]
	if m == nil {
		m = &model{name: name, versions: map[int64]*version{}}
		r.models[name] = m
	}
	return m
}

// setModelFailure records a model-level failure. Versions already serving keep serving
// the files loaded before, and then the failure is stale, not the model's reason: the
// model still serves, so the server stays ready (a readiness probe must not pull a pod
// whose models all serve), while the index and the log say what failed.
func (r *Repository) setModelFailure(m *model, fp string, err error) {
	r.mu.Lock()
	serving := m.servesLocked()
	if serving {
		m.fp, m.stale = fp, r.public(err.Error())
	} else {
		m.fp, m.reason = fp, r.public(err.Error())
	}
	r.mu.Unlock()
	if serving {
		r.log.Error("model reload failed; the versions loaded before keep serving", "model", m.name, "err", err)
		return
	}
	r.log.Error("model failed to load", "model", m.name, "err", err)
}

// retireLocked stops a version taking new leases. Caller holds r.mu.
func (r *Repository) retireLocked(m *model, v *version) {
	if m.versions[v.n] == v {
		delete(m.versions, v.n)
	}
	if v.state == core.StateReady {
		v.state = core.StateUnloading
	}
	r.od.closing += v.resident // still held until closeVersions closes it (budget.go)
}

// closeVersions waits for each retired version's leases, then closes its scheduler.
// reason says why, for the Unloaded hook.
func (r *Repository) closeVersions(name string, vs []*version, reason string) error {
	var errs []error
	for _, v := range vs {
		v.refs.Wait()
		if v.sched != nil {
			errs = append(errs, v.sched.Close())
		}
		if r.opts.Hooks.State != nil {
			r.opts.Hooks.State(name, strconv.FormatInt(v.n, 10), "")
		}
		r.hookUnloaded(name, v, reason) // budget.go
		r.log.Info("model version unloaded", "model", name, "version", v.n, "reason", reason)
	}
	return errors.Join(errs...)
}

func (r *Repository) hookState(name string, v *version) {
	if r.opts.Hooks.State != nil {
		r.opts.Hooks.State(name, strconv.FormatInt(v.n, 10), v.state)
	}
}

// checkLoadOptions refuses a load request's own config and files unless the server
// allows them (Options.AllowLoadFiles).
func (r *Repository) checkLoadOptions(opts *core.LoadOptions) error {
	if opts == nil || r.opts.AllowLoadFiles || (opts.Config == "" && len(opts.Files) == 0) {
		return nil
	}
	return core.Invalidf("a load request's \"config\" and \"file:\" parameters are refused: the server loads only its repository's models; start it with --allow-load-files to allow them")
}

// writeOverride puts the files of a load request in a fresh folder under parent ("":
// the temporary folder) laid out like a model folder, refusing paths that would escape it.
func writeOverride(parent, name string, files map[string][]byte) (string, error) {
	tmp, err := os.MkdirTemp(parent, "ferry-load-"+name+"-")
	if err != nil {
		return "", err
	}
	for rel, data := range files {
		if err := core.CheckLoadPath(rel); err != nil {
			os.RemoveAll(tmp)
			return "", core.Invalidf("load file %q: %v", rel, err)
		}
		p := filepath.Join(tmp, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			os.RemoveAll(tmp)
			return "", err
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			os.RemoveAll(tmp)
			return "", err
		}
	}
	return tmp, nil
}

// public is msg with the folders of the server's file system cut from the paths in it
// (model folders become relative to the repository): failures reach clients in errors
// and the index, and where the server keeps its files is not theirs to see. The log
// keeps the full paths.
func (r *Repository) public(msg string) string {
	for _, dir := range r.private {
		msg = strings.ReplaceAll(msg, dir, "")
	}
	return msg
}
