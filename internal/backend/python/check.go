package python

import (
	"fmt"

	"github.com/ferryml/ferry/internal/tensor"
)

// ModelError is an error model.py gave for one request: an exception execute() raised,
// or an InferenceResponse carrying a pb_utils.TritonError.
type ModelError struct {
	Model, Instance string
	Code            string // the TritonError code name: "INTERNAL", "INVALID_ARG", ...
	Message         string
}

func (e *ModelError) Error() string {
	return fmt.Sprintf("python model '%s' (instance %s): %s", e.Model, e.Instance, e.Message)
}

// InvalidInput reports a TritonError with code INVALID_ARG, which the server answers as
// a bad request (HTTP 400) rather than a failed inference.
func (e *ModelError) InvalidInput() bool { return e.Code == "INVALID_ARG" }

// ProcessError reports a child process that exited, or broke the protocol, while it
// served requests: every request of that execution fails with it, and the process is
// restarted.
type ProcessError struct {
	Model, Instance string
	PID             int
	Status          string // how it ended: "exit status 1", "signal: killed"
	During          string // what it was doing: "execute()"
	Protocol        string // when the process broke the protocol rather than exited
}

func (e *ProcessError) Error() string {
	why := "exited (" + e.Status + ")"
	if e.Protocol != "" {
		why = "broke the protocol (" + e.Protocol + ") and was killed"
	}
	return fmt.Sprintf("python model '%s' (instance %s): the child process (pid %d) %s during %s; the request failed and the process is being restarted",
		e.Model, e.Instance, e.PID, why, e.During)
}

// outputSpec is what the config says of one output.
type outputSpec struct {
	dtype tensor.DType
	shape tensor.Shape // with a -1 batch dimension when the model batches; nil: not checked
}

// check turns one request's result into its outputs, checked against the config, in
// the order the request named them (want nil: every output execute() returned).
func (in *Instance) check(r result, want []string) ([]*tensor.Tensor, error) {
	if r.failed {
		return nil, &ModelError{Model: in.spec.model, Instance: in.spec.instance, Code: r.code, Message: r.message}
	}
	byName := make(map[string]*tensor.Tensor, len(r.outputs))
	for _, t := range r.outputs {
		spec, ok := in.spec.outputs[t.Name]
		if !ok {
			return nil, in.errorf("execute() returned output %q, which the model config does not list", t.Name)
		}
		if t.DType != spec.dtype {
			return nil, in.errorf("execute() returned output %q as %s; the model config says %s", t.Name, t.DType, spec.dtype)
		}
		if spec.shape != nil && !t.Shape.Matches(spec.shape) {
			return nil, in.errorf("execute() returned output %q with shape %v; the model config says %v", t.Name, t.Shape, spec.shape)
		}
		if err := t.Validate(); err != nil {
			return nil, in.errorf("execute() returned output %q: %w", t.Name, err)
		}
		if _, dup := byName[t.Name]; dup {
			return nil, in.errorf("execute() returned output %q twice", t.Name)
		}
		byName[t.Name] = t
	}
	if want == nil {
		return r.outputs, nil
	}
	outs := make([]*tensor.Tensor, 0, len(want))
	for _, name := range want {
		t, ok := byName[name]
		if !ok {
			return nil, in.errorf("execute() returned no output %q, which the request asked for", name)
		}
		outs = append(outs, t)
	}
	return outs, nil
}
