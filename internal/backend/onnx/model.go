package onnx

import (
	"fmt"
	"os"
	"runtime/debug"
	"strings"
	"time"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/ferryml/ferry/internal/modelconfig"
	"github.com/ferryml/ferry/internal/tensor"
)

// TensorInfo describes one input or output of a model: the type auto-complete takes, so
// what Inspect finds goes to the repository without conversion. Shape has -1 for each
// symbolic or unknown dimension; a model that declares no shape reports rank 0.
type TensorInfo = modelconfig.TensorInfo

// IO describes a model's inputs and outputs, in model order.
type IO = modelconfig.IO

// outputSpec is one output a Session returns, and how it gets its memory.
type outputSpec struct {
	TensorInfo
	// prealloc is set for outputs the binding cannot take from ONNX
	// Runtime's memory (FP16 and BF16, whose size it miscomputes, and rank-0
	// tensors, which it rejects): Execute allocates them, sized by dims.
	prealloc bool
	dims     []dimSource
}

// dimSource says where an output dimension's size comes from: a fixed size
// (input < 0) or dimension axis of the request's input number input.
type dimSource struct {
	size        int64
	input, axis int
}

// skippedOutput is an output of the model a Session cannot return.
type skippedOutput struct {
	name, reason string
}

// modelDesc is what Inspect and Open learn about a model file.
type modelDesc struct {
	path    string
	inputs  []TensorInfo
	outputs []outputSpec
	skipped []skippedOutput
}

// io is a copy of the description's inputs and outputs: the description is shared.
func (d *modelDesc) io() IO {
	io := IO{Inputs: make([]TensorInfo, len(d.inputs)), Outputs: make([]TensorInfo, len(d.outputs))}
	for i, in := range d.inputs {
		io.Inputs[i] = TensorInfo{Name: in.Name, DType: in.DType, Shape: in.Shape.Clone()}
	}
	for i, o := range d.outputs {
		io.Outputs[i] = TensorInfo{Name: o.Name, DType: o.DType, Shape: o.Shape.Clone()}
	}
	return io
}

// descKey names one content of a model file, as far as the file system tells.
type descKey struct {
	path  string
	size  int64
	mtime time.Time
}

// maxDescs bounds the descriptions a Runtime remembers; past it they are all forgotten.
const maxDescs = 1024

// describe reads the inputs and outputs of the model at path, once per file content: a
// model's auto-complete and each of its instances ask for the same file.
func (r *Runtime) describe(path string) (*modelDesc, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("onnx: model %s: %w", path, err)
	}
	key := descKey{path: path, size: st.Size(), mtime: st.ModTime()}
	r.mu.Lock()
	d := r.descs[key]
	r.mu.Unlock()
	if d != nil {
		return d, nil
	}
	if d, err = r.readDesc(path); err != nil {
		return nil, err
	}
	r.mu.Lock()
	if len(r.descs) >= maxDescs {
		clear(r.descs)
	}
	r.descs[key] = d
	r.mu.Unlock()
	return d, nil
}

// readDesc reads the model's inputs and outputs from its file (see parseGraph), or asks
// ONNX Runtime when the file is beyond that reading, and plans each output.
func (r *Runtime) readDesc(path string) (*modelDesc, error) {
	model, release, err := mapFile(path)
	if err != nil {
		return nil, fmt.Errorf("onnx: model %s: %w", path, err)
	}
	defer release()
	decl, parseErr := parseGraph(model)
	var ins, outs []ort.InputOutputInfo
	if parseErr == nil && decl.complete {
		ins, outs = decl.inputs, decl.outputs
	} else if ins, outs, err = r.sessionIO(path); err != nil {
		// Not a model this reading covers, or not a model at all: ONNX Runtime says
		// what it makes of the file.
		return nil, err
	}
	d := &modelDesc{path: path}
	for _, in := range ins {
		ti, reason := tensorInfo(in)
		if reason != "" {
			return nil, fmt.Errorf("onnx: model %s: input %q %s; the onnx backend cannot feed it", path, in.Name, reason)
		}
		d.inputs = append(d.inputs, ti)
	}
	for _, out := range outs {
		ti, reason := tensorInfo(out)
		if reason == "" {
			var o outputSpec
			o, reason, err = d.planOutput(ti, decl, parseErr)
			if err != nil {
				return nil, err
			}
			if reason == "" {
				d.outputs = append(d.outputs, o)
				continue
			}
		}
		d.skipped = append(d.skipped, skippedOutput{out.Name, reason})
		r.log.Warn("onnx model output cannot be returned; it is left out", "model_path", path, "output", out.Name, "reason", reason)
	}
	if len(d.inputs) == 0 {
		return nil, fmt.Errorf("onnx: model %s has no inputs; the onnx backend needs at least one", path)
	}
	if len(d.outputs) == 0 {
		return nil, fmt.Errorf("onnx: model %s has no output the onnx backend can return", path)
	}
	return d, nil
}

// sessionIO asks ONNX Runtime for the model's inputs and outputs, through a throwaway
// session with graph optimisation off (the binding has no way to ask a live one).
func (r *Runtime) sessionIO(path string) (ins, outs []ort.InputOutputInfo, err error) {
	err = safely(r.log, func() error {
		so, err := ort.NewSessionOptions()
		if err != nil {
			return err
		}
		defer so.Destroy()
		if err := so.SetGraphOptimizationLevel(ort.GraphOptimizationLevelDisableAll); err != nil {
			return err
		}
		ins, outs, err = ort.GetInputOutputInfoWithOptions(path, so)
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("onnx: model %s cannot be loaded: %w", path, err)
	}
	return ins, outs, nil
}

// tensorInfo converts the binding's description, or says why it cannot.
func tensorInfo(in ort.InputOutputInfo) (TensorInfo, string) {
	if in.OrtValueType != ort.ONNXTypeTensor {
		return TensorInfo{}, fmt.Sprintf("is a %s value, not a tensor", strings.ToLower(strings.TrimPrefix(in.OrtValueType.String(), "ONNX_TYPE_")))
	}
	dt, ok := dtypeOf(in.DataType)
	if !ok {
		return TensorInfo{}, fmt.Sprintf("has element type %s, which has no V2 datatype", onnxTypeName(in.DataType))
	}
	return TensorInfo{Name: in.Name, DType: dt, Shape: tensor.Shape(in.Dimensions.Clone())}, ""
}

// planOutput decides how Execute gets memory for output o. Outputs whose shape follows
// from the inputs' (fixed sizes, or dim_params shared with an input) are allocated in Go
// before the run, so ONNX Runtime writes the result where Ferry returns it: no copy, and
// no wrapping of an ORT-allocated value (the costliest step for small models). Others
// are allocated by ONNX Runtime. A non-empty reason means the output cannot be returned.
func (d *modelDesc) planOutput(o TensorInfo, decl *graphDecl, parseErr error) (outputSpec, string, error) {
	spec := outputSpec{TensorInfo: o}
	half := o.DType == tensor.FP16 || o.DType == tensor.BF16
	if o.DType == tensor.Bytes && len(o.Shape) > 0 {
		return spec, "", nil // strings: ONNX Runtime allocates them
	}
	if parseErr != nil {
		return spec, "", fmt.Errorf("onnx: model %s: %w", d.path, parseErr)
	}
	shapes := &decl.shapes
	declared := shapes.outputs[o.Name]
	switch {
	case !declared.known && !half:
		return spec, "", nil // rank unknown, not a scalar: ONNX Runtime allocates it
	case !declared.known:
		return spec, fmt.Sprintf("is %s with no declared shape, so it cannot be allocated before the run (onnxruntime_go v1.27 cannot return %s tensors ONNX Runtime allocates)", o.DType, o.DType), nil
	case len(o.Shape) == 0 && (half || o.DType == tensor.Bytes):
		return spec, fmt.Sprintf("is a rank-0 %s tensor, which onnxruntime_go v1.27 cannot return", o.DType), nil
	}
	spec.prealloc = true
	for a, size := range o.Shape {
		if size >= 0 {
			spec.dims = append(spec.dims, dimSource{size: size, input: -1})
			continue
		}
		src, ok := d.dimFromInput(declared, a, shapes)
		if !ok && !half && len(o.Shape) > 0 {
			// ONNX Runtime allocates it: one more copy, but any shape works.
			return outputSpec{TensorInfo: o}, "", nil
		}
		if !ok {
			return spec, fmt.Sprintf("is %s and its dimension %d is not named after an input dimension, so it cannot be allocated before the run (onnxruntime_go v1.27 cannot return %s tensors ONNX Runtime allocates)", o.DType, a, o.DType), nil
		}
		spec.dims = append(spec.dims, src)
	}
	return spec, "", nil
}

// dimFromInput finds an input dimension with the same dim_param as axis a of
// the declared output shape: ONNX requires one name to mean one size across
// the graph.
func (d *modelDesc) dimFromInput(decl valueShape, a int, shapes *graphShapes) (dimSource, bool) {
	if a >= len(decl.dims) || decl.dims[a].param == "" {
		return dimSource{}, false
	}
	param := decl.dims[a].param
	for i, in := range d.inputs {
		for b, dd := range shapes.inputs[in.Name].dims {
			if dd.param == param {
				return dimSource{input: i, axis: b}, true
			}
		}
	}
	return dimSource{}, false
}

// InputError is a request the model cannot take: an unknown, missing,
// repeated or mistyped input, or an output the session does not return. It is
// the client's fault, as opposed to a failure of the run.
type InputError struct {
	Name   string
	Output bool // Name is an output
	Reason string
}

func (e *InputError) Error() string {
	kind := "input"
	if e.Output {
		kind = "output"
	}
	return fmt.Sprintf("%s %q: %s", kind, e.Name, e.Reason)
}

// InvalidInput marks the error as the request's fault, so the server answers 400 /
// INVALID_ARGUMENT; core matches this method without importing this package.
func (e *InputError) InvalidInput() bool { return true }

func inputErr(name, format string, args ...any) error {
	return &InputError{Name: name, Reason: fmt.Sprintf(format, args...)}
}

func outputErr(name, format string, args ...any) error {
	return &InputError{Name: name, Output: true, Reason: fmt.Sprintf(format, args...)}
}

func stack() string { return string(debug.Stack()) }
