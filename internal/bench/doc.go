// Package bench is Ferry's load generator, in the spirit of Triton's perf_analyzer.
//
// It is a client of the Open Inference Protocol (V2): it reads a model's metadata and
// configuration, builds requests from generated (random or zero) or file data, and
// drives a server over HTTP with JSON tensors, HTTP with the binary tensor data
// extension, or gRPC. Load is closed loop (a fixed number of requests in flight, swept
// over levels) or open loop (Poisson arrivals at a request rate). Each level reports
// throughput, latency percentiles, errors and the server's average batch size from the
// statistics extension.
//
// RunEngine measures a model executed in process through the small Engine interface,
// so the server's figures can be compared with the engine's own limit; cmd/ferry adapts
// the ONNX Runtime session to it, and this package never imports a backend.
//
// Its gRPC calls go through rawgrpc (internal/bench/rawgrpc), an HTTP/2 client that
// frames each call once and parses replies by hand: a load generator on the server's
// cores takes from the server whatever CPU it spends per call, and grpc-go's client
// spent 36-38 µs per call. It serves the load generator only, so it lives here.
package bench
