package modelconfig

import (
	"cmp"
	"fmt"
	"maps"
	"path/filepath"
	"slices"

	"github.com/ferryml/ferry/internal/inference"
)

// ParamAdaptiveBatching is the model config parameter that turns the dynamic batcher's
// adaptive queue delay off: "false" keeps Triton's semantics, where a batch short of full
// always waits out max_queue_delay_microseconds. Adaptive ("true") is the default.
const ParamAdaptiveBatching = "adaptive_batching"

// AdaptiveBatching reports whether cfg's dynamic batcher uses the adaptive queue delay.
func AdaptiveBatching(cfg *inference.ModelConfig) bool {
	v, _ := Param(cfg, ParamAdaptiveBatching)
	return v != "false"
}

func (v *validator) dynamicBatching() {
	if p, ok := Param(v.cfg, ParamAdaptiveBatching); ok && p != "true" && p != "false" {
		v.errs = append(v.errs, ParamError(ParamAdaptiveBatching, `must be "true" or "false", got %q`, p))
	}
	db := v.cfg.GetDynamicBatching()
	if db == nil {
		return
	}
	v.preferred("dynamic_batching.preferred_batch_size", db.PreferredBatchSize)
	levels := db.PriorityLevels
	if levels != 0 {
		if db.DefaultPriorityLevel < 1 || db.DefaultPriorityLevel > levels {
			v.add("dynamic_batching.default_priority_level", "must be in [1, %d] (priority_levels), got %d", levels, db.DefaultPriorityLevel)
		}
		for _, lvl := range sortedKeys(db.PriorityQueuePolicy) {
			if lvl < 1 || lvl > levels {
				v.add(fmt.Sprintf("dynamic_batching.priority_queue_policy[%d]", lvl), "priority level must be in [1, %d]", levels)
			}
		}
	}
	if !db.PreserveOrdering {
		return
	}
	if levels > 1 {
		v.add("dynamic_batching.preserve_ordering", "allows only one priority level, priority_levels is %d", levels)
	}
	policies := map[string]*inference.ModelQueuePolicy{"dynamic_batching.default_queue_policy": db.DefaultQueuePolicy}
	for lvl, p := range db.PriorityQueuePolicy {
		policies[fmt.Sprintf("dynamic_batching.priority_queue_policy[%d]", lvl)] = p
	}
	for _, field := range sortedKeys(policies) {
		p := policies[field]
		if p.GetDefaultTimeoutMicroseconds() != 0 && p.GetTimeoutAction() == inference.ModelQueuePolicy_DELAY {
			v.add(field+".timeout_action", "DELAY cannot be used with preserve_ordering")
		}
	}
}

// preferred checks preferred batch sizes: each in [1, max_batch_size], which
// rules them out for a model that does not batch.
func (v *validator) preferred(field string, sizes []int32) {
	mbs := v.cfg.MaxBatchSize
	if len(sizes) > 0 && mbs <= 0 {
		v.add(field, "needs max_batch_size > 0")
		return
	}
	for i, n := range sizes {
		switch {
		case n < 1:
			v.add(fmt.Sprintf("%s[%d]", field, i), "must be >= 1, got %d", n)
		case n > mbs:
			v.add(fmt.Sprintf("%s[%d]", field, i), "%d exceeds max_batch_size %d", n, mbs)
		}
	}
}

func (v *validator) sequenceBatching() {
	sb := v.cfg.GetSequenceBatching()
	if sb == nil {
		return
	}
	if v.cfg.GetResponseCache().GetEnable() {
		v.add("response_cache.enable", "cannot be used with sequence_batching")
	}
	v.controls(sb.ControlInput)
	if o := sb.GetOldest(); o != nil {
		v.preferred("sequence_batching.oldest.preferred_batch_size", o.PreferredBatchSize)
		if o.MaxCandidateSequences < 0 {
			v.add("sequence_batching.oldest.max_candidate_sequences", "must be >= 0, got %d", o.MaxCandidateSequences)
		}
	}
	if d := sb.GetDirect(); d != nil && !(d.MinimumSlotUtilization >= 0 && d.MinimumSlotUtilization <= 1) {
		v.add("sequence_batching.direct.minimum_slot_utilization", "must be in [0, 1], got %v", d.MinimumSlotUtilization)
	}
	for i, st := range sb.State {
		field := fmt.Sprintf("sequence_batching.state[%d]", i)
		if st.InputName == "" {
			v.add(field+".input_name", "must be set")
		}
		if st.OutputName == "" {
			v.add(field+".output_name", "must be set")
		}
		v.dataType(field+".data_type", st.DataType)
		v.dims(field+".dims", st.Dims)
	}
}

// controls checks sequence control inputs: named once each, every control
// kind at most once, START/END/READY with exactly one [false, true] pair,
// CORRID with an allowed data type and no pair.
func (v *validator) controls(inputs []*inference.ModelSequenceBatching_ControlInput) {
	names := map[string]int{}
	kinds := map[inference.ModelSequenceBatching_Control_Kind]string{}
	for i, ci := range inputs {
		field := fmt.Sprintf("sequence_batching.control_input[%d]", i)
		if ci.Name == "" {
			v.add(field+".name", "must be set")
		} else if j, dup := names[ci.Name]; dup {
			v.add(field+".name", "%q is also control_input[%d]", ci.Name, j)
		} else {
			names[ci.Name] = i
		}
		if len(ci.Control) == 0 {
			v.add(field+".control", "must list at least one control")
		}
		for j, c := range ci.Control {
			cf := fmt.Sprintf("%s.control[%d]", field, j)
			if prev, dup := kinds[c.Kind]; dup {
				v.add(cf+".kind", "%v is already given by %s", c.Kind, prev)
			}
			kinds[c.Kind] = field
			v.control(cf, c)
		}
	}
}

func (v *validator) control(field string, c *inference.ModelSequenceBatching_Control) {
	pairs := map[string]int{
		"int32_false_true": len(c.Int32FalseTrue),
		"fp32_false_true":  len(c.Fp32FalseTrue),
		"bool_false_true":  len(c.BoolFalseTrue),
	}
	var given []string
	for _, name := range sortedKeys(pairs) {
		if pairs[name] > 0 {
			given = append(given, name)
		}
	}
	switch c.Kind {
	case inference.ModelSequenceBatching_Control_CONTROL_SEQUENCE_CORRID:
		if len(given) > 0 {
			v.add(field, "CONTROL_SEQUENCE_CORRID takes data_type, not %s", given[0])
		}
		switch c.DataType {
		case inference.DataType_TYPE_UINT64, inference.DataType_TYPE_INT64, inference.DataType_TYPE_UINT32,
			inference.DataType_TYPE_INT32, inference.DataType_TYPE_STRING:
		default:
			v.add(field+".data_type", "must be TYPE_UINT64, TYPE_INT64, TYPE_UINT32, TYPE_INT32 or TYPE_STRING, got %v", c.DataType)
		}
	case inference.ModelSequenceBatching_Control_CONTROL_SEQUENCE_START,
		inference.ModelSequenceBatching_Control_CONTROL_SEQUENCE_END,
		inference.ModelSequenceBatching_Control_CONTROL_SEQUENCE_READY:
		switch {
		case len(given) != 1:
			v.add(field, "%v needs exactly one of int32_false_true, fp32_false_true, bool_false_true", c.Kind)
		case pairs[given[0]] != 2:
			v.add(field+"."+given[0], "must have exactly 2 entries [false, true], got %d", pairs[given[0]])
		}
	default:
		v.add(field+".kind", "unknown kind %d", int32(c.Kind))
	}
}

func (v *validator) warmup() {
	if len(v.cfg.ModelWarmup) > 0 && v.cfg.GetEnsembleScheduling() != nil {
		v.add("model_warmup", "must not be set for an ensemble")
		return
	}
	maxBatch := max(v.cfg.MaxBatchSize, 1)
	for i, w := range v.cfg.ModelWarmup {
		field := fmt.Sprintf("model_warmup[%d]", i)
		if w.Name == "" {
			v.add(field+".name", "must be set")
		}
		if w.BatchSize < 1 || int64(w.BatchSize) > int64(maxBatch) {
			v.add(field+".batch_size", "must be in [1, %d], got %d", maxBatch, w.BatchSize)
		}
		if len(w.Inputs) == 0 {
			v.add(field+".inputs", "must list at least one input")
		}
		for _, name := range sortedKeys(w.Inputs) {
			in := w.Inputs[name]
			f := fmt.Sprintf("%s.inputs[%q]", field, name)
			v.dataType(f+".data_type", in.GetDataType())
			for j, d := range in.GetDims() {
				if d < 1 {
					v.add(fmt.Sprintf("%s.dims[%d]", f, j), "must be >= 1 (warmup data has a fixed shape), got %d", d)
				}
			}
			switch src := in.GetInputDataType().(type) {
			case nil:
				v.add(f, "must set zero_data, random_data or input_data_file")
			case *inference.ModelWarmup_Input_InputDataFile:
				if !filepath.IsLocal(src.InputDataFile) {
					v.add(f+".input_data_file", "%q must be a relative path inside the model's warmup directory", src.InputDataFile)
				}
			}
		}
	}
}

func (v *validator) batchIO() {
	inputs, outputs := map[string]bool{}, map[string]bool{}
	for _, in := range v.cfg.Input {
		inputs[in.Name] = true
	}
	for _, out := range v.cfg.Output {
		outputs[out.Name] = true
	}
	for i, b := range v.cfg.BatchInput {
		field := fmt.Sprintf("batch_input[%d]", i)
		if !knownEnum(b.Kind) {
			v.add(field+".kind", "unknown kind %d", int32(b.Kind))
		}
		if len(b.TargetName) == 0 {
			v.add(field+".target_name", "must be set")
		}
		if b.DataType != inference.DataType_TYPE_INT32 && b.DataType != inference.DataType_TYPE_FP32 {
			v.add(field+".data_type", "must be TYPE_INT32 or TYPE_FP32, got %v", b.DataType)
		}
		v.sources(field, b.SourceInput, inputs)
	}
	for i, b := range v.cfg.BatchOutput {
		field := fmt.Sprintf("batch_output[%d]", i)
		if !knownEnum(b.Kind) {
			v.add(field+".kind", "unknown kind %d", int32(b.Kind))
		}
		v.sources(field, b.SourceInput, inputs)
		seen := map[string]bool{}
		for _, t := range b.TargetName {
			switch {
			case !outputs[t]:
				v.add(field+".target_name", "%q is not an output", t)
			case seen[t]:
				v.add(field+".target_name", "%q listed twice", t)
			}
			seen[t] = true
		}
	}
}

func (v *validator) sources(field string, src []string, inputs map[string]bool) {
	if len(src) != 1 {
		v.add(field+".source_input", "must name exactly 1 input, got %d", len(src))
	}
	for _, s := range src {
		if !inputs[s] {
			v.add(field+".source_input", "%q is not an input", s)
		}
	}
}

func sortedKeys[K cmp.Ordered, V any](m map[K]V) []K {
	return slices.Sorted(maps.Keys(m))
}
