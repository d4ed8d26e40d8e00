package gateway

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferryml/ferry/internal/llm"
	"github.com/ferryml/ferry/internal/llm/tokenizer"
)

// Options are the gateway's collaborators.
type Options struct {
	Logger *slog.Logger
	// Native answers upstreams of kind "native"; nil when the binary serves none.
	Native llm.Backend
	// Now is the wall clock for budgets, windows and cooldowns; default time.Now.
	Now func() time.Time
	// HTTPClient calls upstreams. Its Timeout should be zero: a stream may last long,
	// and each upstream's timeout (to the first Delta) is applied per attempt instead.
	HTTPClient *http.Client
	// Getenv reads api_key_env and key_env; default os.Getenv.
	Getenv func(string) string
}

// Gateway routes LLM requests to upstreams under keys, limits and budgets.
type Gateway struct {
	log         *slog.Logger
	now         func() time.Time
	client      *http.Client
	native      llm.Backend
	ups         map[string]*upstream
	routes      map[string]*route // by alias, including the implicit one-upstream routes
	keys        []*keyEntry
	ledger      *ledger
	m           *metrics
	scrapeEvery time.Duration
	shadows     sync.WaitGroup // shadow copies in flight; each ends within its upstream's timeout
}

var _ llm.Backend = (*Gateway)(nil)

type keyEntry struct {
	secret []byte
	name   string
	models map[string]bool // key's and team's allow-lists; nil allows all
	team   map[string]bool
	accts  []*account // the key's, then its team's
}

// upstream is one configured upstream with its runtime state.
type upstream struct {
	cfg      Upstream
	apiKey   string
	enc      tokenizer.Tokenizer
	timeout  time.Duration
	sem      chan struct{} // nil: unlimited
	inflight atomic.Int64
	load     atomic.Pointer[load] // last scrape; nil before the first or for kinds with no gauges
	// scrapeInterval is the gateway's, for judging a reading's age.
	scrapeInterval time.Duration
}

// New builds a gateway from a validated config. It starts nothing: Run does the
// background work.
func New(cfg *Config, opts Options) (*Gateway, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("gateway config: %w", err)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Transport: &http.Transport{
			Proxy: http.ProxyFromEnvironment, MaxIdleConnsPerHost: 256, IdleConnTimeout: 90 * time.Second,
			ResponseHeaderTimeout: 10 * time.Minute,
		}}
	}
	g := &Gateway{log: opts.Logger, now: opts.Now, client: opts.HTTPClient, native: opts.Native,
		ups: map[string]*upstream{}, routes: map[string]*route{}, ledger: newLedger(opts.Now), m: newMetrics(),
		scrapeEvery: time.Duration(cfg.ScrapeInterval)}
	if g.scrapeEvery == 0 {
		g.scrapeEvery = 5 * time.Second
	}
	var errs []error
	for _, uc := range cfg.Upstreams {
		u, err := newUpstream(uc, opts.Getenv)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if uc.Kind == KindNative && opts.Native == nil {
			errs = append(errs, fmt.Errorf("upstream %s: kind native needs Options.Native", uc.Name))
		}
		u.scrapeInterval = g.scrapeEvery
		g.ups[uc.Name] = u
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	g.buildRoutes(cfg)
	if err := g.buildKeys(cfg, opts.Getenv); err != nil {
		return nil, err
	}
	return g, nil
}

func newUpstream(uc Upstream, getenv func(string) string) (*upstream, error) {
	if uc.Encoding == "" {
		uc.Encoding = "cl100k_base"
	}
	enc, err := tokenizer.Load(uc.Encoding)
	if err != nil {
		return nil, fmt.Errorf("upstream %s: %w", uc.Name, err)
	}
	u := &upstream{cfg: uc, enc: enc, timeout: time.Duration(uc.Timeout)}
	if u.timeout == 0 {
		u.timeout = 60 * time.Second
	}
	if uc.APIKeyEnv != "" {
		if u.apiKey = getenv(uc.APIKeyEnv); u.apiKey == "" {
			return nil, fmt.Errorf("upstream %s: api_key_env %s is empty or unset", uc.Name, uc.APIKeyEnv)
		}
	}
	if uc.MaxConcurrency > 0 {
		u.sem = make(chan struct{}, uc.MaxConcurrency)
	}
	return u, nil
}

func (g *Gateway) buildKeys(cfg *Config, getenv func(string) string) error {
	teams := map[string]*account{}
	teamModels := map[string]map[string]bool{}
	for _, t := range cfg.Teams {
		teams[t.Name] = g.ledger.add("team", t.Name, "", t.Limits)
		teamModels[t.Name] = set(t.Models)
	}
	var errs []error
	for _, k := range cfg.Keys {
		secret := k.Key
		if k.KeyEnv != "" {
			if secret = getenv(k.KeyEnv); secret == "" {
				errs = append(errs, fmt.Errorf("key %s: key_env %s is empty or unset", k.Name, k.KeyEnv))
				continue
			}
		}
		e := &keyEntry{secret: []byte(secret), name: k.Name, models: set(k.Models), team: teamModels[k.Team]}
		e.accts = []*account{g.ledger.add("key", k.Name, k.Team, k.Limits)}
		if k.Team != "" {
			e.accts = append(e.accts, teams[k.Team])
		}
		g.keys = append(g.keys, e)
	}
	return errors.Join(errs...)
}

func set(names []string) map[string]bool {
	if len(names) == 0 {
		return nil
	}
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// principal finds the key presented, comparing against every configured key in
// constant time so the time taken says nothing about which secret came close. With
// no keys configured the gateway is open and nil is returned.
func (g *Gateway) principal(key string) (*keyEntry, error) {
	if len(g.keys) == 0 {
		return nil, nil
	}
	var found *keyEntry
	for _, k := range g.keys {
		if subtle.ConstantTimeCompare(k.secret, []byte(key)) == 1 {
			found = k
		}
	}
	if found == nil {
		return nil, reject("invalid_key", llm.InvalidKey())
	}
	return found, nil
}

// allowed reports whether the key (nil: open gateway) may use alias.
func (k *keyEntry) allowed(alias string) bool {
	return k == nil || ((k.models == nil || k.models[alias]) && (k.team == nil || k.team[alias]))
}

// metered reports whether the key or its team is limited in tokens or money, so
// that a request's prompt must be counted before it is admitted.
func (k *keyEntry) metered() bool {
	for _, a := range k.accounts() {
		if a.limits.Budget > 0 || a.limits.TPM > 0 {
			return true
		}
	}
	return false
}

func (k *keyEntry) accounts() []*account {
	if k == nil {
		return nil
	}
	return k.accts
}

// Models lists every alias the gateway routes, with the largest context window of
// its targets.
func (g *Gateway) Models(ctx context.Context) ([]llm.ModelInfo, error) {
	out := make([]llm.ModelInfo, 0, len(g.routes))
	for alias, r := range g.routes {
		info := llm.ModelInfo{ID: alias, OwnedBy: r.targets[0].up.cfg.Name}
		for _, t := range r.targets {
			info.ContextLength = max(info.ContextLength, t.up.cfg.ContextWindow)
		}
		if r.targets[0].up.cfg.Kind == KindNative {
			info.OwnedBy = "ferry"
		}
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Spend reports every key's and team's use in its current budget period.
func (g *Gateway) Spend() []Spend { return g.ledger.spend() }

// Collector is the gateway's metrics; register it once.
func (g *Gateway) Collector() prometheus.Collector { return g.m }

// Run scrapes upstream /metrics for least-busy routing and rolls budget periods,
// every scrape_interval, until ctx ends; then it waits for shadow copies in flight
// and returns nil.
func (g *Gateway) Run(ctx context.Context) error {
	t := time.NewTicker(g.scrapeEvery)
	defer t.Stop()
	for {
		g.scrape(ctx)
		g.ledger.resetPeriods()
		select {
		case <-ctx.Done():
			g.shadows.Wait()
			return nil
		case <-t.C:
		}
	}
}

// Close waits for shadow copies still in flight (each ends within its upstream's
// timeout) and closes idle upstream connections.
func (g *Gateway) Close() error {
	g.shadows.Wait()
	g.client.CloseIdleConnections()
	return nil
}

// rejected is a refusal by the gateway itself, with the reason counted in
// ferry_llm_gateway_rejected_total.
type rejected struct {
	reason string
	err    *llm.Error
}

func (r *rejected) Error() string { return r.err.Error() }
func (r *rejected) Unwrap() error { return r.err }

func reject(reason string, e *llm.Error) error { return &rejected{reason: reason, err: e} }

// clientError counts a refusal and returns the *llm.Error a client should see.
func (g *Gateway) clientError(err error) error {
	var r *rejected
	if errors.As(err, &r) {
		g.m.rejected.WithLabelValues(r.reason).Inc()
		return r.err
	}
	return err
}
