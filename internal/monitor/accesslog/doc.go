// Package accesslog writes one JSON line per request, REST and gRPC alike: method,
// route, status, duration_s, bytes_in, bytes_out, model, version, request_id,
// trace_id and tenant. The request path only hands an Entry to a bounded buffer; a
// goroutine of its own (Run) formats and writes the lines, so a slow disk delays no
// request: when the buffer is full the entry is dropped and counted (Dropped).
//
// The layers (HTTP, GRPCServerOptions) also put reqlog.Fields in each request's context,
// which the transports fill in and the access line reads when the request ends.
package accesslog
