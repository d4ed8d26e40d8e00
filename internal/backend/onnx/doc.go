// Package onnx runs ONNX models with ONNX Runtime, through the cgo binding
// github.com/yalue/onnxruntime_go. It is the only cgo package in Ferry; of Ferry
// it imports the leaves only (tensor, modelconfig and the config types, platform).
//
// An [Engine] is the engine as the model repository sees it (config.go): it
// describes a model from its file and config ([Engine.InspectConfig]) and opens
// instances with the options the config's parameters ask for
// ([OptionsFromConfig], Triton's names). cmd/ferry only lists it in its table.
//
// A [Runtime] owns the process-wide ONNX Runtime environment: the binding
// keeps it in package globals, so at most one Runtime exists at a time, and
// [Runtime.Close] closes every session still open before destroying it.
// [Runtime.Inspect] reads a model's inputs and outputs (for config
// auto-complete); [Runtime.Open] loads a [Session], whose [Session.Execute]
// runs the model once on full tensors.
//
// [Runtime.ProbeBatch] runs a model on zero inputs at batch sizes 1, 2, 4, ...
// to choose the max_batch_size auto-complete gives it (batchprobe.go). The
// session it measured with is kept for the next Open of the same file with the
// same options, the model's first instance (spare.go), so the probe costs its
// runs and no second session load.
//
// # Data path
//
// Numeric inputs are handed to ONNX Runtime over the request's own bytes, with
// no copy, unless the bytes are not aligned for their element type (then they
// are copied once into an aligned buffer). ONNX Runtime allocates the outputs;
// the binding copies each into a Go slice, which becomes the returned tensor's
// Data without a further copy. Outputs the binding cannot take from ONNX
// Runtime (FP16, BF16 and rank-0 outputs) are preallocated in Go instead, and
// ONNX Runtime writes straight into them; that needs their shape before the
// run, so it must be fixed or named (dim_param) after an input dimension.
// Outputs whose shape cannot be known that way, and outputs that are not
// tensors of a V2 datatype (sequences, maps, complex, float8, ...), are left
// out of the session with a warning at Open; asking for one is an error.
//
// BYTES tensors map to ONNX STRING tensors, element by element and by length,
// so any byte passes, NUL included. The binding fills string tensors from C
// strings, which end at the first NUL, so inputs are filled through ONNX
// Runtime's C API directly (GetResizedStringTensorElementBuffer, strtensor.go);
// outputs are read with offsets (GetStringTensorContent), which the binding
// already does.
//
// The binding's DynamicAdvancedSession fixes its output names at creation, so
// every run computes every output the session has; outputs not asked for are
// dropped after the run.
//
// # Failure containment
//
// A Go panic inside the binding becomes an error. A crash inside ONNX Runtime's
// C++ code still kills the process; only a separate process would contain it.
// A cancelled context stops a run between graph nodes (ONNX Runtime's terminate
// flag), not inside a running kernel.
package onnx
