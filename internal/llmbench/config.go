package llmbench

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Config describes one benchmark run.
type Config struct {
	BaseURL  string // the server, e.g. http://127.0.0.1:8000 (the /v1 API is under it)
	Model    string // the model field of each request
	APIKey   string // sent as Authorization: Bearer when set
	Endpoint string // "chat" (/v1/chat/completions, the default) or "completions"

	NumPrompts  int     // requests in the measured run
	Concurrency int     // most requests in flight; 0 = no limit
	RequestRate float64 // requests/s; 0 or +Inf sends them all at once
	// Burstiness shapes the gaps between sends, Gamma(Burstiness, 1/(RequestRate·
	// Burstiness)): 1 (the default) is a Poisson process, lower is burstier.
	Burstiness float64

	InputLen  int // tokens of random words in each prompt, after the prefix
	OutputLen int // max_tokens of each request (with ignore_eos, the exact output length)
	PrefixLen int // tokens of one random prefix every prompt shares (prefix-cache runs)
	Seed      int64

	// Goodput holds service-level objectives by metric ("ttft", "tpot", "e2el"); a
	// completed request counts toward goodput when it meets all of them.
	Goodput map[string]time.Duration
	// Percentiles to report for each latency; default 50, 90, 99.
	Percentiles []float64
	// Warmup sends one request first, not counted; Run fails if it fails.
	Warmup bool
	// Timeout bounds each request, stream included; default 10 minutes.
	Timeout time.Duration
}

// goodputMetrics are the metrics an SLO may name, as vLLM's --goodput takes them.
var goodputMetrics = []string{"ttft", "tpot", "e2el"}

// withDefaults returns c with its zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.Endpoint == "" {
		c.Endpoint = "chat"
	}
	if c.Burstiness == 0 {
		c.Burstiness = 1
	}
	if c.RequestRate == 0 {
		c.RequestRate = math.Inf(1)
	}
	if len(c.Percentiles) == 0 {
		c.Percentiles = []float64{50, 90, 99}
	}
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Minute
	}
	// Either the server root or its /v1 will do.
	c.BaseURL = strings.TrimSuffix(strings.TrimSuffix(c.BaseURL, "/"), "/v1")
	return c
}

// Validate reports every field that cannot make a run, after defaults.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if u, err := url.Parse(c.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		add("base_url: want http(s)://host[:port], got %q", c.BaseURL)
	}
	if c.Model == "" {
		add("model: required")
	}
	if c.Endpoint != "chat" && c.Endpoint != "completions" {
		add("endpoint: want \"chat\" or \"completions\", got %q", c.Endpoint)
	}
	if c.NumPrompts <= 0 {
		add("num_prompts: must be > 0, got %d", c.NumPrompts)
	}
	if c.Concurrency < 0 {
		add("concurrency: must be >= 0, got %d", c.Concurrency)
	}
	if c.RequestRate < 0 || math.IsNaN(c.RequestRate) {
		add("request_rate: must be > 0 (or +Inf), got %g", c.RequestRate)
	}
	if c.Burstiness <= 0 || math.IsNaN(c.Burstiness) {
		add("burstiness: must be > 0, got %g", c.Burstiness)
	}
	if c.InputLen <= 0 || c.OutputLen <= 0 || c.PrefixLen < 0 {
		add("input_len and output_len must be > 0 and prefix_len >= 0, got %d, %d, %d", c.InputLen, c.OutputLen, c.PrefixLen)
	}
	for k, v := range c.Goodput {
		if !slices.Contains(goodputMetrics, k) {
			add("goodput: unknown metric %q (want one of %s)", k, strings.Join(goodputMetrics, ", "))
		} else if v <= 0 {
			add("goodput: %s must be > 0, got %v", k, v)
		}
	}
	for _, p := range c.Percentiles {
		if !(p >= 0 && p <= 100) {
			add("percentiles: %g is not within 0..100", p)
		}
	}
	if c.Timeout < 0 {
		add("timeout: must be >= 0, got %v", c.Timeout)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("llmbench: %w", err)
	}
	return nil
}

// path is the endpoint's URL path under BaseURL.
func (c Config) path() string {
	if c.Endpoint == "completions" {
		return "/v1/completions"
	}
	return "/v1/chat/completions"
}
