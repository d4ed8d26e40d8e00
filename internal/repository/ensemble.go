package repository

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/internal/modelconfig"
)

// An ensemble (platform "ensemble") has no backend, no model file and no instances: its
// versions carry only the config, and core runs its steps on the step models' own
// schedulers. It still needs a version folder (which may be empty), as in Triton.

// isEnsemble reports whether a config describes an ensemble. A config with
// ensemble_scheduling but another platform is one too, so Validate names the mismatch
// instead of a backend complaining about a missing model file.
func isEnsemble(cfg *inference.ModelConfig) bool {
	return cfg.GetPlatform() == modelconfig.PlatformEnsemble || cfg.GetEnsembleScheduling() != nil
}

// openEnsemble completes one ensemble version: a copy of the config, validated.
func openEnsemble(name string, base *inference.ModelConfig) (*inference.ModelConfig, error) {
	cfg := cloneConfig(base)
	if err := modelconfig.Validate(cfg, name); err != nil {
		return nil, err
	}
	return cfg, nil
}

// ensembleSteps checks, before an ensemble's versions load, that its config is valid and
// that every step names a model of the repository. In explicit mode it loads the step
// models that are not loaded yet, as Triton loads an ensemble's composing models, and
// then checks that the version each step names is READY and that the step's tensor maps
// fit that version's inputs and outputs. In the other modes every model loads on its own
// (concurrently at start), so only the model folders are checked here, and a step model
// that is not ready fails the request.
//
// A step model is loaded only when the repository has no entry for it: loadFromDisk
// creates the entry before taking the model's lock, so two ensembles naming each other
// cannot wait on each other's lock.
func (r *Repository) ensembleSteps(ctx context.Context, name string, cfg *inference.ModelConfig) error {
	if err := modelconfig.Validate(cfg, name); err != nil {
		return err
	}
	var errs []error
	done := map[string]bool{}
	for i, st := range cfg.GetEnsembleScheduling().GetStep() {
		field := fmt.Sprintf("ensemble_scheduling.step[%d]", i)
		step := st.GetModelName()
		if !done[step] {
			done[step] = true
			if err := r.ensureStepModel(ctx, step); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", field, err))
				continue
			}
		}
		if r.opts.Mode != ModeExplicit {
			continue
		}
		stepCfg, err := r.readyConfig(step, st.GetModelVersion())
		if err != nil { // %v: the step model's not-found is the ensemble's load failure, not a 404
			errs = append(errs, fmt.Errorf("%s: %v", field, err))
			continue
		}
		errs = append(errs, checkStepIO(field, st, stepCfg, cfg)...)
	}
	return errors.Join(errs...)
}

// ensureStepModel checks that a step's model is in the repository and, in explicit mode,
// loads it when it is not loaded.
func (r *Repository) ensureStepModel(ctx context.Context, step string) error {
	if err := core.CheckModelName(step); err != nil {
		return err
	}
	r.mu.Lock()
	_, known := r.models[step]
	r.mu.Unlock()
	if known {
		if r.opts.Mode == ModeExplicit && !r.isEnsembleFolder(step) {
			// Another load may be under way (two ensembles loading with the same step):
			// wait for it, so the step's versions are there to check. A plain model's
			// load takes no other model's lock, so this cannot deadlock; a step that is
			// an ensemble is not waited for, as two ensembles may name each other.
			r.lockModel(step).ctl.Unlock()
		}
		return nil
	}
	if st, err := os.Stat(filepath.Join(r.opts.Root, step)); err != nil || !st.IsDir() {
		return fmt.Errorf("model '%s' is not in the model repository", step)
	}
	if r.opts.Mode != ModeExplicit {
		return nil
	}
	if err := r.loadFromDisk(ctx, step, nil); err != nil {
		return fmt.Errorf("composing model '%s' failed to load: %v", step, err)
	}
	return nil
}

// isEnsembleFolder reports whether the model folder's config.pbtxt describes an ensemble.
func (r *Repository) isEnsembleFolder(name string) bool {
	text, err := os.ReadFile(filepath.Join(r.opts.Root, name, "config.pbtxt"))
	if err != nil {
		return false
	}
	cfg, err := modelconfig.Parse(text)
	return err == nil && isEnsemble(cfg)
}

// readyConfig returns the config of the version a step runs (want <= 0: the newest
// READY one), or why there is none.
func (r *Repository) readyConfig(model string, want int64) (*inference.ModelConfig, error) {
	ver := ""
	if want > 0 {
		ver = strconv.FormatInt(want, 10)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.models[model]
	if m == nil {
		return nil, fmt.Errorf("model '%s' is not loaded", model)
	}
	v, err := m.pick(ver)
	if err != nil {
		return nil, err
	}
	return v.cfg, nil
}

// checkStepIO checks one step against the step model's config: the ensemble batches no
// more rows than the model takes, the map keys are its inputs and outputs, every
// required input is mapped, and where a mapped tensor is an ensemble input or output the
// data types agree.
func checkStepIO(field string, st *inference.ModelEnsembling_Step, step, ens *inference.ModelConfig) []error {
	var errs []error
	ensIn := map[string]inference.DataType{}
	for _, in := range ens.GetInput() {
		ensIn[in.GetName()] = in.GetDataType()
	}
	ensOut := map[string]inference.DataType{}
	for _, out := range ens.GetOutput() {
		ensOut[out.GetName()] = out.GetDataType()
	}
	model := st.GetModelName()
	if ens.GetMaxBatchSize() > step.GetMaxBatchSize() {
		errs = append(errs, fmt.Errorf("%s: the ensemble's max_batch_size %d exceeds the max_batch_size %d of model '%s'",
			field, ens.GetMaxBatchSize(), step.GetMaxBatchSize(), model))
	}
	inputs := map[string]inference.DataType{}
	for _, in := range step.GetInput() {
		inputs[in.GetName()] = in.GetDataType()
		if _, mapped := st.GetInputMap()[in.GetName()]; !mapped && !in.GetOptional() {
			errs = append(errs, fmt.Errorf("%s.input_map: input %q of model '%s' is not mapped to any tensor", field, in.GetName(), model))
		}
	}
	for _, k := range sortedMapKeys(st.GetInputMap()) {
		t := st.GetInputMap()[k]
		dt, ok := inputs[k]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("%s.input_map[%q]: model '%s' has no input %q (it has %s)", field, k, model, k, names(inputs)))
		case hasType(ensIn, t) && ensIn[t] != dt:
			errs = append(errs, fmt.Errorf("%s.input_map[%q]: ensemble input %q is %s but input %q of model '%s' is %s",
				field, k, t, ensIn[t], k, model, dt))
		}
	}
	outputs := map[string]inference.DataType{}
	for _, out := range step.GetOutput() {
		outputs[out.GetName()] = out.GetDataType()
	}
	for _, k := range sortedMapKeys(st.GetOutputMap()) {
		t := st.GetOutputMap()[k]
		dt, ok := outputs[k]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("%s.output_map[%q]: model '%s' has no output %q (it has %s)", field, k, model, k, names(outputs)))
		case hasType(ensOut, t) && ensOut[t] != dt:
			errs = append(errs, fmt.Errorf("%s.output_map[%q]: output %q of model '%s' is %s but ensemble output %q is %s",
				field, k, k, model, dt, t, ensOut[t]))
		}
	}
	return errs
}

func hasType(m map[string]inference.DataType, k string) bool {
	_, ok := m[k]
	return ok
}

func names(m map[string]inference.DataType) string {
	ks := sortedMapKeys(m)
	for i, k := range ks {
		ks[i] = strconv.Quote(k)
	}
	return strings.Join(ks, ", ")
}

func sortedMapKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
