package alert

import (
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// FuzzConfig: any YAML either fails to decode, fails Validate with a message, or
// builds an engine; nothing panics.
func FuzzConfig(f *testing.F) {
	for _, s := range []string{
		"rules: [{name: a, model: m, metric: error_rate, op: '>', threshold: 0.1, for: 5m, window: 1m}]",
		"webhooks: [{url: 'http://x', timeout: 1s, retries: -1, repeat_interval: 1h}]",
		"retrain: {command: [sh, -c, 'cat'], timeout: 2s}",
		"interval: -1s",
		"rules: [{name: a, model: m, metric: x, op: '~', threshold: .nan}]",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var cfg Config
		if err := yaml.UnmarshalStrict(b, &cfg); err != nil {
			return
		}
		cfg.OnFire = nil
		e, err := New(cfg, &values{}, nil)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("an empty error")
			}
			return
		}
		e.evaluate(time.Unix(1_800_000_000, 0))
		_ = e.Alerts()
	})
}
