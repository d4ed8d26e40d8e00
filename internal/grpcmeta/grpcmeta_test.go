package grpcmeta

import (
	"context"
	"reflect"
	"testing"

	"google.golang.org/grpc/metadata"
)

func TestIncomingReadsTheCopy(t *testing.T) {
	in := metadata.NewIncomingContext(context.Background(), metadata.Pairs("Traceparent", "00-x", "authorization", "Bearer t"))
	ctx, md := Copy(in)
	if got := md.Get("traceparent"); len(got) != 1 || got[0] != "00-x" {
		t.Fatalf("copy's traceparent %v", got)
	}
	again, ok := Incoming(ctx)
	if !ok || reflect.ValueOf(again).Pointer() != reflect.ValueOf(md).Pointer() {
		t.Fatal("Incoming below Copy made another copy")
	}
	fresh, ok := Incoming(in) // no layer copied: grpc-go's own copy
	if !ok || reflect.ValueOf(fresh).Pointer() == reflect.ValueOf(md).Pointer() || fresh.Get("authorization")[0] != "Bearer t" {
		t.Fatalf("Incoming without a copy: %v %v", fresh, ok)
	}
	if ctx, md := Copy(context.Background()); md != nil || ctx != context.Background() {
		t.Fatal("a call without metadata got some")
	}
	if _, ok := Incoming(context.Background()); ok {
		t.Fatal("Incoming found metadata on a context without any")
	}
}
