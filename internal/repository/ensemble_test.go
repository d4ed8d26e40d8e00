package repository

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/internal/scheduler"
	"github.com/ferryml/ferry/internal/tensor"
)

// nopInstance is a fake execution instance; these tests only load models.
type nopInstance struct{}

func (nopInstance) Execute(context.Context, []*tensor.Tensor, []string) ([]*tensor.Tensor, error) {
	return nil, nil
}
func (nopInstance) Close() error { return nil }

// fakeBackends is one backend, "fake", whose model file is model.fake.
func fakeBackends() Backends {
	return Backends{"fake": {Platform: "fake_platform", DefaultFilename: "model.fake",
		Open: func(context.Context, string, *inference.ModelConfig) (scheduler.Instance, error) {
			return nopInstance{}, nil
		}}}
}

// adderConfig is the fake model "adder": INT32 A, B -> S.
const adderConfig = `backend: "fake"
input [ { name: "A" data_type: TYPE_INT32 dims: [ 2 ] }, { name: "B" data_type: TYPE_INT32 dims: [ 2 ] } ]
output [ { name: "S" data_type: TYPE_INT32 dims: [ 2 ] } ]
`

const ensIO = `platform: "ensemble"
input [ { name: "X" data_type: TYPE_INT32 dims: [ 2 ] }, { name: "Y" data_type: TYPE_INT32 dims: [ 2 ] } ]
output [ { name: "Z" data_type: TYPE_INT32 dims: [ 2 ] } ]
`

// ensembleRepo writes models (name -> config) to a fresh folder, each with version
// folder 1, holding model.fake for a plain model and nothing for an ensemble.
func ensembleRepo(t *testing.T, models map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, cfg := range models {
		writeTestModel(t, root, name, cfg)
	}
	return root
}

func writeTestModel(t *testing.T, root, name, cfg string) {
	t.Helper()
	vdir := filepath.Join(root, name, "1")
	if err := os.MkdirAll(vdir, 0o755); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(cfg, "ensemble") {
		if err := os.WriteFile(filepath.Join(vdir, "model.fake"), []byte("fake"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, name, "config.pbtxt"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
}

func startRepo(t *testing.T, root string, mode Mode, startup ...string) *Repository {
	t.Helper()
	r, err := New(Options{Root: root, Mode: mode, Startup: startup, Backends: fakeBackends()})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(t.Context()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// indexOf returns the state and reason of a model's last index entry.
func indexOf(r *Repository, model string) (string, string) {
	state, reason := "", ""
	for _, e := range r.Index(false) {
		if e.Name == model {
			state, reason = e.State, e.Reason
		}
	}
	return state, reason
}

// TestEnsembleLoadErrorsNameTheProblem: an ensemble whose steps form a cycle, read a
// tensor nothing writes or name a model the repository lacks is UNAVAILABLE, and the
// index reason names the step, the tensor and the model; a good ensemble is READY
// without a backend or a scheduler.
func TestEnsembleLoadErrorsNameTheProblem(t *testing.T) {
	step := func(model, in0, in1, out string) string {
		return `{ model_name: "` + model + `" model_version: -1 input_map [ { key: "A" value: "` + in0 + `" }, { key: "B" value: "` + in1 + `" } ] output_map { key: "S" value: "` + out + `" } }`
	}
	steps := func(s ...string) string { return "ensemble_scheduling { step [ " + strings.Join(s, ", ") + " ] }\n" }
	root := ensembleRepo(t, map[string]string{
		"adder":  adderConfig,
		"good":   ensIO + steps(step("adder", "X", "Y", "t"), step("adder", "t", "Y", "Z")),
		"cyclic": ensIO + steps(step("adder", "X", "u", "t"), step("adder", "t", "Y", "u"), step("adder", "t", "u", "Z")),
		"typo":   ensIO + steps(step("adder", "X", "Y", "t"), step("adder", "t", "YY", "Z")),
		"lost":   ensIO + steps(step("adder", "X", "Y", "t"), step("subtracter", "t", "Y", "Z")),
	})
	if err := os.MkdirAll(filepath.Join(root, "versionless"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "versionless", "config.pbtxt"), []byte(ensIO+steps(step("adder", "X", "Y", "Z"))), 0o644); err != nil {
		t.Fatal(err)
	}
	r := startRepo(t, root, ModeNone)

	for _, tc := range []struct{ model, want string }{
		{"cyclic", `ensemble_scheduling.step[0]: never runs: its inputs come from a cycle of steps: step[0] ("adder") reads "u" from step[1] ("adder"), which reads "t" from step[0] ("adder")`},
		{"cyclic", `ensemble_scheduling.step[2]: never runs: its inputs come from a cycle of steps: step[2] ("adder") reads "t" from step[0] ("adder"), which reads "u" from step[1] ("adder"), which reads "t" from step[0] ("adder")`},
		{"typo", `ensemble_scheduling.step[1].input_map["B"]: tensor "YY" (input "B" of model "adder") is neither an ensemble input nor written by any step`},
		{"lost", `ensemble_scheduling.step[1]: model 'subtracter' is not in the model repository`},
		{"versionless", `no version folder matches the version policy`},
	} {
		state, reason := indexOf(r, tc.model)
		if state != core.StateUnavailable || !strings.Contains(reason, tc.want) {
			t.Errorf("index %s: %s %q, want UNAVAILABLE with a reason containing %q", tc.model, state, reason, tc.want)
		}
	}
	l, err := r.Acquire(context.Background(), "good", "")
	if err != nil {
		t.Fatalf("Acquire(good): %v", err)
	}
	defer l.Release()
	if l.Scheduler != nil || l.Config.GetPlatform() != "ensemble" || l.Config.GetBackend() != "" || len(l.Config.GetInstanceGroup()) != 0 {
		t.Errorf("good: scheduler %v, platform %q, backend %q, instance groups %v; want an ensemble with no scheduler, backend or instances",
			l.Scheduler, l.Config.GetPlatform(), l.Config.GetBackend(), l.Config.GetInstanceGroup())
	}
}

// TestEnsembleExplicitLoadLoadsStepModels: in explicit mode loading an ensemble loads its
// step models, and a step whose tensor maps do not fit its model fails the load, naming
// the step, the map entry and the model.
func TestEnsembleExplicitLoadLoadsStepModels(t *testing.T) {
	root := ensembleRepo(t, map[string]string{
		"adder": adderConfig,
		"pair": ensIO + `ensemble_scheduling { step [ { model_name: "adder" model_version: -1
			input_map [ { key: "A" value: "X" }, { key: "B" value: "Y" } ] output_map { key: "S" value: "Z" } } ] }`,
		"misfit": "max_batch_size: 4\n" + strings.Replace(ensIO, `name: "Y" data_type: TYPE_INT32`, `name: "Y" data_type: TYPE_FP32`, 1) + `ensemble_scheduling { step [ { model_name: "adder" model_version: -1
			input_map [ { key: "A" value: "X" }, { key: "C" value: "Y" } ] output_map { key: "T" value: "Z" } } ] }`,
	})
	writeTestModel(t, root, "later", ensIO+`ensemble_scheduling { step [ { model_name: "adder" model_version: 2
			input_map [ { key: "A" value: "X" }, { key: "B" value: "Y" } ] output_map { key: "S" value: "Z" } } ] }`)
	r := startRepo(t, root, ModeExplicit, "pair")
	for _, model := range []string{"pair", "adder"} {
		if state, reason := indexOf(r, model); state != core.StateReady {
			t.Errorf("index %s: %s %q, want READY (loaded with pair)", model, state, reason)
		}
	}
	err := r.Load(t.Context(), "misfit", core.LoadOptions{})
	for _, want := range []string{
		`ensemble_scheduling.step[0].input_map: input "B" of model 'adder' is not mapped to any tensor`,
		`ensemble_scheduling.step[0].input_map["C"]: model 'adder' has no input "C" (it has "A", "B")`,
		`ensemble_scheduling.step[0].output_map["T"]: model 'adder' has no output "T" (it has "S")`,
		`ensemble_scheduling.step[0]: the ensemble's max_batch_size 4 exceeds the max_batch_size 0 of model 'adder'`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Load(misfit) = %v, want an error containing %q", err, want)
		}
	}
	err = r.Load(t.Context(), "later", core.LoadOptions{})
	want := "ensemble_scheduling.step[0]: Request for unknown model: 'adder' version 2 is not found"
	if err == nil || !strings.Contains(err.Error(), want) || errors.Is(err, core.ErrNotFound) {
		t.Errorf("Load(later) = %v, want a load failure (not a not-found) containing %q", err, want)
	}
}

// TestEnsembleRetriesWhenItsStepModelAppears: an ensemble that failed for a missing step
// model loads on the next poll once the model is there, though its own files did not
// change.
func TestEnsembleRetriesWhenItsStepModelAppears(t *testing.T) {
	root := ensembleRepo(t, map[string]string{
		"pair": ensIO + `ensemble_scheduling { step [ { model_name: "adder" model_version: -1
			input_map [ { key: "A" value: "X" }, { key: "B" value: "Y" } ] output_map { key: "S" value: "Z" } } ] }`,
	})
	r := startRepo(t, root, ModePoll)
	if state, reason := indexOf(r, "pair"); state != core.StateUnavailable || !strings.Contains(reason, "model 'adder' is not in the model repository") {
		t.Fatalf("index pair before adder exists: %s %q", state, reason)
	}
	writeTestModel(t, root, "adder", adderConfig)
	r.Poll(t.Context())
	for _, model := range []string{"pair", "adder"} {
		if state, reason := indexOf(r, model); state != core.StateReady {
			t.Errorf("index %s after the poll: %s %q, want READY", model, state, reason)
		}
	}
}
