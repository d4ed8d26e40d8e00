package modelconfig

import (
	"fmt"
	"slices"

	"github.com/ferryml/ferry/internal/inference"
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
	if v.cfg.GetResponseCache().GetEnable() {
		v.add("response_cache.enable", "is not supported for an ensemble; enable it on the step models")
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
					"tensor %q (input %q of model %q) is neither an ensemble input nor written by any step", t, k, st.ModelName)
			}
		}
	}
	ran := run(es.Step, ready)
	for i, st := range es.Step {
		if !ran[i] && allKnown(st, ready, writers) {
			v.add(fmt.Sprintf("ensemble_scheduling.step[%d]", i), "never runs: its inputs come from a cycle of steps: %s",
				cycleChain(es.Step, i, ready, writers))
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

// cycleChain describes why step i waits forever: it follows, from step i, the
// first tensor each step still waits for back to the step that writes it,
// until a step repeats, as `step[0] ("a") reads "B" from step[1] ("b"), which
// reads "A" from step[0] ("a")`.
func cycleChain(steps []*inference.ModelEnsembling_Step, i int, ready map[string]bool, writers map[string]*inference.ModelEnsembling_Step) string {
	index := make(map[*inference.ModelEnsembling_Step]int, len(steps))
	for j, st := range steps {
		index[st] = j
	}
	s := fmt.Sprintf("step[%d] (%q)", i, steps[i].ModelName)
	seen := map[int]bool{}
	for !seen[i] {
		seen[i] = true
		var waits string
		for _, k := range sortedKeys(steps[i].InputMap) {
			if t := steps[i].InputMap[k]; !ready[t] && writers[t] != nil {
				waits = t
				break
			}
		}
		if waits == "" {
			break // cannot happen for a step that never ran with every tensor known
		}
		i = index[writers[waits]]
		s += fmt.Sprintf(" reads %q from step[%d] (%q)", waits, i, steps[i].ModelName)
		if !seen[i] {
			s += ", which"
		}
	}
	return s
}
