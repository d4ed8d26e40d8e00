package modelconfig

import (
	"errors"
	"slices"
	"strings"

	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/internal/tensor"
)

// DefaultMaxBatchSize is the max_batch_size AutoComplete gives a model that
// can batch when its config sets none: Triton's ONNX Runtime backend default
// (--backend-config=onnxruntime,default-max-batch-size=4).
const DefaultMaxBatchSize = 4

// TensorInfo is one input or output as a backend found it in the model file.
type TensorInfo struct {
	Name  string
	DType tensor.DType
	// Shape is the model's full shape, batch dimension included; -1 marks a
	// symbolic (dynamic) dimension.
	Shape tensor.Shape
}

// IO is what a backend found in the model file, in the model's order.
type IO struct {
	Inputs, Outputs []TensorInfo
	// MaxBatchSize, when > 0, replaces DefaultMaxBatchSize for this backend
	// (trees batch cheaply, so they take larger batches than ONNX models).
	MaxBatchSize int32
	// PickMaxBatchSize, when set and MaxBatchSize is 0, is asked for the
	// max_batch_size AutoComplete gives, and only then (the config sets none and
	// the model can batch): a backend that measures the model to choose (onnx)
	// pays for it only when the answer is used. A result <= 0 keeps
	// DefaultMaxBatchSize.
	PickMaxBatchSize func() int32
	// Accepts lists, by tensor name, further datatypes a config may give a tensor
	// besides the model's, for a backend that converts (trees read FP32 or FP64).
	Accepts map[string][]tensor.DType
}

// AutoComplete fills in what config.pbtxt left out from the model itself, as
// Triton's ONNX Runtime backend does:
//
//   - With no input (or no output) in cfg, every model input (output) is taken,
//     in model order. A listed tensor without data_type or dims gets them from
//     the model tensor of the same name; one with them is checked against it.
//   - max_batch_size: when the config did not set it (explicitMaxBatch false
//     and the value is 0), gave no dims, and every model input and output has
//     a dynamic (-1) first dimension, it becomes DefaultMaxBatchSize (or the
//     backend's IO.MaxBatchSize, or what its IO.PickMaxBatchSize chooses).
//     Otherwise it stays 0 and dims are the full model shapes. A config that
//     writes dims without max_batch_size is read as max_batch_size 0, as Triton
//     reads it.
//   - With max_batch_size > 0 the model's first dimension is the batch and
//     dims are the rest; it must be -1 in the model. A tensor whose shape is
//     only the batch gets dims [1] and an empty reshape, as in Triton.
//   - When something was filled in, max_batch_size > 1 and no scheduler is
//     set, an empty dynamic_batching is added (Triton does the same).
//   - The control and state tensors of sequence_batching are the batcher's,
//     never the config's inputs and outputs; each must exist in the model with
//     the type (and state dims) the config gives it.
//
// A listed name missing from the model, a data type or dims that conflict
// with the model are errors naming the tensor; all of them are returned
// joined. A non-zero max_batch_size always counts as set, whatever
// explicitMaxBatch says.
func AutoComplete(cfg *inference.ModelConfig, io IO, explicitMaxBatch bool) error {
	if cfg == nil {
		return errors.New("modelconfig: nil config")
	}
	filling := incomplete(cfg)
	if !explicitMaxBatch && cfg.MaxBatchSize == 0 && canBatch(io) && !anyDims(cfg) {
		cfg.MaxBatchSize = defaultMaxBatch(io)
	}
	mbs := cfg.MaxBatchSize
	var errs []error
	seqIn, seqOut := sequenceTensors(cfg) // supplied by the sequence batcher, not clients
	errs = append(errs, checkSequenceTensors(cfg, io)...)

	if len(cfg.Input) == 0 {
		for _, t := range io.Inputs {
			if seqIn[t.Name] {
				continue
			}
			cfg.Input = append(cfg.Input, &inference.ModelInput{Name: t.Name})
		}
	}
	inputs := byName(io.Inputs)
	for i, in := range cfg.Input {
		path := tensorPath("input", i, in.Name)
		errs = append(errs, complete(path, inputs, "inputs", slot{in.Name, &in.DataType, &in.Dims, &in.Reshape}, mbs, io.Accepts[in.Name])...)
	}

	if len(cfg.Output) == 0 {
		for _, t := range io.Outputs {
			if seqOut[t.Name] {
				continue
			}
			cfg.Output = append(cfg.Output, &inference.ModelOutput{Name: t.Name})
		}
	}
	outputs := byName(io.Outputs)
	for i, out := range cfg.Output {
		path := tensorPath("output", i, out.Name)
		errs = append(errs, complete(path, outputs, "outputs", slot{out.Name, &out.DataType, &out.Dims, &out.Reshape}, mbs, io.Accepts[out.Name])...)
	}

	if filling && mbs > 1 && cfg.SchedulingChoice == nil {
		cfg.SchedulingChoice = &inference.ModelConfig_DynamicBatching{DynamicBatching: &inference.ModelDynamicBatching{}}
	}
	return errors.Join(errs...)
}

// defaultMaxBatch is the max_batch_size of a model that can batch and whose
// config sets none.
func defaultMaxBatch(io IO) int32 {
	if io.MaxBatchSize > 0 {
		return io.MaxBatchSize
	}
	if io.PickMaxBatchSize != nil {
		if n := io.PickMaxBatchSize(); n > 0 {
			return n
		}
	}
	return DefaultMaxBatchSize
}

// slot points at the fields an input and an output share.
type slot struct {
	name     string
	dataType *inference.DataType
	dims     *[]int64
	reshape  **inference.ModelTensorReshape
}

// complete fills or checks one config tensor against the model tensor of the
// same name.
func complete(path string, model map[string]TensorInfo, kind string, s slot, mbs int32, accepts []tensor.DType) []error {
	if s.name == "" {
		return []error{fieldErr(path+".name", "must be set")}
	}
	t, ok := model[s.name]
	if !ok {
		return []error{fieldErr(path, "not found in the model, whose %s are %s", kind, names(model))}
	}
	var errs []error
	switch {
	case !t.DType.Valid():
		errs = append(errs, fieldErr(path, "the model's element type has no V2 datatype"))
	case *s.dataType == inference.DataType_TYPE_INVALID:
		*s.dataType = ConfigType(t.DType)
	case DType(*s.dataType) != t.DType && !slices.Contains(accepts, DType(*s.dataType)):
		errs = append(errs, fieldErr(path+".data_type", "%v conflicts with the model's %v (%v)",
			*s.dataType, ConfigType(t.DType), t.DType))
	}

	shape := t.Shape
	if mbs > 0 {
		if len(shape) == 0 || shape[0] != -1 {
			return append(errs, fieldErr(path, "max_batch_size %d needs a dynamic (-1) first dimension in the model, whose shape is %v", mbs, shape))
		}
		shape = shape[1:]
	}
	switch {
	case len(*s.dims) == 0 && *s.reshape == nil:
		if len(shape) == 0 {
			// Triton's convention for a tensor that is only the batch, or a scalar.
			*s.dims = []int64{1}
			if mbs > 0 {
				*s.reshape = &inference.ModelTensorReshape{}
			}
		} else {
			*s.dims = shape.Clone()
		}
	case !fits(*s.dims, *s.reshape, shape):
		what := "dims " + tensor.Shape(*s.dims).String()
		if *s.reshape != nil {
			what = "reshape " + tensor.Shape((*s.reshape).Shape).String()
		}
		batch := ""
		if mbs > 0 {
			batch = " after the batch dimension"
		}
		errs = append(errs, fieldErr(path, "%s do not match the model's shape %v%s", what, shape, batch))
	}
	return errs
}

// fits reports whether config dims (or the reshape, which is what the model
// sees when set) agree with the model shape: same rank, and equal wherever
// the model's dimension is fixed. A scalar model tensor fits dims [1].
func fits(dims []int64, reshape *inference.ModelTensorReshape, model tensor.Shape) bool {
	want := tensor.Shape(dims)
	if reshape != nil {
		want = reshape.Shape
	}
	if len(model) == 0 && len(want) == 1 && want[0] == 1 {
		return true
	}
	if len(want) != len(model) {
		return false
	}
	for i, d := range model {
		if d != -1 && want[i] != d {
			return false
		}
	}
	return true
}

// canBatch reports whether every model input and output has a dynamic first
// dimension, Triton's test for a model that supports batching.
func canBatch(io IO) bool {
	if len(io.Inputs) == 0 && len(io.Outputs) == 0 {
		return false
	}
	for _, ts := range [][]TensorInfo{io.Inputs, io.Outputs} {
		for _, t := range ts {
			if len(t.Shape) == 0 || t.Shape[0] != -1 {
				return false
			}
		}
	}
	return true
}

// anyDims reports whether the config gives dims (or a reshape) for any
// tensor: then it has chosen how its shapes read, and a missing max_batch_size
// means 0.
func anyDims(cfg *inference.ModelConfig) bool {
	for _, in := range cfg.Input {
		if len(in.Dims) > 0 || in.Reshape != nil {
			return true
		}
	}
	for _, out := range cfg.Output {
		if len(out.Dims) > 0 || out.Reshape != nil {
			return true
		}
	}
	return false
}

// incomplete reports whether AutoComplete has anything to fill in.
func incomplete(cfg *inference.ModelConfig) bool {
	if len(cfg.Input) == 0 || len(cfg.Output) == 0 {
		return true
	}
	for _, in := range cfg.Input {
		if in.DataType == inference.DataType_TYPE_INVALID || len(in.Dims) == 0 {
			return true
		}
	}
	for _, out := range cfg.Output {
		if out.DataType == inference.DataType_TYPE_INVALID || len(out.Dims) == 0 {
			return true
		}
	}
	return false
}

func byName(ts []TensorInfo) map[string]TensorInfo {
	m := make(map[string]TensorInfo, len(ts))
	for _, t := range ts {
		m[t.Name] = t
	}
	return m
}

func names(m map[string]TensorInfo) string {
	if len(m) == 0 {
		return "none"
	}
	ns := make([]string, 0, len(m))
	for n := range m {
		ns = append(ns, n)
	}
	slices.Sort(ns)
	return strings.Join(ns, ", ")
}
