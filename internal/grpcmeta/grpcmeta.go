package grpcmeta

import (
	"context"

	"google.golang.org/grpc/metadata"
)

type key struct{}

// Copy returns ctx carrying a copy of the call's incoming metadata, and the copy, for
// the layers below to read through Incoming; ctx itself and a nil MD when the call has
// none. Nothing in Ferry replaces a call's incoming metadata after the first
// interceptor, which keeps the copy current.
func Copy(ctx context.Context) (context.Context, metadata.MD) {
	md, ok := metadata.FromIncomingContext(ctx)
	if !ok {
		return ctx, nil
	}
	return context.WithValue(ctx, key{}, md), md
}

// Incoming is the call's incoming metadata: the copy a layer above took, else a new
// copy. Callers only read it. Keys are lower case, as metadata keeps them.
func Incoming(ctx context.Context) (metadata.MD, bool) {
	if md, ok := ctx.Value(key{}).(metadata.MD); ok {
		return md, true
	}
	return metadata.FromIncomingContext(ctx)
}
