package main

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/reflection"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/monitor/reqlog"
	"github.com/ferryml/ferry/internal/transport/mgmt"
	"github.com/ferryml/ferry/internal/transport/middleware"
	"github.com/ferryml/ferry/internal/transport/v2grpc"
	"github.com/ferryml/ferry/internal/transport/v2http"
)

// routes.go builds the server's one HTTP root and its one gRPC server. Transports offer
// routes and services; they are mounted and registered here, and the layers every
// request shares wrap them here, once. A new API (/api/v1, /v1, a console) is one more
// Mount on the root; a new cross-cutting layer is one more entry in a chain.

// httpRoot is the HTTP listener's handler: one mux holding V2 REST (/v2/...), /metrics
// and more (tests mount routes of their own), wrapped, outermost first, in the request
// log, panic recovery and the body limit; requests no route matches get a JSON 404 or
// 405. drain.go wraps the result once more, for shutdown.
//
// The management API (/api/v1, nil without a registry) is not a mux route: it takes its
// paths before the mux could clean them (a mux would redirect models/x/../y to models/y,
// method and all), and it bounds its own bodies, since a pushed artifact may be larger
// than any inference request. The group it forms is where authentication will wrap it.
//
// inner are layers around everything but the log and recovery (auth, security.go): they
// see every path as the client sent it, /api/v1 included.
//
// access logs each request (accesslog.go): outermost but for the trace's span; the
// layer that names the request's tenant on its log lines is innermost, after auth.
func httpRoot(v2 *v2http.Handler, metrics http.Handler, api *mgmt.Handler, more map[string]http.Handler, lim core.Limits, log *slog.Logger, access *accessLog, inner ...middleware.Layer) http.Handler {
	mux := http.NewServeMux()
	v2.Mount(mux)
	mux.Handle("GET /metrics", metrics)
	for pattern, h := range more {
		mux.Handle(pattern, h)
	}
	h := middleware.Chain(middleware.JSONErrors(mux), middleware.RefuseBrowserWrites(), middleware.LimitBody(lim.MaxBodyBytes))
	if api != nil {
		h = api.Intercept(h)
	}
	return middleware.Chain(h, append([]middleware.Layer{
		traceHTTP(mux),              // tracing.go: the span covers every layer
		access.httpLayer(mux),       // accesslog.go
		reqlog.HTTP,                 // the request's ids on its log lines
		middleware.LogRequests(log), // outside Recover: a request that panics is logged too
		middleware.Recover(log),
	}, append(inner, reqlog.TenantHTTP(tenantOf))...)...)
}

// newHTTPServer is the http.Server of the HTTP listener, with the connection timeouts
// every route shares.
func newHTTPServer(root http.Handler) *http.Server {
	return &http.Server{Handler: root, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
}

// streamWorkers is how many long-lived goroutines serve RPCs; past that, grpc-go starts
// one goroutine per RPC, as it does without workers. A new goroutine grows its stack
// while decoding the request (runtime.newstack was 8% of the server's CPU at 64 unary
// clients); a worker keeps its grown stack. Measured with ferry bench's server CPU per
// request, identity_fp32 at 64 clients: 30-31 µs with workers, 32-36 µs without.
const streamWorkers = 128

// newGRPCServer is the one gRPC server: the V2 service's options (message limits, its
// codec), stream workers and the one interceptor chain. The V2 inference and health
// services register on it, and server reflection (v1 and v1alpha), so grpcurl and other
// tools list and call the services without the .proto files, as with Triton.
// more are options added after the V2 service's own (hardening's stream limits and
// keepalive, auth's interceptors and TLS: hardening.go, security.go).
func newGRPCServer(v2 *v2grpc.Server, log *slog.Logger, access *accessLog, more ...grpc.ServerOption) *grpc.Server {
	outer := append(append(traceGRPC(), access.grpcOptions()...), reqlog.GRPCServerOptions()...) // tracing.go, accesslog.go: outermost
	opts := append(append(outer, v2.ServerOptions()...),
		grpc.NumStreamWorkers(streamWorkers),
		grpc.ChainUnaryInterceptor(middleware.LogUnary(log)),
		grpc.ChainStreamInterceptor(middleware.LogStream(log)),
	)
	opts = append(append(opts, more...), reqlog.GRPCTenantOptions(tenantOf)...) // after auth, which names the tenant
	gs := grpc.NewServer(opts...)
	v2.Register(gs)
	reflection.Register(gs)
	return gs
}

// tenantOf is the tenant authentication found for a request (callerOf, admission.go),
// for its log lines.
func tenantOf(ctx context.Context) string {
	t, _ := callerOf(ctx)
	return t
}
