package auth

import (
	"context"
	"crypto/x509"
	"errors"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/ferryml/ferry/internal/grpcmeta"
)

// Unary is the gRPC unary interceptor: the RPC is classified by method and request
// (ClassifyGRPC), then authenticated and authorized; refusals are UNAUTHENTICATED or
// PERMISSION_DENIED.
func (a *Authenticator) Unary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		action, model := ClassifyGRPC(info.FullMethod, req)
		if action == ActionOpen {
			return handler(ctx, req)
		}
		id, err := a.Check(ctx, grpcCredentials(ctx), action, model)
		if err != nil {
			return nil, grpcRefusal(err)
		}
		return handler(NewContext(ctx, id), req)
	}
}

// Stream is the gRPC stream interceptor. The caller is authenticated when the stream
// opens (for ActionAny at least); each message a stream receives is authorized for
// the model it names, so one stream cannot reach a model its caller may not use.
func (a *Authenticator) Stream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		action, _ := ClassifyGRPC(info.FullMethod, nil)
		if action == ActionOpen {
			return handler(srv, ss)
		}
		ctx := ss.Context()
		open := action
		if action == ActionRead || action == ActionInfer {
			open = ActionAny // the model is in each message
		}
		id, err := a.Check(ctx, grpcCredentials(ctx), open, "")
		if err != nil {
			return grpcRefusal(err)
		}
		return handler(srv, &checkedStream{ServerStream: ss, ctx: NewContext(ctx, id), id: id, a: a, method: info.FullMethod})
	}
}

type checkedStream struct {
	grpc.ServerStream
	ctx    context.Context
	id     Identity
	a      *Authenticator
	method string
}

func (s *checkedStream) Context() context.Context { return s.ctx }

func (s *checkedStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	action, model := ClassifyGRPC(s.method, m)
	if err := Authorize(s.id, action, model); err != nil {
		return grpcRefusal(err)
	}
	return nil
}

// grpcCredentials reads the "authorization" metadata (as tritonclient sends headers)
// and the peer's verified certificate.
func grpcCredentials(ctx context.Context) Credentials {
	var authz string
	if md, ok := grpcmeta.Incoming(ctx); ok {
		if v := md.Get("authorization"); len(v) > 0 {
			authz = v[0]
		}
	}
	var cert *x509.Certificate
	if p, ok := peer.FromContext(ctx); ok {
		if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.VerifiedChains) > 0 && len(ti.State.VerifiedChains[0]) > 0 {
			cert = ti.State.VerifiedChains[0][0]
		}
	}
	return CredentialsOf(authz, cert)
}

func grpcRefusal(err error) error {
	var u *Unauthenticated
	var d *Denied
	switch {
	case errors.As(err, &u):
		return status.Error(codes.Unauthenticated, "unauthenticated: "+u.Msg)
	case errors.As(err, &d):
		return status.Error(codes.PermissionDenied, "permission denied: "+d.Msg)
	}
	return status.Error(codes.Unavailable, "authentication is unavailable: the key store did not answer")
}
