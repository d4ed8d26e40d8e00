package modelconfig

import (
	"fmt"
	"slices"

	inference "github.com/ferryml/ferry/internal/proto"
)

// ensemble checks ensemble_scheduling: every step names a model, maps inputs
// and outputs, and runs, once the ensemble inputs are available, on tensors
// that exist; every ensemble output is written by some step and every
// ensemble input is read by one.
func (v *validator) ensemble() {
	es := v.cfg.GetEnsembleScheduling()
	if es == nil {
		return
	}
	if v.cfg.Optimization != nil {
		v.add("optimization", "must not be set for an ensemble")
	}
	if len(es.Step) == 0 {
		v.add("ensemble_scheduling.step", "must list at least one step")
		return
	}
	writers := v.stepOutputs(es.Step)
	ready := map[string]bool{}
	for _, in := range v.cfg.Input {
		ready[in.Name] = true
	}
	read := map[string]bool{}
	for i, st := range es.Step {
		for _, k := range sortedKeys(st.InputMap) {
			t := st.InputMap[k]
			read[t] = true
			if !ready[t] && writers[t] == nil {
				v.add(fmt.Sprintf("ensemble_scheduling.step[%d].input_map[%q]", i, k),
					"tensor %q is neither an ensemble input nor written by a step", t)
			}
		}
	}
	ran := run(es.Step, ready)
	for i, st := range es.Step {
		if !ran[i] && allKnown(st, ready, writers) {
			v.add(fmt.Sprintf("ensemble_scheduling.step[%d]", i), "never runs: its inputs depend on each other in a cycle")
		}
	}
	for i, in := range v.cfg.Input {
		if in.Name != "" && !read[in.Name] {
			v.add(tensorPath("input", i, in.Name), "not read by any ensemble step")
		}
	}
	for i, out := range v.cfg.Output {
		switch {
		case out.Name == "":
		case writers[out.Name] == nil && !ready[out.Name]:
			v.add(tensorPath("output", i, out.Name), "not written by any ensemble step")
		case !ready[out.Name]:
			v.add(tensorPath("output", i, out.Name), "written by a step that never runs")
		}
	}
}

// stepOutputs checks each step's own fields and returns, for every ensemble
// tensor a step writes, that step.
func (v *validator) stepOutputs(steps []*inference.ModelEnsembling_Step) map[string]*inference.ModelEnsembling_Step {
	writers := map[string]*inference.ModelEnsembling_Step{}
	for i, st := range steps {
		field := fmt.Sprintf("ensemble_scheduling.step[%d]", i)
		switch st.ModelName {
		case "":
			v.add(field+".model_name", "must be set")
		case v.cfg.Name:
			v.add(field+".model_name", "%q is the ensemble itself", st.ModelName)
		}
		if st.ModelVersion < -1 {
			v.add(field+".model_version", "must be >= 1, or -1 for the latest, got %d", st.ModelVersion)
		}
		if len(st.InputMap) == 0 {
			v.add(field+".input_map", "must be set")
		}
		if len(st.OutputMap) == 0 {
			v.add(field+".output_map", "must be set")
		}
		for _, k := range sortedKeys(st.OutputMap) {
			t := st.OutputMap[k]
			if prev, dup := writers[t]; dup {
				v.add(fmt.Sprintf("%s.output_map[%q]", field, k), "tensor %q is also written by the step running %q", t, prev.ModelName)
				continue
			}
			writers[t] = st
		}
	}
	return writers
}

// run marks, in ready, every tensor the steps can produce starting from what
// ready holds, and returns which steps ran.
func run(steps []*inference.ModelEnsembling_Step, ready map[string]bool) []bool {
	ran := make([]bool, len(steps))
	for progress := true; progress; {
		progress = false
		for i, st := range steps {
			if ran[i] || !allReady(st, ready) {
				continue
			}
			ran[i], progress = true, true
			for _, t := range st.OutputMap {
				ready[t] = true
			}
		}
	}
	return ran
}

func allReady(st *inference.ModelEnsembling_Step, ready map[string]bool) bool {
	for _, t := range st.InputMap {
		if !ready[t] {
			return false
		}
	}
	return true
}

// allKnown reports whether every tensor the step reads exists somewhere, so a
// step that still never ran is stuck in a cycle rather than missing a tensor.
func allKnown(st *inference.ModelEnsembling_Step, ready map[string]bool, writers map[string]*inference.ModelEnsembling_Step) bool {
	return !slices.ContainsFunc(sortedKeys(st.InputMap), func(k string) bool {
		t := st.InputMap[k]
		return !ready[t] && writers[t] == nil
	})
}
