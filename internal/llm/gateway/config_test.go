package gateway

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const goodConfig = `
scrape_interval: 2s
upstreams:
  - name: gpu
    kind: vllm
    base_url: http://10.0.0.5:8000
    api_key_env: GPU_KEY
    context_window: 8192
    encoding: cl100k_base
    models: {llama: meta-llama/Llama-3.1-8B-Instruct}
    prices: {input: 0.2, cached_input: 0.05, output: 0.6}
    timeout: 30s
    max_concurrency: 64
  - name: local
    kind: native
    context_window: 1024
    models: {tiny: tiny-gpt2}
routes:
  - model: llama
    strategy: least-busy
    targets: [{upstream: gpu, weight: 2}, {upstream: local, model: tiny-gpt2, shadow: true}]
    fallbacks: [tiny]
    allowed_fails: 2
    fail_window: 30s
    cooldown: 1m
teams:
  - {name: research, budget: 100, budget_duration: 30d, tpm: 100000}
keys:
  - {name: alice, key: sk-alice, team: research, models: [llama], rpm: 60, max_parallel: 4, budget: 10, budget_duration: 1h}
`

func TestParseGoodConfig(t *testing.T) {
	c, err := Parse([]byte(goodConfig))
	if err != nil {
		t.Fatal(err)
	}
	if got := time.Duration(c.Teams[0].BudgetDuration); got != 30*24*time.Hour {
		t.Fatalf("budget_duration 30d = %v", got)
	}
	if c.Keys[0].RPM != 60 || c.Keys[0].Budget != 10 || time.Duration(c.Routes[0].Cooldown) != time.Minute {
		t.Fatalf("inline limits or durations not read: %+v %+v", c.Keys[0], c.Routes[0])
	}
	path := filepath.Join(t.TempDir(), "gateway.yaml")
	if err := os.WriteFile(path, []byte(goodConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err != nil {
		t.Fatalf("Load: %v", err)
	}
	// The config as JSON is the same config.
	if _, err := Parse([]byte(`{"upstreams":[{"name":"a","kind":"openai","base_url":"https://api.openai.com","context_window":128000,"models":{"gpt":"gpt-4o"}}]}`)); err != nil {
		t.Fatalf("JSON config: %v", err)
	}
}

func TestParseReportsEveryError(t *testing.T) {
	for _, tc := range []struct {
		name, config string
		want         []string
	}{
		{"unknown field", "upstreams: []\nupstream: []\n", []string{`unknown field "upstream"`}},
		{"bad duration", "scrape_interval: 5 minutes\n", []string{`invalid duration "5 minutes"`}},
		{"number as duration", "scrape_interval: 5\n", []string{"duration must be a string"}},
		{"everything wrong at once", `
upstreams:
  - {name: a, kind: tgi, context_window: 0}
  - {name: a, kind: vllm, base_url: "ftp://x", models: {m: ""}, context_window: 10, encoding: nope, prices: {input: -1}}
  - {name: n, kind: native, base_url: "http://x", models: {n: n}, context_window: 10}
routes:
  - {model: r, targets: [{upstream: ghost, shadow: true}, {upstream: a, shadow: true}], strategy: fastest, fallbacks: [nowhere, r]}
  - {model: r, targets: [{upstream: a, weight: -1}]}
teams: [{name: t}, {name: t, rpm: -1}]
keys:
  - {name: k, team: nobody}
  - {name: k, key: x, key_env: Y}
`, []string{
			`upstreams[0].kind: must be one of openai, vllm, llamacpp, ollama, native; got "tgi"`,
			"upstreams[0].models: at least one alias",
			"upstreams[0].context_window: must be > 0",
			`upstreams[1].name: duplicate upstream "a"`,
			`upstreams[1].base_url: an http(s) URL is required for kind "vllm", got "ftp://x"`,
			`upstreams[1].models: empty alias or model id ("m": "")`,
			`upstreams[1].encoding: tokenizer: unknown encoding "nope"`,
			"upstreams[1].prices: must be >= 0",
			"upstreams[2].base_url: kind native calls the in-process engine and takes no base_url",
			`routes[0].strategy: must be weighted or least-busy, got "fastest"`,
			`routes[0].targets[0].upstream: unknown upstream "ghost"`,
			"routes[0].targets: at least one target that is not a shadow is required",
			`routes[1].model: duplicate route "r"`,
			"routes[1].targets[0].weight: must be >= 0",
			`routes[0].fallbacks[0]: "nowhere" is neither a route nor served by exactly one upstream`,
			"routes[0].fallbacks[1]: a route cannot fall back to itself",
			`teams[1].name: duplicate team "t"`,
			"teams[1]: rpm, tpm, max_parallel, budget and budget_duration must be >= 0",
			"keys[0]: exactly one of key and key_env is required",
			`keys[0].team: unknown team "nobody"`,
			`keys[1].name: duplicate key name "k"`,
			"keys[1]: exactly one of key and key_env is required",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.config))
			if err == nil {
				t.Fatalf("Parse(%s) = nil error, want %q", tc.config, tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Parse error:\n%v\nlacks %q", err, w)
				}
			}
		})
	}
}

func TestNewChecksTheEnvironment(t *testing.T) {
	c, err := Parse([]byte(goodConfig))
	if err != nil {
		t.Fatal(err)
	}
	_, err = New(c, Options{Getenv: func(string) string { return "" }})
	for _, w := range []string{"upstream gpu: api_key_env GPU_KEY is empty or unset", "upstream local: kind native needs Options.Native"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("New err = %v, want %q", err, w)
		}
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"30s": 30 * time.Second, "1h": time.Hour, "30d": 720 * time.Hour, "0.5d": 12 * time.Hour} {
		if got, err := ParseDuration(in); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "d", "-1d", "-5s", "1y", "1e9d"} {
		if got, err := ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) = %v, want an error", in, got)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(goodConfig))
	f.Add([]byte(`{"upstreams":[{"name":"a","kind":"openai","base_url":"http://x","context_window":1,"models":{"m":"n"}}]}`))
	f.Add([]byte("keys: [{name: k, key: x, budget_duration: 1.5d}]"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse(b)
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted a config Validate rejects: %v", err)
		}
	})
}
