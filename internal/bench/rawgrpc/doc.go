// Package rawgrpc makes gRPC calls whose messages are already encoded, over HTTP/2
// connections it frames itself. It is the load generator's transport: on two cores,
// grpc-go's client spent 20-40 µs of CPU per call, CPU that a load generator sharing the
// machine takes from the server it measures. Here a call is a few frames written from
// the caller's goroutine and read by one goroutine per connection, with no per-call
// goroutine, codec or interceptor, as perf_analyzer's C++ client is lean.
//
// It speaks only what a client needs: unary and bidirectional-streaming calls,
// flow control both ways, compression through grpc-go's registered compressors, metadata
// and grpc-timeout. Anything else from the server (push, priorities) is refused or
// ignored as HTTP/2 allows.
package rawgrpc
