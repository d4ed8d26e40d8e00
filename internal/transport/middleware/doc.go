// Package middleware holds the layers every route or RPC shares, whatever transport
// serves it: HTTP handlers that wrap the one root mux (request log, panic recovery, body
// limit, JSON answers for unknown routes; hardening.go: 400 for dot segments, the
// in-flight body budget, the body rate deadline, the Ferry-Timeout deadline) and the
// gRPC interceptors of the one gRPC server (request log).
//
// Where things go: a layer that every route needs (auth, rate limits, tracing) is one
// function here, added to the chain in cmd/ferry's routes.go, the one place that builds
// the HTTP root and the gRPC server; a layer for a group of routes wraps that group's
// handler with Chain before it is mounted. Transports mount on the root and register on
// the server; they never build a listener, an http.Server or a grpc.Server (archtest).
package middleware
