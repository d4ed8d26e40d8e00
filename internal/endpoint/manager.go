package endpoint

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"sync"

	"github.com/ferryml/ferry/internal/registry"
	"github.com/ferryml/ferry/internal/router"
)

// Loader keeps versions loaded (repository.Repository.Pin).
type Loader interface {
	Pin(ctx context.Context, model string, versions []int64) error
}

// Config is what New needs; every field but Logger is required.
type Config struct {
	Store  registry.Store
	Routes *router.Table
	Loader Loader
	// Serving is the version a request that names none gets today (the repository's
	// newest ready version), for freezing traffic before a newer version is loaded.
	Serving func(ctx context.Context, model string) (string, error)
	// RepositoryRoot is the model repository folder pushed versions are placed in; ""
	// refuses pushes (an s3:// repository).
	RepositoryRoot string
	Artifacts      *registry.Artifacts
	Logger         *slog.Logger
}

// Manager applies changes to endpoints one at a time. Its methods are safe for
// concurrent use.
type Manager struct {
	cfg Config
	log *slog.Logger

	mu        sync.Mutex // one change at a time: pin, persist, publish, unpin
	endpoints map[string]*state
	verified  map[string]string // "model/version" -> the digest its folder was checked against
}

// state is one endpoint as the manager last published it.
type state struct {
	policy  router.Policy    // as stored: arms, sticky, matches, shadow (no aliases)
	aliases map[string]int64 // the registry's
	held    map[string]bool  // versions a rollout keeps loaded (Load)
}

// New builds a Manager; Sync loads what the registry holds.
func New(cfg Config) *Manager {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Manager{cfg: cfg, log: cfg.Logger, endpoints: map[string]*state{}, verified: map[string]string{}}
}

// Sync removes what pushes cut short by a crash left, reads every endpoint's policy and
// aliases from the registry, loads the versions they name and publishes them. A model whose versions fail to load is logged and left
// out of the router (its requests go where they name), not fatal: the server serves
// the rest.
func (m *Manager) Sync(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.removeHalfPlaced()
	stored, err := m.cfg.Store.Endpoints(ctx)
	if err != nil {
		return err
	}
	models, err := m.cfg.Store.Models(ctx)
	if err != nil {
		return err
	}
	for _, rm := range models {
		st := &state{held: map[string]bool{}}
		if b, ok := stored[rm.Name]; ok {
			if err := json.Unmarshal(b, &st.policy); err != nil {
				m.log.Warn("stored endpoint policy unreadable; ignored", "endpoint", rm.Name, "err", err)
			}
		}
		if st.aliases, err = m.cfg.Store.Aliases(ctx, rm.Name); err != nil {
			return err
		}
		var persist func(context.Context) error
		if m.freeze(ctx, rm.Name, st) {
			persist = func(ctx context.Context) error { return m.save(ctx, rm.Name, st.policy) }
		}
		if err := m.apply(ctx, rm.Name, nil, st, persist); err != nil {
			m.log.Warn("endpoint not routed", "endpoint", rm.Name, "err", err)
			continue
		}
	}
	return nil
}

// Serving is the version a request naming no version gets from the repository now.
func (m *Manager) Serving(ctx context.Context, model string) (string, error) {
	return m.cfg.Serving(ctx, model)
}

// Policy is the endpoint's live policy (a copy), nil when it has none.
func (m *Manager) Policy(model string) *router.Policy {
	return m.cfg.Routes.Get(model).Clone()
}

// StoredPolicy is the endpoint's routing policy as set (no aliases), nil when none.
func (m *Manager) StoredPolicy(model string) *router.Policy {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.endpoints[model]
	if st == nil {
		return nil
	}
	p := st.policy
	return p.Clone()
}

// SetAlias points alias at version once that version serves.
func (m *Manager) SetAlias(ctx context.Context, model, alias string, version int64) error {
	if _, err := m.cfg.Store.Version(ctx, model, version); err != nil {
		return err
	}
	return m.change(ctx, model, func(st *state) error {
		st.aliases[alias] = version
		return nil
	}, func(ctx context.Context) error { return m.cfg.Store.SetAlias(ctx, model, alias, version) })
}

// DeleteAlias removes alias; its version is let go unless something else names it.
func (m *Manager) DeleteAlias(ctx context.Context, model, alias string) error {
	return m.change(ctx, model, func(st *state) error {
		if _, ok := st.aliases[alias]; !ok {
			return fmt.Errorf("%w: model %q has no alias %q", registry.ErrNotFound, model, alias)
		}
		delete(st.aliases, alias)
		return nil
	}, func(ctx context.Context) error { return m.cfg.Store.DeleteAlias(ctx, model, alias) })
}

// SetPolicy replaces the endpoint's routing policy (its Aliases are the registry's and
// are ignored here); nil or an empty policy routes by the model's version policy.
func (m *Manager) SetPolicy(ctx context.Context, model string, p *router.Policy) error {
	if _, err := m.cfg.Store.Model(ctx, model); err != nil {
		return err
	}
	var np router.Policy
	if p != nil {
		np = *p.Clone()
	}
	np.Aliases = nil
	return m.change(ctx, model, func(st *state) error {
		st.policy = np
		return nil
	}, func(ctx context.Context) error { return m.save(ctx, model, np) })
}

// SetTraffic replaces the endpoint's split (version -> percent) and its shadow (""
// for none), keeping its sticky and match rules: a rollout's routing change.
func (m *Manager) SetTraffic(ctx context.Context, model string, weights map[string]int, shadow string, shadowPercent int) error {
	var np router.Policy
	return m.change(ctx, model, func(st *state) error {
		np = st.policy
		np.Arms = arms(weights)
		np.Shadow = nil
		if shadow != "" && shadowPercent > 0 {
			np.Shadow = &router.Shadow{Version: shadow, Percent: float64(shadowPercent)}
		}
		st.policy = np
		return nil
	}, func(ctx context.Context) error { return m.save(ctx, model, np) })
}

// arms orders a split newest version first, so that under sticky routing a canary that
// grows takes users from the stable version and never gives them back (router.Decide).
func arms(weights map[string]int) []router.Arm {
	out := make([]router.Arm, 0, len(weights))
	for _, v := range slices.Sorted(maps.Keys(weights)) {
		out = append(out, router.Arm{Version: v, Weight: weights[v]})
	}
	slices.SortStableFunc(out, func(a, b router.Arm) int {
		x, _ := strconv.ParseInt(a.Version, 10, 64)
		y, _ := strconv.ParseInt(b.Version, 10, 64)
		return int(y - x)
	})
	return out
}

// Load keeps version loaded for a rollout and returns once it serves. Traffic that
// names no version is first frozen on the version it goes to now, so loading a newer
// version never moves it.
func (m *Manager) Load(ctx context.Context, model, version string) error {
	n, err := strconv.ParseInt(version, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: version %q is not a number", registry.ErrInvalid, version)
	}
	if _, err := m.cfg.Store.Version(ctx, model, n); err != nil {
		return err
	}
	return m.change(ctx, model, func(st *state) error {
		st.held[version] = true
		return nil
	}, nil)
}

// Unload lets go of a version a rollout held; it stays if anything else names it.
func (m *Manager) Unload(model, version string) {
	err := m.change(context.Background(), model, func(st *state) error {
		delete(st.held, version)
		return nil
	}, nil)
	if err != nil {
		m.log.Warn("unload after rollout", "model", model, "version", version, "err", err)
	}
}

// freeze gives an endpoint that has no split but is about to have versions loaded for
// it one arm: the version requests naming none get now. Loading a version (an alias's,
// a rollout's) must never move those requests, and the repository's own choice, the
// newest ready version, would move them to it. persist tells whether to store it.
func (m *Manager) freeze(ctx context.Context, model string, st *state) (persist bool) {
	if len(st.policy.Arms) > 0 || len(st.versions(st.routed())) == 0 {
		return false
	}
	v, err := m.cfg.Serving(ctx, model)
	if err != nil {
		m.log.Info("endpoint not frozen: nothing serves it now", "endpoint", model, "err", err)
		return false
	}
	st.policy.Arms = []router.Arm{{Version: v, Weight: 100}}
	return true
}

func (m *Manager) save(ctx context.Context, model string, p router.Policy) error {
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	return m.cfg.Store.SaveEndpoint(ctx, model, b)
}

// change edits a copy of the endpoint's state and applies it: load what it names,
// persist (when persist is set), publish, let go of the rest. Nothing changes when
// editing, loading or persisting fails.
func (m *Manager) change(ctx context.Context, model string, edit func(*state) error, persist func(context.Context) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	old := m.endpoints[model]
	if old == nil {
		aliases, err := m.cfg.Store.Aliases(ctx, model)
		if err != nil {
			return err
		}
		old = &state{aliases: aliases, held: map[string]bool{}}
	}
	next := old.clone()
	if err := edit(next); err != nil {
		return err
	}
	if m.freeze(ctx, model, next) {
		return m.apply(ctx, model, old, next, persist, func(ctx context.Context) error { return m.save(ctx, model, next.policy) })
	}
	return m.apply(ctx, model, old, next, persist)
}

func (s *state) clone() *state {
	c := &state{policy: *s.policy.Clone(), aliases: maps.Clone(s.aliases), held: maps.Clone(s.held)}
	if c.aliases == nil {
		c.aliases = map[string]int64{}
	}
	return c
}

// apply moves the endpoint from old (nil at start) to next; m.mu is held.
func (m *Manager) apply(ctx context.Context, model string, old, next *state, persist ...func(context.Context) error) error {
	live := next.routed()
	if err := live.Validate(); err != nil {
		return fmt.Errorf("%w: endpoint %q: %v", registry.ErrInvalid, model, err)
	}
	need := next.versions(live)
	if err := m.pin(ctx, model, union(need, old.versionsOrNil())); err != nil {
		return err
	}
	for _, p := range persist {
		if p != nil {
			if err := p(ctx); err != nil {
				m.pin(context.WithoutCancel(ctx), model, old.versionsOrNil()) // back to what serves
				return err
			}
		}
	}
	if empty(live) {
		m.cfg.Routes.Delete(model)
	} else if err := m.cfg.Routes.Set(model, live); err != nil {
		return err // validated above; kept for the table's own checks
	}
	m.endpoints[model] = next
	if err := m.pin(context.WithoutCancel(ctx), model, need); err != nil {
		m.log.Warn("versions no longer routed stay loaded", "endpoint", model, "err", err)
	}
	return nil
}

// routed is the policy the router gets: the stored one with the registry's aliases.
func (s *state) routed() *router.Policy {
	p := s.policy.Clone()
	if len(s.aliases) > 0 {
		p.Aliases = make(map[string]string, len(s.aliases))
		for a, v := range s.aliases {
			p.Aliases[a] = strconv.FormatInt(v, 10)
		}
	}
	return p
}

// versions are the version numbers p routes to and the rollout holds.
func (s *state) versions(p *router.Policy) []int64 {
	var out []int64
	add := func(v string) {
		if t, ok := p.Resolve(v); ok {
			v = t
		}
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	for _, a := range p.Arms {
		if a.Weight > 0 {
			add(a.Version)
		}
	}
	for _, mt := range p.Matches {
		add(mt.Version)
	}
	if p.Shadow != nil && p.Shadow.Percent > 0 {
		add(p.Shadow.Version)
	}
	for _, v := range p.Aliases {
		add(v)
	}
	for v := range s.held {
		add(v)
	}
	slices.Sort(out)
	return out
}

func (s *state) versionsOrNil() []int64 {
	if s == nil {
		return nil
	}
	return s.versions(s.routed())
}

func empty(p *router.Policy) bool {
	return len(p.Arms) == 0 && len(p.Matches) == 0 && p.Shadow == nil && p.Sticky == nil && len(p.Aliases) == 0
}

func union(a, b []int64) []int64 {
	out := slices.Concat(a, b)
	slices.Sort(out)
	return slices.Compact(out)
}

// pin loads versions after checking that managed (pushed) versions' folders still
// hold what was registered.
func (m *Manager) pin(ctx context.Context, model string, versions []int64) error {
	for _, n := range versions {
		if err := m.verify(ctx, model, n); err != nil {
			return err
		}
	}
	return m.cfg.Loader.Pin(ctx, model, versions)
}
