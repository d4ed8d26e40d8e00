package modelconfig

import (
	"fmt"

	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/internal/tensor"
)

// sequenceTensors names the model tensors the sequence batcher supplies and consumes
// itself: control inputs and state inputs, and state outputs. Clients never send or
// receive them, so they are not the config's inputs and outputs (as in Triton).
func sequenceTensors(cfg *inference.ModelConfig) (inputs, outputs map[string]bool) {
	inputs, outputs = map[string]bool{}, map[string]bool{}
	sb := cfg.GetSequenceBatching()
	for _, ci := range sb.GetControlInput() {
		inputs[ci.GetName()] = true
	}
	for _, st := range sb.GetState() {
		inputs[st.GetInputName()] = true
		outputs[st.GetOutputName()] = true
	}
	return inputs, outputs
}

// checkSequenceTensors checks the control and state tensors against the model: each
// must exist with the type the config gives it, and a state with the shape of its dims.
func checkSequenceTensors(cfg *inference.ModelConfig, io IO) []error {
	sb := cfg.GetSequenceBatching()
	if sb == nil {
		return nil
	}
	inputs, outputs := byName(io.Inputs), byName(io.Outputs)
	var errs []error
	for i, ci := range sb.GetControlInput() {
		field := fmt.Sprintf("sequence_batching.control_input[%d]", i)
		for _, c := range ci.GetControl() {
			if want, ok := controlType(c); ok {
				errs = append(errs, sequenceTensor(field, ci.GetName(), inputs, "inputs", want, nil, 0)...)
			}
		}
	}
	for i, st := range sb.GetState() {
		field := fmt.Sprintf("sequence_batching.state[%d]", i)
		dt := DType(st.GetDataType())
		errs = append(errs, sequenceTensor(field+".input_name", st.GetInputName(), inputs, "inputs", dt, st.GetDims(), cfg.GetMaxBatchSize())...)
		errs = append(errs, sequenceTensor(field+".output_name", st.GetOutputName(), outputs, "outputs", dt, st.GetDims(), cfg.GetMaxBatchSize())...)
	}
	return errs
}

// controlType is the tensor type a control gives its input.
func controlType(c *inference.ModelSequenceBatching_Control) (tensor.DType, bool) {
	switch {
	case c.GetKind() == inference.ModelSequenceBatching_Control_CONTROL_SEQUENCE_CORRID:
		return DType(c.GetDataType()), true
	case len(c.GetInt32FalseTrue()) > 0:
		return tensor.Int32, true
	case len(c.GetFp32FalseTrue()) > 0:
		return tensor.FP32, true
	case len(c.GetBoolFalseTrue()) > 0:
		return tensor.Bool, true
	}
	return tensor.Invalid, false // Validate reports it
}

// sequenceTensor checks one control or state tensor; dims nil skips the shape check.
func sequenceTensor(field, name string, model map[string]TensorInfo, kind string, dt tensor.DType, dims []int64, mbs int32) []error {
	if name == "" {
		return nil // Validate reports it
	}
	t, ok := model[name]
	if !ok {
		return []error{fieldErr(field, "%q is not among the model's %s, which are %s", name, kind, names(model))}
	}
	if t.DType != dt {
		return []error{fieldErr(field, "%q is %v in the model, the config gives it %v", name, t.DType, dt)}
	}
	shape := t.Shape
	if mbs > 0 && len(shape) > 0 {
		shape = shape[1:]
	}
	if dims != nil && !fits(dims, nil, shape) {
		return []error{fieldErr(field, "%q: dims %v do not match the model's shape %v", name, tensor.Shape(dims), shape)}
	}
	return nil
}
