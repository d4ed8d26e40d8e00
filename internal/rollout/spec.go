package rollout

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/ferryml/ferry/internal/duration"
)

// Rollout is what a user asks for: move Endpoint (a model name) from its Stable version
// to Candidate following Strategy, judging the candidate by Analysis.
type Rollout struct {
	Endpoint  string   `json:"endpoint"`
	Stable    string   `json:"stable"`
	Candidate string   `json:"candidate"`
	Strategy  Strategy `json:"strategy"`
	Analysis  Analysis `json:"analysis"`
	Limits    Limits   `json:"limits"`
}

// Strategy is an explicit list of steps or one preset (expanded by Normalize).
// FinalBake is how long the candidate serves everything, with analysis and alarms still
// active and the stable version still loaded, before the rollout succeeds.
type Strategy struct {
	Steps            []Step            `json:"steps,omitempty"`
	FinalBake        Duration          `json:"finalBake,omitempty"`
	Canary           *Canary           `json:"canary,omitempty"`
	Linear           *Linear           `json:"linear,omitempty"`
	BlueGreen        *BlueGreen        `json:"blueGreen,omitempty"`
	ShadowThenCanary *ShadowThenCanary `json:"shadowThenCanary,omitempty"`
}

// Step is one of its fields, as in Argo Rollouts: {"setWeight": 10}, {"bake": {"duration": "1m"}}.
type Step struct {
	SetWeight *SetWeight    `json:"setWeight,omitempty"`
	Pause     *PauseStep    `json:"pause,omitempty"`
	Bake      *Bake         `json:"bake,omitempty"`
	Analysis  *AnalysisStep `json:"analysis,omitempty"`
	Mirror    *MirrorStep   `json:"mirror,omitempty"`
	Gate      *Gate         `json:"gate,omitempty"`
}

// SetWeight sends Percent of the endpoint's traffic to the candidate. It reads from a
// bare number too ({"setWeight": 10}), as Argo users write it.
type SetWeight struct {
	Percent int `json:"percent"`
}

// UnmarshalJSON accepts 10 as well as {"percent": 10}.
func (w *SetWeight) UnmarshalJSON(b []byte) error {
	if n, err := strconv.Atoi(string(b)); err == nil {
		w.Percent = n
		return nil
	}
	type plain SetWeight
	return json.Unmarshal(b, (*plain)(w))
}

// PauseStep waits Duration, or until promoted when Duration is 0. No analysis runs.
type PauseStep struct {
	Duration Duration `json:"duration,omitempty"`
}

// Bake waits Duration with the analysis running: a pause the candidate must survive.
type Bake struct {
	Duration Duration `json:"duration"`
}

// AnalysisStep waits for one analysis run (Analysis.Count measurements, at least one).
type AnalysisStep struct{}

// MirrorStep copies Percent of the requests to the candidate for Duration (shadow
// traffic: the client sees only the stable answer), with the analysis running.
type MirrorStep struct {
	Percent  int      `json:"percent"`
	Duration Duration `json:"duration"`
}

// Gate asks a webhook whether to go on: a 2xx answer within Timeout passes; after
// Retries further failures the rollout aborts.
type Gate struct {
	URL     string   `json:"url"`
	Timeout Duration `json:"timeout,omitempty"`
	Retries int      `json:"retries,omitempty"`
}

// Analysis says how the candidate is judged, once per Interval, against the stable
// version over the same interval. The limits count measurements as Argo's do: the run
// fails when more than FailureLimit measurements failed (-1: never), is inconclusive
// past InconclusiveLimit and errs past ConsecutiveErrorLimit consecutive errors
// (nil: 4).
type Analysis struct {
	Interval              Duration `json:"interval,omitempty"`
	Metrics               []Metric `json:"metrics,omitempty"`
	FailureLimit          int      `json:"failureLimit,omitempty"`
	InconclusiveLimit     int      `json:"inconclusiveLimit,omitempty"`
	ConsecutiveErrorLimit *int     `json:"consecutiveErrorLimit,omitempty"`
	// MinSamples is the requests an interval needs; with fewer its measurement is
	// Inconclusive rather than a verdict on noise.
	MinSamples int `json:"minSamples,omitempty"`
	// Count is the measurements an analysis step waits for (0: one).
	Count int `json:"count,omitempty"`
}

// Metric names a measurement and its success condition: value <= Max and value >= Min.
// Relative compares to the stable version's value over the same interval instead
// (candidate p99 <= stable p99 * Max). A DryRun metric is measured and reported but
// never decides anything.
type Metric struct {
	Name     string   `json:"name"`
	Max      *float64 `json:"max,omitempty"`
	Min      *float64 `json:"min,omitempty"`
	Relative bool     `json:"relative,omitempty"`
	DryRun   bool     `json:"dryRun,omitempty"`
}

// Metric names.
const (
	ErrorRate  = "error_rate"
	LatencyP50 = "latency_p50"
	LatencyP90 = "latency_p90"
	LatencyP99 = "latency_p99"
	ShadowDiff = "shadow_diff"
)

// Limits are the rollout's clocks (0: the default in brackets). ProgressDeadline
// (600s) aborts a rollout stuck waiting on a load, an analysis step or a gate;
// AbortScaleDownDelay (30s) keeps an aborted candidate loaded for debugging;
// ScaleDownDelay (30s) keeps the old stable version loaded after success.
type Limits struct {
	ProgressDeadline    Duration `json:"progressDeadline,omitempty"`
	AbortScaleDownDelay Duration `json:"abortScaleDownDelay,omitempty"`
	ScaleDownDelay      Duration `json:"scaleDownDelay,omitempty"`
}

// Defaults, from Argo Rollouts.
const (
	DefaultInterval              = 10 * time.Second
	DefaultConsecutiveErrorLimit = 4
	DefaultProgressDeadline      = 600 * time.Second
	DefaultScaleDownDelay        = 30 * time.Second
)

// Duration is a time.Duration that reads "10s" or a number of seconds and writes "10s".
type Duration = duration.Duration

// Normalize returns r with its preset expanded into Steps and the defaults filled in:
// the form a rollout is validated, run and persisted in.
func (r Rollout) Normalize() (Rollout, error) {
	if err := r.Strategy.validatePresets(); err != nil {
		return r, err
	}
	steps, final, err := r.Strategy.expand()
	if err != nil {
		return r, err
	}
	r.Strategy = Strategy{Steps: steps, FinalBake: final}
	a := &r.Analysis
	a.Metrics = append([]Metric(nil), a.Metrics...)
	if a.Interval == 0 {
		a.Interval = Duration(DefaultInterval)
	}
	if a.ConsecutiveErrorLimit == nil {
		n := DefaultConsecutiveErrorLimit
		a.ConsecutiveErrorLimit = &n
	}
	defaultTo(&r.Limits.ProgressDeadline, DefaultProgressDeadline)
	defaultTo(&r.Limits.AbortScaleDownDelay, DefaultScaleDownDelay)
	defaultTo(&r.Limits.ScaleDownDelay, DefaultScaleDownDelay)
	return r, r.Validate()
}

func defaultTo(d *Duration, v time.Duration) {
	if *d == 0 {
		*d = Duration(v)
	}
}

// Validate reports every field that is wrong, each by its path.
func (r Rollout) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{field}, args...)...))
	}
	for _, f := range []struct{ field, v string }{{"endpoint", r.Endpoint}, {"stable", r.Stable}, {"candidate", r.Candidate}} {
		if f.v == "" {
			bad(f.field, "required")
		}
	}
	if r.Stable != "" && r.Stable == r.Candidate {
		bad("candidate", "must differ from stable %q", r.Stable)
	}
	errs = append(errs, r.Strategy.validate()...)
	errs = append(errs, r.Analysis.validate()...)
	for _, f := range []struct {
		field string
		d     Duration
	}{{"limits.progressDeadline", r.Limits.ProgressDeadline}, {"limits.abortScaleDownDelay", r.Limits.AbortScaleDownDelay},
		{"limits.scaleDownDelay", r.Limits.ScaleDownDelay}} {
		if err := nonNegative(f.field, f.d); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (s Strategy) validate() []error {
	var errs []error
	if err := s.validatePresets(); err != nil {
		errs = append(errs, err)
	}
	if s.FinalBake < 0 {
		errs = append(errs, fmt.Errorf("strategy.finalBake: must be >= 0, got %s", s.FinalBake.D()))
	}
	for i, st := range s.Steps {
		if err := st.validate(); err != nil {
			errs = append(errs, fmt.Errorf("strategy.steps[%d].%w", i, err))
		}
	}
	return errs
}

// validatePresets checks the choice between steps and one preset.
func (s Strategy) validatePresets() error {
	presets := 0
	for _, p := range []bool{s.Canary != nil, s.Linear != nil, s.BlueGreen != nil, s.ShadowThenCanary != nil} {
		if p {
			presets++
		}
	}
	switch {
	case presets > 1:
		return errors.New("strategy: name one preset (canary, linear, blueGreen, shadowThenCanary), got several")
	case presets == 1 && len(s.Steps) > 0:
		return errors.New("strategy: give steps or a preset, not both")
	case presets == 0 && len(s.Steps) == 0:
		return errors.New("strategy.steps: must not be empty")
	}
	return nil
}

func (st Step) validate() error {
	var kinds []string
	var err error
	if st.SetWeight != nil {
		kinds = append(kinds, "setWeight")
		err = percent("setWeight.percent", st.SetWeight.Percent)
	}
	if st.Pause != nil {
		kinds = append(kinds, "pause")
		err = nonNegative("pause.duration", st.Pause.Duration)
	}
	if st.Bake != nil {
		kinds = append(kinds, "bake")
		if st.Bake.Duration <= 0 {
			err = fmt.Errorf("bake.duration: must be > 0, got %s", st.Bake.Duration.D())
		}
	}
	if st.Analysis != nil {
		kinds = append(kinds, "analysis")
	}
	if st.Mirror != nil {
		kinds = append(kinds, "mirror")
		err = percent("mirror.percent", st.Mirror.Percent)
		if st.Mirror.Duration <= 0 {
			err = errors.Join(err, fmt.Errorf("mirror.duration: must be > 0, got %s", st.Mirror.Duration.D()))
		}
	}
	if st.Gate != nil {
		kinds = append(kinds, "gate")
		err = st.Gate.validate()
	}
	if len(kinds) != 1 {
		return fmt.Errorf("(step): must be exactly one of setWeight, pause, bake, analysis, mirror, gate; got %v", kinds)
	}
	return err
}

func (g Gate) validate() error {
	var errs []error
	if g.URL == "" {
		errs = append(errs, errors.New("gate.url: required"))
	}
	if g.Timeout < 0 {
		errs = append(errs, fmt.Errorf("gate.timeout: must be >= 0, got %s", g.Timeout.D()))
	}
	if g.Retries < 0 {
		errs = append(errs, fmt.Errorf("gate.retries: must be >= 0, got %d", g.Retries))
	}
	return errors.Join(errs...)
}

func (a Analysis) validate() []error {
	var errs []error
	if a.Interval <= 0 {
		errs = append(errs, fmt.Errorf("analysis.interval: must be > 0, got %s", a.Interval.D()))
	}
	for _, f := range []struct {
		field string
		n     int
	}{{"analysis.minSamples", a.MinSamples}, {"analysis.count", a.Count}, {"analysis.inconclusiveLimit", a.InconclusiveLimit}} {
		if f.n < 0 {
			errs = append(errs, fmt.Errorf("%s: must be >= 0, got %d", f.field, f.n))
		}
	}
	if a.FailureLimit < -1 {
		errs = append(errs, fmt.Errorf("analysis.failureLimit: must be >= -1, got %d", a.FailureLimit))
	}
	if a.ConsecutiveErrorLimit != nil && *a.ConsecutiveErrorLimit < 0 {
		errs = append(errs, fmt.Errorf("analysis.consecutiveErrorLimit: must be >= 0, got %d", *a.ConsecutiveErrorLimit))
	}
	for i, m := range a.Metrics {
		switch m.Name {
		case ErrorRate, LatencyP50, LatencyP90, LatencyP99, ShadowDiff:
		default:
			errs = append(errs, fmt.Errorf("analysis.metrics[%d].name: unknown metric %q (want error_rate, latency_p50, latency_p90, latency_p99 or shadow_diff)", i, m.Name))
		}
		if m.Max == nil && m.Min == nil {
			errs = append(errs, fmt.Errorf("analysis.metrics[%d]: needs max or min", i))
		}
		if m.Relative && m.Name == ShadowDiff {
			errs = append(errs, fmt.Errorf("analysis.metrics[%d].relative: shadow_diff has no stable value to compare to", i))
		}
	}
	return errs
}

func percent(field string, p int) error {
	if p < 0 || p > 100 {
		return fmt.Errorf("%s: must be 0..100, got %d", field, p)
	}
	return nil
}

func nonNegative(field string, d Duration) error {
	if d < 0 {
		return fmt.Errorf("%s: must be >= 0, got %s", field, d.D())
	}
	return nil
}
