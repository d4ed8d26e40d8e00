package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/ferryml/ferry/internal/llm/tokenizer"
)

// Config is the gateway's static configuration, read from YAML or JSON. Unknown
// fields are errors, and Validate reports every problem at once.
type Config struct {
	Upstreams []Upstream `json:"upstreams"`
	Routes    []Route    `json:"routes,omitempty"`
	Teams     []Team     `json:"teams,omitempty"`
	Keys      []Key      `json:"keys,omitempty"`
	// ScrapeInterval is how often Run reads upstream /metrics for least-busy routing
	// and resets budget periods; default 5s.
	ScrapeInterval Duration `json:"scrape_interval,omitempty"`
}

// Upstream kinds. All but KindNative speak the OpenAI wire; they differ in the
// metrics scraped for least-busy routing.
const (
	KindOpenAI   = "openai"
	KindVLLM     = "vllm"
	KindLlamaCPP = "llamacpp"
	KindOllama   = "ollama"
	KindNative   = "native"
)

// Upstream is one server (or the in-process native engine) that answers models.
type Upstream struct {
	Name      string `json:"name"`
	Kind      string `json:"kind"`
	BaseURL   string `json:"base_url,omitempty"`    // e.g. http://10.0.0.5:8000; the /v1/... paths are appended
	APIKeyEnv string `json:"api_key_env,omitempty"` // the environment variable holding the upstream's key
	// Models maps an alias clients use to the upstream's own model id.
	Models        map[string]string `json:"models"`
	ContextWindow int               `json:"context_window"`
	// Encoding is the tiktoken encoding used to count this upstream's tokens when it
	// reports no usage; default cl100k_base.
	Encoding       string   `json:"encoding,omitempty"`
	Prices         Prices   `json:"prices,omitempty"`
	Weight         float64  `json:"weight,omitempty"`          // a target's weight when the route gives none; default 1
	Timeout        Duration `json:"timeout,omitempty"`         // until the first Delta (a whole answer when not streaming); default 60s
	MaxConcurrency int      `json:"max_concurrency,omitempty"` // 0 = unlimited; a full upstream is skipped, never queued on
}

// Prices are per one million tokens, in the operator's currency.
type Prices struct {
	Input       float64 `json:"input,omitempty"`
	CachedInput float64 `json:"cached_input,omitempty"`
	Output      float64 `json:"output,omitempty"`
}

// Route strategies.
const (
	StrategyWeighted  = "weighted"
	StrategyLeastBusy = "least-busy"
)

// Route maps a model alias to targets.
type Route struct {
	Model     string   `json:"model"`
	Targets   []Target `json:"targets"`
	Strategy  string   `json:"strategy,omitempty"`  // weighted (default) or least-busy
	Fallbacks []string `json:"fallbacks,omitempty"` // other aliases, tried in order after this route's targets
	// Retries caps the extra attempts after the first (across targets and fallbacks);
	// 0 means every eligible target once.
	Retries      int      `json:"retries,omitempty"`
	AllowedFails int      `json:"allowed_fails,omitempty"` // failures within FailWindow that start a cooldown; default 3
	FailWindow   Duration `json:"fail_window,omitempty"`   // default 1m
	Cooldown     Duration `json:"cooldown,omitempty"`      // default 30s
}

// Target is one upstream serving a route.
type Target struct {
	Upstream string  `json:"upstream"`
	Model    string  `json:"model,omitempty"` // the upstream's model id; default its models map entry for the alias, else the alias
	Weight   float64 `json:"weight,omitempty"`
	Shadow   bool    `json:"shadow,omitempty"` // gets a copy; its answer is discarded and never reaches the caller
}

// Limits are a key's or a team's limits; zero means unlimited.
type Limits struct {
	RPM            int      `json:"rpm,omitempty"`
	TPM            int      `json:"tpm,omitempty"`
	MaxParallel    int      `json:"max_parallel,omitempty"`
	Budget         float64  `json:"budget,omitempty"`
	BudgetDuration Duration `json:"budget_duration,omitempty"` // 0: the budget never resets
}

// Team groups keys under shared limits and a shared budget.
type Team struct {
	Name   string   `json:"name"`
	Models []string `json:"models,omitempty"` // allow-list; empty allows all
	Limits
}

// Key is one API key (the Bearer secret a client presents).
type Key struct {
	Name   string   `json:"name"` // shown in Spend and metrics; the secret never is
	Key    string   `json:"key,omitempty"`
	KeyEnv string   `json:"key_env,omitempty"`
	Team   string   `json:"team,omitempty"`
	Models []string `json:"models,omitempty"`
	Limits
}

// Duration is a time.Duration written as "30s", "1h" or "30d" (days).
type Duration time.Duration

// ParseDuration parses Go durations and a whole-or-decimal number of days ("30d").
func ParseDuration(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseFloat(days, 64)
		if err != nil || n < 0 || n > 1e5 {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		return time.Duration(n * float64(24*time.Hour)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("invalid duration %q", s)
	}
	return d, nil
}

// UnmarshalJSON accepts a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string like \"30s\" or \"30d\", got %s", b)
	}
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes the duration as Go does.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// Load reads and validates a config file.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("gateway config: %w", err)
	}
	c, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("gateway config %s: %w", path, err)
	}
	return c, nil
}

// Parse decodes YAML or JSON strictly and validates it.
func Parse(b []byte) (*Config, error) {
	var c Config
	if err := yaml.UnmarshalStrict(b, &c); err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// Validate checks the config and joins every error it finds.
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	ups, upNames, keyNames := map[string]*Upstream{}, map[string]bool{}, map[string]bool{}
	for i := range c.Upstreams {
		u := &c.Upstreams[i]
		p := fmt.Sprintf("upstreams[%d]", i)
		if unique(p+".name", "upstream", u.Name, upNames, add) {
			ups[u.Name] = u
		}
		validateUpstream(p, u, add)
	}
	routes := map[string]bool{}
	for i := range c.Routes {
		r := &c.Routes[i]
		p := fmt.Sprintf("routes[%d]", i)
		unique(p+".model", "route", r.Model, routes, add)
		validateRoute(p, r, ups, add)
	}
	for i, r := range c.Routes {
		for j, f := range r.Fallbacks {
			if !routes[f] && servedBy(c.Upstreams, f) != 1 {
				add("routes[%d].fallbacks[%d]: %q is neither a route nor served by exactly one upstream", i, j, f)
			}
			if f == r.Model {
				add("routes[%d].fallbacks[%d]: a route cannot fall back to itself", i, j)
			}
		}
	}
	teams := map[string]bool{}
	for i, t := range c.Teams {
		p := fmt.Sprintf("teams[%d]", i)
		unique(p+".name", "team", t.Name, teams, add)
		validateLimits(p, t.Limits, add)
	}
	for i, k := range c.Keys {
		p := fmt.Sprintf("keys[%d]", i)
		unique(p+".name", "key name", k.Name, keyNames, add)
		if (k.Key == "") == (k.KeyEnv == "") {
			add("%s: exactly one of key and key_env is required", p)
		}
		if k.Team != "" && !teams[k.Team] {
			add("%s.team: unknown team %q", p, k.Team)
		}
		validateLimits(p, k.Limits, add)
	}
	if c.ScrapeInterval < 0 {
		add("scrape_interval: must be >= 0")
	}
	return errors.Join(errs...)
}

// unique reports a missing or repeated name at field, and whether the name is new
// (and now seen).
func unique(field, what, name string, seen map[string]bool, add func(string, ...any)) bool {
	p := field
	switch {
	case name == "":
		add("%s: required", p)
	case seen[name]:
		add("%s: duplicate %s %q", p, what, name)
	default:
		seen[name] = true
		return true
	}
	return false
}

func validateUpstream(p string, u *Upstream, add func(string, ...any)) {
	switch u.Kind {
	case KindOpenAI, KindVLLM, KindLlamaCPP, KindOllama:
		if pu, err := url.Parse(u.BaseURL); u.BaseURL == "" || err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			add("%s.base_url: an http(s) URL is required for kind %q, got %q", p, u.Kind, u.BaseURL)
		}
	case KindNative:
		if u.BaseURL != "" {
			add("%s.base_url: kind native calls the in-process engine and takes no base_url", p)
		}
	default:
		add("%s.kind: must be one of openai, vllm, llamacpp, ollama, native; got %q", p, u.Kind)
	}
	if len(u.Models) == 0 {
		add("%s.models: at least one alias: upstream model id is required", p)
	}
	for alias, id := range u.Models {
		if alias == "" || id == "" {
			add("%s.models: empty alias or model id (%q: %q)", p, alias, id)
		}
	}
	if u.ContextWindow <= 0 {
		add("%s.context_window: must be > 0 (it bounds the worst-case cost), got %d", p, u.ContextWindow)
	}
	if u.Encoding != "" {
		if _, err := tokenizer.Load(u.Encoding); err != nil {
			add("%s.encoding: %v", p, err)
		}
	}
	if u.Prices.Input < 0 || u.Prices.CachedInput < 0 || u.Prices.Output < 0 {
		add("%s.prices: must be >= 0", p)
	}
	if u.Weight < 0 || u.Timeout < 0 || u.MaxConcurrency < 0 {
		add("%s: weight, timeout and max_concurrency must be >= 0", p)
	}
}

func validateRoute(p string, r *Route, ups map[string]*Upstream, add func(string, ...any)) {
	switch r.Strategy {
	case "", StrategyWeighted, StrategyLeastBusy:
	default:
		add("%s.strategy: must be weighted or least-busy, got %q", p, r.Strategy)
	}
	primaries := 0
	for j, t := range r.Targets {
		tp := fmt.Sprintf("%s.targets[%d]", p, j)
		if ups[t.Upstream] == nil {
			add("%s.upstream: unknown upstream %q", tp, t.Upstream)
		}
		if t.Weight < 0 {
			add("%s.weight: must be >= 0", tp)
		}
		if !t.Shadow {
			primaries++
		}
	}
	if primaries == 0 {
		add("%s.targets: at least one target that is not a shadow is required", p)
	}
	if r.Retries < 0 || r.AllowedFails < 0 || r.FailWindow < 0 || r.Cooldown < 0 {
		add("%s: retries, allowed_fails, fail_window and cooldown must be >= 0", p)
	}
}

func validateLimits(p string, l Limits, add func(string, ...any)) {
	if l.RPM < 0 || l.TPM < 0 || l.MaxParallel < 0 || l.Budget < 0 || l.BudgetDuration < 0 {
		add("%s: rpm, tpm, max_parallel, budget and budget_duration must be >= 0", p)
	}
}

// servedBy counts the upstreams whose models map names alias.
func servedBy(ups []Upstream, alias string) int {
	n := 0
	for _, u := range ups {
		if _, ok := u.Models[alias]; ok {
			n++
		}
	}
	return n
}
