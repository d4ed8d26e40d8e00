// Package v2client is a client of the Open Inference Protocol (KServe / Triton "V2"),
// over REST and over gRPC: model metadata, configuration, readiness, statistics,
// shared-memory regions and inference, with tensors as tensor.Tensor values.
//
// It is the one V2 client the project has. The remote backend forwards requests to an
// upstream through it; the load generator (internal/bench) reads metadata and
// statistics through it and sends its prepared REST bodies with it; and end-to-end
// tests talk to a running server through it wherever they check answers rather than
// the wire itself.
//
// A request is encoded once and may be sent many times: EncodeREST returns a Body (a
// remote's retries and hedges resend the same bytes; a load generator cycles through
// its bodies), and EncodeGRPC a ModelInferRequest message.
//
// Where things go: a new V2 endpoint a client calls (a new extension) is a method here,
// on both clients when both protocols have it; encoding and decoding of the V2 wire
// forms live here for clients, while the server's side lives in internal/transport.
// The load generator's own fast paths (hand-framed gRPC, reply parsing that reads only
// what it counts) stay in internal/bench.
package v2client
