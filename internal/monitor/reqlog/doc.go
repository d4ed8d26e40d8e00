// Package reqlog puts a request's identity on every log line written for it: a
// slog.Handler (Handler) adds request_id, model, version and tenant from the request's
// Fields, and trace_id and span_id from its span, to each record logged with the
// request's context (the *Context logging methods). A layer at the edge of each transport
// puts Fields in the context (HTTP, GRPCServerOptions); the transport fills in what it
// learns as the request goes (the id and model it asked for, the version that answered).
//
// It is a leaf: transports, core and cmd/ferry may all use it.
package reqlog
