// Package v2grpc serves the Open Inference Protocol (KServe V2) over gRPC: Triton's
// inference.GRPCInferenceService, byte for byte, plus the standard gRPC health service.
// They register on the server's one grpc.Server (Register), which cmd/ferry builds with
// this service's ServerOptions, the shared interceptor chain and server reflection.
// It converts each wire message to core's types, checks tensors against their shape,
// datatype and the configured limits before allocating, calls core, and maps core's
// errors to status codes in one place (errors.go). It knows nothing of backends.
package v2grpc
