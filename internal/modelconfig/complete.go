package modelconfig

import (
	"errors"

	"github.com/ferryml/ferry/internal/inference"
)

// CheckComplete reports what a config must state itself when nothing may be filled in
// from the model file (tritonserver --disable-auto-complete-config): a platform or
// backend, at least one input and one output, and the data_type and dims of each. An
// ensemble has no model file to fill from, so Validate covers it already. All problems
// are returned joined, as FieldErrors.
func CheckComplete(cfg *inference.ModelConfig) error {
	if cfg == nil {
		return errors.New("modelconfig: nil config")
	}
	var errs []error
	if cfg.GetPlatform() == "" && cfg.GetBackend() == "" {
		errs = append(errs, fieldErr("platform", "not set, and neither is backend"))
	}
	if len(cfg.GetInput()) == 0 {
		errs = append(errs, fieldErr("input", "none listed"))
	}
	if len(cfg.GetOutput()) == 0 {
		errs = append(errs, fieldErr("output", "none listed"))
	}
	for i, in := range cfg.GetInput() {
		errs = append(errs, tensorComplete(tensorPath("input", i, in.GetName()), in.GetDataType(), in.GetDims())...)
	}
	for i, out := range cfg.GetOutput() {
		errs = append(errs, tensorComplete(tensorPath("output", i, out.GetName()), out.GetDataType(), out.GetDims())...)
	}
	return errors.Join(errs...)
}

func tensorComplete(path string, dt inference.DataType, dims []int64) []error {
	var errs []error
	if dt == inference.DataType_TYPE_INVALID {
		errs = append(errs, fieldErr(path+".data_type", "not set"))
	}
	if len(dims) == 0 {
		errs = append(errs, fieldErr(path+".dims", "not set"))
	}
	return errs
}
