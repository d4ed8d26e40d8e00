// Package inference holds the Open Inference Protocol (KServe V2 / Triton)
// gRPC service and Triton's model configuration schema, generated from the
// .proto files beside it by `make proto`; the generated code is committed so
// a build needs no protoc.
package inference
