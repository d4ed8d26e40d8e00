package alert

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"strings"

	"github.com/ferryml/ferry/internal/duration"
)

// Duration is a time.Duration written "5m" (or a number of seconds) in JSON and YAML.
type Duration = duration.Duration

// Rule is one alerting rule: it fires when Metric of Model compares (Op) true with
// Threshold for at least For. Window is the span the value is measured over, for
// sources that take one (WindowSource), and the span of logged data a retrain gets
// before the alert started.
type Rule struct {
	Name        string            `json:"name"`
	Model       string            `json:"model"`
	Metric      string            `json:"metric"` // e.g. drift_share, drift:FEATURE, accuracy, error_rate, latency_p99
	Op          string            `json:"op"`     // ">", ">=", "<", "<="
	Threshold   float64           `json:"threshold"`
	Window      Duration          `json:"window,omitempty"`
	For         Duration          `json:"for,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	// AbortRollout calls Config.OnFire when the alert fires; Retrain calls the
	// Config.Retrain hook.
	AbortRollout bool `json:"abort_rollout,omitempty"`
	Retrain      bool `json:"retrain,omitempty"`
}

var labelName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// validate names every problem of r at once.
func (r *Rule) validate() error {
	var errs []error
	bad := func(f string, a ...any) { errs = append(errs, fmt.Errorf(f, a...)) }
	if r.Name == "" {
		bad("name: empty")
	}
	if r.Model == "" {
		bad("model: empty")
	}
	if r.Metric == "" {
		bad("metric: empty")
	}
	if _, ok := ops[r.Op]; !ok {
		bad("op: %q: want >, >=, < or <=", r.Op)
	}
	if math.IsNaN(r.Threshold) || math.IsInf(r.Threshold, 0) {
		bad("threshold: not a finite number")
	}
	for k := range r.Labels {
		if !labelName.MatchString(k) {
			bad("labels: %q is not a label name ([a-zA-Z_][a-zA-Z0-9_]*)", k)
		}
		if k == "alertname" || k == "model" {
			bad("labels: %q is set from the rule's name and model", k)
		}
	}
	return errors.Join(errs...)
}

var ops = map[string]func(v, t float64) bool{
	">":  func(v, t float64) bool { return v > t },
	">=": func(v, t float64) bool { return v >= t },
	"<":  func(v, t float64) bool { return v < t },
	"<=": func(v, t float64) bool { return v <= t },
}

// Webhook is a receiver of Alertmanager-format notifications.
type Webhook struct {
	Name string `json:"name,omitempty"` // the payload's receiver (default "webhook")
	URL  string `json:"url"`
	// Timeout bounds one attempt (default 10s); Retries are further attempts after a
	// network error, a 429 or a 5xx (default 3; -1: none), with backoff.
	Timeout Duration `json:"timeout,omitempty"`
	Retries int      `json:"retries,omitempty"`
	// RepeatInterval re-sends a still-firing alert this often; 0 sends it once.
	RepeatInterval Duration `json:"repeat_interval,omitempty"`
}

// Retrain is the retraining hook of rules with retrain set: a POST of the RetrainRequest
// to URL, and/or Command run with it on stdin (and FERRY_MODEL, FERRY_VERSION,
// FERRY_ALERT, FERRY_DATA_URI in its environment). Timeout bounds each (default 10m).
type Retrain struct {
	URL     string   `json:"url,omitempty"`
	Command []string `json:"command,omitempty"`
	Timeout Duration `json:"timeout,omitempty"`
}

func checkURL(field, s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%s: %q is not an http(s) URL", field, s)
	}
	return nil
}

// Validate names every problem of the configuration at once.
func (c *Config) Validate() error {
	var errs []error
	names := map[string]bool{}
	for i := range c.Rules {
		r := &c.Rules[i]
		if err := r.validate(); err != nil {
			errs = append(errs, fmt.Errorf("rules[%d] (%s): %w", i, r.Name, err))
		}
		if names[r.Name+"\x00"+r.Model] {
			errs = append(errs, fmt.Errorf("rules[%d]: another rule is named %q for model %q", i, r.Name, r.Model))
		}
		names[r.Name+"\x00"+r.Model] = true
		if r.Retrain && c.Retrain == nil {
			errs = append(errs, fmt.Errorf("rules[%d] (%s): retrain is set but no retrain hook is configured", i, r.Name))
		}
		if r.AbortRollout && c.OnFire == nil {
			errs = append(errs, fmt.Errorf("rules[%d] (%s): abort_rollout is set but no OnFire hook is given", i, r.Name))
		}
	}
	for i, w := range c.Webhooks {
		if err := checkURL(fmt.Sprintf("webhooks[%d].url", i), w.URL); err != nil {
			errs = append(errs, err)
		}
	}
	if c.Retrain != nil {
		if c.Retrain.URL == "" && len(c.Retrain.Command) == 0 {
			errs = append(errs, errors.New("retrain: neither url nor command is set"))
		}
		if c.Retrain.URL != "" {
			if err := checkURL("retrain.url", c.Retrain.URL); err != nil {
				errs = append(errs, err)
			}
		}
		if len(c.Retrain.Command) > 0 && strings.TrimSpace(c.Retrain.Command[0]) == "" {
			errs = append(errs, errors.New("retrain.command: the program is empty"))
		}
	}
	return errors.Join(errs...)
}
