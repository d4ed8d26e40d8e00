package rollout

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestDecodeArgoStyle reads a rollout as a user writes it (the JSON that sigs.k8s.io/yaml
// makes of the YAML form): Argo's bare setWeight, durations as strings or seconds.
func TestDecodeArgoStyle(t *testing.T) {
	const in = `{"endpoint": "mlp", "stable": "1", "candidate": "2",
	  "strategy": {"steps": [{"setWeight": 10}, {"bake": {"duration": "1m"}}, {"setWeight": {"percent": 50}},
	    {"pause": {}}, {"analysis": {}}, {"mirror": {"percent": 5, "duration": 30}},
	    {"gate": {"url": "http://ci/ok", "timeout": "5s", "retries": 2}}], "finalBake": "2m"},
	  "analysis": {"interval": "15s", "minSamples": 50, "failureLimit": 1,
	    "metrics": [{"name": "latency_p99", "max": 1.2, "relative": true}, {"name": "error_rate", "max": 0.01, "dryRun": true}]},
	  "limits": {"progressDeadline": "10m"}}`
	var r Rollout
	dec := json.NewDecoder(strings.NewReader(in))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		t.Fatal(err)
	}
	n, err := r.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	steps := n.Strategy.Steps
	if steps[0].SetWeight.Percent != 10 || steps[2].SetWeight.Percent != 50 || steps[1].Bake.Duration.D() != time.Minute ||
		steps[5].Mirror.Duration.D() != 30*time.Second || steps[6].Gate.Timeout.D() != 5*time.Second || n.Strategy.FinalBake.D() != 2*time.Minute {
		t.Fatalf("steps decoded wrong: %+v", steps)
	}
	if *n.Analysis.ConsecutiveErrorLimit != 4 || n.Limits.AbortScaleDownDelay.D() != 30*time.Second || n.Limits.ProgressDeadline.D() != 10*time.Minute {
		t.Fatalf("defaults: %+v %+v", n.Analysis, n.Limits)
	}
	b, err := json.Marshal(n)
	if err != nil {
		t.Fatal(err)
	}
	var back Rollout
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, n) {
		t.Fatalf("round trip through %s: %v\n%+v", b, err, back)
	}
}

func TestValidateNamesTheField(t *testing.T) {
	base := Rollout{Endpoint: "mlp", Stable: "1", Candidate: "2", Strategy: Strategy{Steps: []Step{{SetWeight: &SetWeight{Percent: 100}}}}}
	for _, tc := range []struct {
		name   string
		change func(*Rollout)
		want   string
	}{
		{"weight", func(r *Rollout) { r.Strategy.Steps[0].SetWeight.Percent = -1 }, "strategy.steps[0].setWeight.percent: must be 0..100, got -1"},
		{"no steps", func(r *Rollout) { r.Strategy.Steps = nil }, "strategy.steps: must not be empty"},
		{"two kinds", func(r *Rollout) { r.Strategy.Steps[0].Pause = &PauseStep{} },
			"strategy.steps[0].(step): must be exactly one of setWeight, pause, bake, analysis, mirror, gate; got [setWeight pause]"},
		{"negative pause", func(r *Rollout) { r.Strategy.Steps = []Step{{Pause: &PauseStep{Duration: -1}}} }, "strategy.steps[0].pause.duration: must be >= 0, got -1ns"},
		{"bake zero", func(r *Rollout) { r.Strategy.Steps = []Step{{Bake: &Bake{}}} }, "strategy.steps[0].bake.duration: must be > 0, got 0s"},
		{"gate", func(r *Rollout) { r.Strategy.Steps = []Step{{Gate: &Gate{Retries: -1}}} }, "strategy.steps[0].gate.url: required\ngate.retries: must be >= 0, got -1"},
		{"interval", func(r *Rollout) { r.Analysis.Interval = -Duration(time.Second) }, "analysis.interval: must be > 0, got -1s"},
		{"metric", func(r *Rollout) { r.Analysis.Metrics = []Metric{{Name: "accuracy", Max: ptr(1.0)}} },
			`analysis.metrics[0].name: unknown metric "accuracy" (want error_rate, latency_p50, latency_p90, latency_p99 or shadow_diff)`},
		{"metric bound", func(r *Rollout) { r.Analysis.Metrics = []Metric{{Name: ErrorRate}} }, "analysis.metrics[0]: needs max or min"},
		{"same versions", func(r *Rollout) { r.Candidate = "1" }, `candidate: must differ from stable "1"`},
		{"missing", func(r *Rollout) { r.Endpoint = "" }, "endpoint: required"},
		{"two presets", func(r *Rollout) {
			r.Strategy = Strategy{Canary: &Canary{Steps: []int{50}, Interval: 1}, Linear: &Linear{Step: 10, Interval: 1}}
		}, "strategy: name one preset (canary, linear, blueGreen, shadowThenCanary), got several"},
		{"canary falls", func(r *Rollout) { r.Strategy = Strategy{Canary: &Canary{Steps: []int{50, 10}, Interval: 1}} },
			"strategy.canary.steps[1]: weights must rise within 1..100, got 10 after 50"},
		{"limits", func(r *Rollout) { r.Limits.ScaleDownDelay = -Duration(time.Second) }, "limits.scaleDownDelay: must be >= 0, got -1s"},
	} {
		r := base
		r.Strategy.Steps = []Step{{SetWeight: &SetWeight{Percent: 100}}}
		tc.change(&r)
		_, err := r.Normalize()
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestPresetsExpand(t *testing.T) {
	m := Duration(time.Minute)
	sw := func(p int) Step { return Step{SetWeight: &SetWeight{Percent: p}} }
	bake := Step{Bake: &Bake{Duration: m}}
	for _, tc := range []struct {
		name      string
		s         Strategy
		want      []Step
		wantFinal Duration
	}{
		{"canary", Strategy{Canary: &Canary{Steps: []int{10, 50, 100}, Interval: m}}, []Step{sw(10), bake, sw(50), bake, sw(100), bake}, 0},
		{"linear", Strategy{Linear: &Linear{Step: 40, Interval: m}}, []Step{sw(40), bake, sw(80), bake, sw(100), bake}, 0},
		{"blueGreen", Strategy{BlueGreen: &BlueGreen{Bake: m, RollbackWindow: 5 * m}}, []Step{sw(100), bake}, 5 * m},
		{"shadowThenCanary", Strategy{ShadowThenCanary: &ShadowThenCanary{MirrorPercent: 10, MirrorDuration: m,
			Canary: Canary{Steps: []int{100}, Interval: m}}}, []Step{{Mirror: &MirrorStep{Percent: 10, Duration: m}}, sw(100), bake}, 0},
	} {
		steps, final, err := tc.s.expand()
		if err != nil || !reflect.DeepEqual(steps, tc.want) || final != tc.wantFinal {
			t.Errorf("%s: %v, final %s, err %v", tc.name, stepKinds(steps), final.D(), err)
		}
	}
}

func stepKinds(steps []Step) []string {
	var out []string
	for _, s := range steps {
		out = append(out, s.kind())
	}
	return out
}
