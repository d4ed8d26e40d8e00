package reqlog

import (
	"context"
	"net/http"

	"google.golang.org/grpc"
)

// HTTP is the layer that gives each request Fields (unless an outer layer did), so the
// lines logged for it carry its ids. It costs a few small allocations per request.
func HTTP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if FromContext(r.Context()) == nil {
			r = r.WithContext(NewContext(r.Context(), &Fields{}))
		}
		next.ServeHTTP(w, r)
	})
}

// GRPCServerOptions give each call (unary or stream) Fields, as HTTP does.
func GRPCServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
			if FromContext(ctx) == nil {
				ctx = NewContext(ctx, &Fields{})
			}
			return handler(ctx, req)
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
			if FromContext(ss.Context()) == nil {
				ss = &fieldsStream{ServerStream: ss, ctx: NewContext(ss.Context(), &Fields{})}
			}
			return handler(srv, ss)
		}),
	}
}

type fieldsStream struct {
	grpc.ServerStream
	ctx context.Context //nolint:containedctx // a ServerStream's Context is how gRPC hands it on
}

func (s *fieldsStream) Context() context.Context { return s.ctx }

// TenantHTTP is the layer that records in the request's Fields the tenant that tenant
// finds in its context: it goes inside authentication, which puts the identity there.
func TenantHTTP(tenant func(context.Context) string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			FromContext(r.Context()).SetTenant(tenant(r.Context()))
			next.ServeHTTP(w, r)
		})
	}
}

// GRPCTenantOptions are TenantHTTP for gRPC: add them after authentication's interceptors.
func GRPCTenantOptions(tenant func(context.Context) string) []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
			FromContext(ctx).SetTenant(tenant(ctx))
			return handler(ctx, req)
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
			FromContext(ss.Context()).SetTenant(tenant(ss.Context()))
			return handler(srv, ss)
		}),
	}
}
