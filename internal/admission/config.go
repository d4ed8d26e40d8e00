package admission

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
)

// Limits are one tenant's (or one key's) limits. A zero field is no limit.
type Limits struct {
	// RequestsPerSecond and ItemsPerSecond are token-bucket rates; a request takes one
	// request token and as many item tokens as it has batch rows.
	RequestsPerSecond float64 `json:"requests_per_second,omitempty"`
	ItemsPerSecond    float64 `json:"items_per_second,omitempty"`
	// RequestBurst and ItemBurst are the buckets' sizes; 0: one second's worth (at
	// least 1). A request with more items than ItemBurst can never run: it is refused.
	RequestBurst int `json:"request_burst,omitempty"`
	ItemBurst    int `json:"item_burst,omitempty"`
	// Concurrency bounds the requests in flight at once.
	Concurrency int `json:"concurrency,omitempty"`
	// DailyQuota and MonthlyQuota bound the requests per UTC calendar day and month.
	DailyQuota   int64 `json:"daily_quota,omitempty"`
	MonthlyQuota int64 `json:"monthly_quota,omitempty"`
}

// Config is the rate-limit and quota configuration: Default for every tenant without an
// entry of its own in Tenants (an entry replaces Default as a whole, so a tenant can be
// given fewer limits), and Keys for API keys (by key ID) limited on top of their tenant.
type Config struct {
	Default Limits            `json:"default"`
	Tenants map[string]Limits `json:"tenants,omitempty"`
	Keys    map[string]Limits `json:"keys,omitempty"`
}

// For returns the limits of tenant.
func (c *Config) For(tenant string) Limits {
	if l, ok := c.Tenants[tenant]; ok {
		return l
	}
	return c.Default
}

// Empty reports whether the config limits nothing at all.
func (c *Config) Empty() bool {
	if c.Default != (Limits{}) {
		return false
	}
	for _, m := range []map[string]Limits{c.Tenants, c.Keys} {
		for _, l := range m {
			if l != (Limits{}) {
				return false
			}
		}
	}
	return true
}

// DecodeConfig reads a JSON config strictly (unknown fields and trailing data are
// errors) and validates it.
func DecodeConfig(r io.Reader) (*Config, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	c := new(Config)
	if err := dec.Decode(c); err != nil {
		return nil, fmt.Errorf("rate limits: %w", err)
	}
	if dec.More() {
		return nil, errors.New("rate limits: trailing data after the JSON object")
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// ParseConfig is DecodeConfig of b.
func ParseConfig(b []byte) (*Config, error) { return DecodeConfig(bytes.NewReader(b)) }

// Validate reports every bad field at once, each named by its JSON path.
func (c *Config) Validate() error {
	errs := c.Default.validate("default")
	for _, m := range []struct {
		name string
		m    map[string]Limits
	}{{"tenants", c.Tenants}, {"keys", c.Keys}} {
		names := make([]string, 0, len(m.m))
		for k := range m.m {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			errs = append(errs, m.m[k].validate(fmt.Sprintf("%s[%q]", m.name, k))...)
		}
	}
	return errors.Join(errs...)
}

func (l Limits) validate(path string) []error {
	var errs []error
	rate := func(name string, v float64) {
		if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
			errs = append(errs, fmt.Errorf("%s.%s: must be a finite number >= 0 (0: no limit), got %v", path, name, v))
		}
	}
	whole := func(name string, v int64) {
		if v < 0 {
			errs = append(errs, fmt.Errorf("%s.%s: must be >= 0 (0: no limit), got %d", path, name, v))
		}
	}
	rate("requests_per_second", l.RequestsPerSecond)
	rate("items_per_second", l.ItemsPerSecond)
	whole("request_burst", int64(l.RequestBurst))
	whole("item_burst", int64(l.ItemBurst))
	whole("concurrency", int64(l.Concurrency))
	whole("daily_quota", l.DailyQuota)
	whole("monthly_quota", l.MonthlyQuota)
	if l.RequestBurst > 0 && l.RequestsPerSecond == 0 {
		errs = append(errs, fmt.Errorf("%s.request_burst: set without requests_per_second", path))
	}
	if l.ItemBurst > 0 && l.ItemsPerSecond == 0 {
		errs = append(errs, fmt.Errorf("%s.item_burst: set without items_per_second", path))
	}
	return errs
}
