// Package v2http serves the Open Inference Protocol (KServe "V2") over HTTP/REST, wire
// compatible with KServe and Triton: health, server and model metadata, model config and
// readiness, inference with JSON tensors and the binary tensor data extension (including
// raw binary requests), and Triton's statistics, model repository, trace and logging
// extensions.
//
// The package converts the wire format to core's request type and back; it never talks to
// a backend. It mounts its routes on the server's one HTTP root (Handler.Mount), which
// cmd/ferry builds and wraps in the layers every route shares (package middleware).
// Errors map to HTTP statuses in one place (errors.go). Request bodies are bounded by
// core.Limits before anything proportional to them is allocated, and tensor data is
// decoded by a hand-written scanner straight into the tensor's little-endian bytes,
// without building a generic JSON tree.
package v2http
