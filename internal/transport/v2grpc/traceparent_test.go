package v2grpc

import (
	"testing"

	"google.golang.org/grpc/metadata"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/inference"
)

// The client's W3C trace context (gRPC metadata traceparent) reaches core with the
// request; a malformed one does not.
func TestTraceParentReachesCore(t *testing.T) {
	fc := &fakeCore{}
	c, _ := newTestClient(t, fc, core.Limits{})
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	for _, tc := range []struct{ sent, want string }{{tp, tp}, {"not-a-trace", ""}} {
		ctx := metadata.AppendToOutgoingContext(t.Context(), "traceparent", tc.sent)
		req := &inference.ModelInferRequest{ModelName: "echo",
			Inputs:           []*inference.ModelInferRequest_InferInputTensor{{Name: "a", Datatype: "FP32", Shape: []int64{1}}},
			RawInputContents: [][]byte{le(float32(1))}}
		if _, err := c.ModelInfer(ctx, req); err != nil {
			t.Fatal(err)
		}
		if got := fc.lastRequest().TraceParent; got != tc.want {
			t.Errorf("sent traceparent %q: core got %q, want %q", tc.sent, got, tc.want)
		}
	}
}
