package core

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"

	"go.opentelemetry.io/otel/trace"

	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/internal/router"
	"github.com/ferryml/ferry/internal/settings"
)

// Observer is told about requests entering and leaving core (finished requests go to
// the Taps); metrics implement it. It is called on the request path, so implementations
// must be quick and must not block.
type Observer interface {
	ObserveInFlight(model, version string, delta int)
}

// Options configure a Server.
type Options struct {
	Name       string // server name in metadata ("ferry")
	Version    string
	Repository Repository
	Limits     Limits
	Logger     *slog.Logger
	Observer   Observer // may be nil
	// Taps see every finished request (tap.go); metrics is the first.
	Taps []Tap
	// Cache is the response cache for versions that enable response_cache; nil: none.
	Cache Cache
	// Routes are the endpoints' routing policies (aliases, canary weights, sticky A/B,
	// matches, shadows); nil: an empty table, so every request goes where it names.
	Routes *router.Table
	// StrictReadiness: the server is ready only while every loaded model is READY.
	StrictReadiness bool
	// Trace and Log are the trace and logging extensions' settings (settings.go); nil:
	// fresh ones (Triton's trace defaults; a log level no handler reads).
	Trace *settings.Trace
	Log   *settings.Log
	// Admission, when set, may refuse a request before it reaches the scheduler
	// (admission.go); CallerOf names the request's tenant and key from its context (nil:
	// every request is the anonymous tenant "").
	Admission Admission
	CallerOf  func(ctx context.Context) (tenant, key string)
	// Background returns a version's background rows for KernelSHAP explanations
	// (explain.go), such as the drift baseline's sample; nil, or no rows: a request
	// without its own "background" is explained against a row of zeros.
	Background func(model, version string) [][]float64
	// Tracer, when set, records each request as an InferRequest span with queue and
	// compute spans under it, a span per ensemble step and the routing decision as an
	// event (trace.go); nil: no spans, and no cost.
	Tracer trace.Tracer
}

// Server is the in-process serving API every transport calls.
type Server struct {
	name, version string
	repo          Repository
	limits        Limits
	log           *slog.Logger
	obs           Observer
	taps          []Tap
	ready         atomic.Bool
	strict        bool
	stats         *statsTable
	routes        *router.Table
	mirror        shadows
	cache         Cache   // nil: no response cache
	loads         loadIDs // tells reloads of one version apart in cache keys
	trace         *settings.Trace
	logs          *settings.Log
	admission     Admission // nil: every request is admitted
	callerOf      func(context.Context) (tenant, key string)
	background    func(model, version string) [][]float64 // nil: none
	tracer        trace.Tracer                            // nil: requests are not traced
}

// Extensions Ferry implements, as GET /v2 lists them, with Triton's names; a test probes
// an endpoint of each (cmd/ferry). "cuda_shared_memory" is left out on purpose: its
// endpoints exist only to refuse (Ferry has no GPU), so it is not served.
var Extensions = []string{"classification", "sequence", "model_repository", "model_repository(unload_dependents)",
	"schedule_policy", "model_configuration", "system_shared_memory", "binary_tensor_data", "parameters",
	"statistics", "trace", "logging"}

// New builds a Server. It is not ready until SetReady(true), which the caller does once
// the startup models are loaded.
func New(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Name == "" {
		opts.Name = "ferry"
	}
	if opts.Limits == (Limits{}) {
		opts.Limits = DefaultLimits()
	}
	if opts.Trace == nil {
		opts.Trace = settings.NewTrace(settings.DefaultTrace())
	}
	if opts.Log == nil {
		opts.Log = settings.NewLog(new(slog.LevelVar))
	}
	if opts.Routes == nil {
		opts.Routes = new(router.Table)
	}
	return &Server{name: opts.Name, version: opts.Version, repo: opts.Repository, limits: opts.Limits,
		log: opts.Logger, obs: opts.Observer, taps: opts.Taps, stats: newStatsTable(), routes: opts.Routes, mirror: shadows{slots: make(chan struct{}, shadowSlots)}, cache: opts.Cache, strict: opts.StrictReadiness,
		trace: opts.Trace, logs: opts.Log, admission: opts.Admission, callerOf: opts.CallerOf, background: opts.Background,
		tracer: opts.Tracer}
}

// Live reports whether the process serves at all; it always does while it runs.
func (s *Server) Live() bool { return true }

// Ready reports whether the server takes inference requests: startup models are loaded
// and it is not draining.
// With strict readiness (Triton's default) every loaded model must also be READY.
func (s *Server) Ready() bool {
	return s.ready.Load() && (!s.strict || s.repo.Healthy())
}

// SetReady marks the startup models loaded (true) or the server draining (false).
func (s *Server) SetReady(v bool) { s.ready.Store(v) }

// Started reports whether SetReady(true) happened and draining has not begun, whatever
// the models' states.
func (s *Server) Started() bool { return s.ready.Load() }

// Limits are the request limits transports apply while decoding.
func (s *Server) Limits() Limits { return s.limits }

// Metadata answers GET /v2.
func (s *Server) Metadata() ServerMetadata {
	return ServerMetadata{Name: s.name, Version: s.version, Extensions: Extensions}
}

// acquire checks the model name and leases a ready version; an alias in version is
// resolved first.
func (s *Server) acquire(ctx context.Context, model, version string) (*Lease, error) {
	if err := CheckModelName(model); err != nil {
		return nil, err
	}
	version, err := s.resolveVersion(model, version)
	if err != nil {
		return nil, err
	}
	return s.repo.Acquire(ctx, model, version)
}

// ModelMetadata answers GET /v2/models/{m}[/versions/{v}] from the completed config.
func (s *Server) ModelMetadata(ctx context.Context, model, version string) (*ModelMetadata, error) {
	l, err := s.acquire(ctx, model, version)
	if err != nil {
		return nil, err
	}
	defer l.Release()
	return s.metadata(l), nil
}

// metadata describes the leased version's model.
func (s *Server) metadata(l *Lease) *ModelMetadata {
	cfg := l.Config
	md := &ModelMetadata{Name: l.Model, Versions: s.repo.Versions(l.Model), Platform: cfg.GetPlatform()}
	batch := cfg.GetMaxBatchSize() > 0
	for _, in := range cfg.GetInput() {
		md.Inputs = append(md.Inputs, TensorMetadata{Name: in.GetName(), DataType: v2Type(in.GetDataType()), Shape: metaShape(batch, in.GetDims())})
	}
	for _, out := range cfg.GetOutput() {
		md.Outputs = append(md.Outputs, TensorMetadata{Name: out.GetName(), DataType: v2Type(out.GetDataType()), Shape: metaShape(batch, out.GetDims())})
	}
	return md
}

func metaShape(batch bool, dims []int64) []int64 {
	if !batch {
		return append([]int64{}, dims...)
	}
	return append([]int64{-1}, dims...)
}

// ModelReady reports whether the version ("" = any) is READY. An unknown model is an error.
func (s *Server) ModelReady(_ context.Context, model, version string) (bool, error) {
	if err := CheckModelName(model); err != nil {
		return false, err
	}
	version, err := s.resolveVersion(model, version)
	if err != nil {
		return false, err
	}
	return s.repo.Ready(model, version)
}

// ModelConfig returns the completed configuration of a ready version.
func (s *Server) ModelConfig(ctx context.Context, model, version string) (*inference.ModelConfig, error) {
	l, err := s.acquire(ctx, model, version)
	if err != nil {
		return nil, err
	}
	defer l.Release()
	return l.Config, nil
}

// RepositoryIndex lists the repository's models and their states.
func (s *Server) RepositoryIndex(_ context.Context, readyOnly bool) ([]ModelIndexEntry, error) {
	return s.repo.Index(readyOnly), nil
}

// LoadModel loads or reloads a model (repository extension).
func (s *Server) LoadModel(ctx context.Context, model string, opts LoadOptions) error {
	if err := CheckModelName(model); err != nil {
		return err
	}
	return s.repo.Load(ctx, model, opts)
}

// UnloadModel unloads a model once its in-flight requests finish (repository extension).
// With dependents (Triton's unload_dependents), an ensemble's step models are unloaded
// after it, and theirs for nested ensembles, except a step model another loaded
// ensemble still uses.
func (s *Server) UnloadModel(ctx context.Context, model string, dependents bool) error {
	if err := CheckModelName(model); err != nil {
		return err
	}
	var steps []string
	if dependents {
		steps = s.stepModels(model) // before the unload takes the config away
	}
	if err := s.repo.Unload(ctx, model); err != nil {
		return err
	}
	if len(steps) == 0 {
		return nil
	}
	inUse := s.usedByEnsembles() // once: a step's own unload changes only its own steps' use
	var errs []error
	for _, step := range steps {
		if step == model || inUse[step] {
			continue
		}
		if err := s.UnloadModel(ctx, step, true); err != nil && !errors.Is(err, ErrNotFound) {
			errs = append(errs, fmt.Errorf("unloading %q, a step of %q: %w", step, model, err))
		}
	}
	return errors.Join(errs...)
}

// stepModels lists the models a loaded ensemble's steps run (none for a model that is
// not a loaded ensemble). It never loads a model: it asks only models already READY.
func (s *Server) stepModels(model string) []string {
	if ready, err := s.repo.Ready(model, ""); err != nil || !ready {
		return nil
	}
	l, err := s.repo.Acquire(context.Background(), model, "")
	if err != nil {
		return nil
	}
	defer l.Release()
	var steps []string
	for _, st := range l.Config.GetEnsembleScheduling().GetStep() {
		if !slices.Contains(steps, st.GetModelName()) {
			steps = append(steps, st.GetModelName())
		}
	}
	return steps
}

// usedByEnsembles is the set of models the steps of the loaded ensembles run.
func (s *Server) usedByEnsembles() map[string]bool {
	used := map[string]bool{}
	for _, e := range s.repo.Index(true) {
		for _, step := range s.stepModels(e.Name) {
			used[step] = true
		}
	}
	return used
}
