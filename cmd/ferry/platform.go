package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/endpoint"
	"github.com/ferryml/ferry/internal/llm/native"
	"github.com/ferryml/ferry/internal/monitor/metrics"
	"github.com/ferryml/ferry/internal/registry"
	"github.com/ferryml/ferry/internal/repository"
	"github.com/ferryml/ferry/internal/rollout"
	"github.com/ferryml/ferry/internal/router"
)

// platform.go wires the serving platform (issue 16): the registry, the endpoint
// manager that moves aliases, policies and rollout traffic, and the rollout controller.
// It is on when `ferry serve` has --data-dir or --registry-url.

// platformConfig is what `ferry serve` reads for the platform.
type platformConfig struct {
	dataDir     string   // the registry (SQLite) and the managed artifact store
	registryURL string   // postgres://... instead of the SQLite file
	eventHooks  []string // URLs every rollout change is posted to
}

func (c *platformConfig) addFlags(f *pflag.FlagSet) {
	f.StringVar(&c.dataDir, "data-dir", "", "keep the model registry (SQLite), pushed artifacts and rollout state in this folder; turns on the registry, /api/v1 and rollouts")
	f.StringVar(&c.registryURL, "registry-url", "", "keep the registry in PostgreSQL instead (postgres://...); pushes still need --data-dir for their artifacts")
	f.StringArrayVar(&c.eventHooks, "rollout-webhook", nil, "URL every rollout state change is POSTed to as JSON (repeatable; failures are logged)")
}

func (c platformConfig) enabled() bool { return c.dataDir != "" || c.registryURL != "" }

// platform is one server's registry, endpoints and rollouts.
type platform struct {
	store     registry.Store
	endpoints *endpoint.Manager
	rollouts  *rollout.Controller
	meter     *rollout.Meter
	observer  *metrics.Rollouts
	loader    *modelLoader
	repoRoot  string // "" for an s3:// repository: nothing to import or push into
	log       *slog.Logger
}

// newPlatform opens the registry and builds the parts; start imports the repository
// and publishes the stored endpoints once the startup models are loaded.
func newPlatform(ctx context.Context, cfg serveConfig, repo *repository.Repository, routes *router.Table, log *slog.Logger) (*platform, error) {
	pc := cfg.platform
	var store registry.Store
	var err error
	if pc.registryURL != "" {
		store, err = registry.Open(ctx, pc.registryURL)
	} else {
		store, err = registry.OpenDir(ctx, pc.dataDir)
	}
	if err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	p := &platform{store: store, meter: rollout.NewMeter(), observer: metrics.NewRollouts(), loader: &modelLoader{repo: repo}, log: log}
	if !strings.HasPrefix(cfg.repository, "s3://") {
		p.repoRoot = cfg.repository
	}
	var artifacts *registry.Artifacts
	if pc.dataDir != "" {
		artifacts = registry.NewArtifacts(pc.dataDir, 0)
	}
	p.endpoints = endpoint.New(endpoint.Config{Store: store, Routes: routes, Loader: p.loader, RepositoryRoot: p.repoRoot, Artifacts: artifacts,
		Serving: p.loader.serving, Logger: log.With("component", "endpoint")})
	p.rollouts, err = rollout.New(rollout.Config{Store: store, Traffic: traffic{p.endpoints}, Models: p.endpoints, Meter: p.meter,
		Observer: p.observer, EventHooks: pc.eventHooks, Logger: log.With("component", "rollout")})
	if err != nil {
		store.Close()
		return nil, err
	}
	return p, nil
}

// modelLoader is the endpoint manager's Loader and Serving: the native LLM models'
// versions load as engines of the LLM lane, every other model's in the repository.
type modelLoader struct {
	repo *repository.Repository
	llm  *native.Server // nil until serveLLM (before the platform starts), or without the lane
}

// serveLLM makes the platform load and route the native LLM models too (nil: none).
func (p *platform) serveLLM(n *native.Server) {
	if p != nil {
		p.loader.llm = n
	}
}

// llmTaps are what the LLM lane's routed exchanges feed: the rollouts' Meter.
func (p *platform) llmTaps() []core.Tap {
	if p == nil {
		return nil
	}
	return []core.Tap{p.meter}
}

func (l *modelLoader) native(model string) bool { return l.llm != nil && l.llm.Has(model) }

// Pin keeps the versions loaded. The native server's errors become core's: a missing
// version folder is not found, one that does not open is unavailable, as the
// repository's.
func (l *modelLoader) Pin(ctx context.Context, model string, versions []int64) error {
	if !l.native(model) {
		return l.repo.Pin(ctx, model, versions)
	}
	err := l.llm.Pin(ctx, model, versions)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w: %v", core.ErrNotFound, err)
	}
	return core.Unavailablef("%v", err) // a version failed to load: traffic must not move to it
}

// serving is the version a request naming none gets now: a native model's default,
// else the repository's.
func (l *modelLoader) serving(ctx context.Context, model string) (string, error) {
	if l.native(model) {
		v, _ := l.llm.DefaultVersion(model)
		return v, nil
	}
	r, err := l.repo.Acquire(ctx, model, "")
	if err != nil {
		return "", err
	}
	defer r.Release()
	return r.Version, nil
}

// traffic adapts the endpoint manager to the rollout controller's Traffic.
type traffic struct{ m *endpoint.Manager }

func (t traffic) SetTraffic(ctx context.Context, ep string, weights map[string]int, mirror *rollout.Mirror) error {
	if mirror == nil {
		return t.m.SetTraffic(ctx, ep, weights, "", 0)
	}
	return t.m.SetTraffic(ctx, ep, weights, mirror.Version, mirror.Percent)
}

func (p *platform) register(reg *prometheus.Registry) { reg.MustRegister(p.observer) }

// start registers the repository's models and versions (again: an import changes
// nothing already registered) and publishes the stored aliases and policies.
func (p *platform) start(ctx context.Context) error {
	if p.repoRoot != "" {
		rep, err := registry.Import(registry.WithActor(ctx, "ferry serve", "import --model-repository"), p.store, p.repoRoot)
		if err != nil {
			return fmt.Errorf("registry import: %w", err)
		}
		for _, c := range rep.Conflicts {
			p.log.Warn("repository version differs from the registered one", "conflict", fmt.Sprintf("%+v", c))
		}
	}
	return p.endpoints.Sync(ctx)
}

// run runs the rollout controller until ctx ends, then closes the registry.
func (p *platform) run(ctx context.Context) error {
	err := p.rollouts.Run(ctx)
	p.store.Close()
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// The management API's Service (internal/transport/mgmt).

func (p *platform) Store() registry.Store { return p.store }

func (p *platform) PushVersion(ctx context.Context, v registry.ModelVersion, artifact io.Reader) (registry.ModelVersion, error) {
	return p.endpoints.PushVersion(ctx, v, artifact)
}

func (p *platform) SetAlias(ctx context.Context, model, alias string, version int64) error {
	return p.endpoints.SetAlias(ctx, model, alias, version)
}

func (p *platform) DeleteAlias(ctx context.Context, model, alias string) error {
	return p.endpoints.DeleteAlias(ctx, model, alias)
}

func (p *platform) StoredPolicy(model string) *router.Policy { return p.endpoints.StoredPolicy(model) }
func (p *platform) Policy(model string) *router.Policy       { return p.endpoints.Policy(model) }

func (p *platform) SetPolicy(ctx context.Context, model string, pol *router.Policy) error {
	return p.endpoints.SetPolicy(ctx, model, pol)
}

// StartRollout fills in the stable version when the request leaves it out: the one the
// endpoint sends everything to, else the one a request naming none gets now.
func (p *platform) StartRollout(ctx context.Context, r rollout.Rollout) error {
	if r.Stable == "" {
		if pol := p.endpoints.Policy(r.Endpoint); pol != nil {
			for _, a := range pol.Arms {
				if a.Weight == 100 {
					r.Stable = a.Version
				}
			}
		}
	}
	if r.Stable == "" {
		v, err := p.endpoints.Serving(ctx, r.Endpoint)
		if err != nil {
			return err
		}
		r.Stable = v
	}
	return p.rollouts.Start(ctx, r)
}

func (p *platform) RolloutAction(ctx context.Context, ep, action string) error {
	return p.rollouts.Act(ctx, ep, action) // an unknown action is rollout.ErrInvalidAction: a 400
}

func (p *platform) RolloutStatus(ep string) (rollout.Status, []rollout.Change, bool) {
	return p.rollouts.Status(ep)
}

func (p *platform) Rollouts() []rollout.Status { return p.rollouts.List() }
