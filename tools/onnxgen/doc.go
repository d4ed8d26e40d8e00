// Package onnxgen writes small ONNX models in pure Go, for Ferry's example
// model repository and for tests that need a real model on disk.
//
// It does not depend on any ONNX or protobuf code generated from onnx.proto:
// a [Model] is encoded field by field with
// google.golang.org/protobuf/encoding/protowire, using the field numbers of
// ONNX's public onnx.proto schema (which are frozen: ONNX only ever adds
// fields). Only the subset of the schema that simple inference graphs need is
// covered: graph inputs and outputs with an element type and a shape whose
// dimensions are fixed or symbolic, nodes with int, float and ints
// attributes, and float32 and int64 initializers stored as raw_data. A
// [Model] can be streamed to a writer ([Model.Encode]) with initializers
// whose data is produced as it is written, so a model of hundreds of
// megabytes never sits in memory whole.
//
// Every model targets IR version 8 and, unless [Model.Opset] says otherwise,
// the default ("ai.onnx") opset 13, which every ONNX Runtime since 1.10
// loads, and names "ferry-onnxgen" as its producer. GPT models import opset
// 17 (LayerNormalization).
//
// The ready-made models Ferry needs are returned as bytes, so a test can
// write them wherever it likes (typically t.TempDir()):
//
//   - [Simple]: Triton's classic "simple" model (INT32 add and subtract).
//   - [Identity]: one Identity node, for any element type.
//   - [MLP]: a three-layer perceptron with seeded Xavier weights and softmax.
//   - [Accumulator]: input plus state, for stateful (sequence) models.
//   - [GPT]: a random-weight GPT-2-style decoder with the Hugging Face
//     Optimum KV-cache interface, for the LLM engine ([TinyGPT] for tests,
//     [GPT2Small] for benchmarks, streamed with [WriteGPT]).
//
// The encoding is deterministic: the same call always returns the same
// bytes, so generated files can be compared to decide whether to rewrite
// them.
package onnxgen
