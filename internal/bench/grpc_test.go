package bench

import (
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/internal/tensor"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// streamServer answers ModelStreamInfer: an output for model "ok", an error message in
// the stream for any other model. It counts the streams opened.
type streamServer struct {
	inference.UnimplementedGRPCInferenceServiceServer
	streams atomic.Int64
	md      atomic.Pointer[metadata.MD] // of the last call
}

func (s *streamServer) keep(ctx context.Context) {
	md, _ := metadata.FromIncomingContext(ctx)
	s.md.Store(&md)
}

// ModelMetadata records the call's metadata and fails.
func (s *streamServer) ModelMetadata(ctx context.Context, _ *inference.ModelMetadataRequest) (*inference.ModelMetadataResponse, error) {
	s.keep(ctx)
	return nil, status.Error(codes.NotFound, "no metadata here")
}

func (s *streamServer) ModelStreamInfer(st grpc.BidiStreamingServer[inference.ModelInferRequest, inference.ModelStreamInferResponse]) error {
	s.streams.Add(1)
	s.keep(st.Context())
	for {
		req, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		resp := &inference.ModelStreamInferResponse{}
		if req.GetModelName() == "ok" {
			resp.InferResponse = &inference.ModelInferResponse{Outputs: []*inference.ModelInferResponse_InferOutputTensor{{Name: "OUT"}}}
		} else {
			resp.ErrorMessage = "unknown model " + req.GetModelName()
		}
		if err := st.Send(resp); err != nil {
			return err
		}
	}
}

func startStreamServer(t *testing.T) (*streamServer, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &streamServer{}
	gs := grpc.NewServer()
	inference.RegisterGRPCInferenceServiceServer(gs, srv)
	go gs.Serve(ln) //nolint:errcheck // ends with Stop
	t.Cleanup(gs.Stop)
	return srv, ln.Addr().String()
}

func streamClient(t *testing.T, addr, model string) Sender {
	t.Helper()
	c, err := NewGRPC(GRPCOptions{Addr: addr, Model: model, Streaming: true, Conns: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	in := &tensor.Tensor{Name: "IN", DType: tensor.FP32, Shape: tensor.Shape{1}, Data: make([]byte, 4)}
	send, err := c.Prepare(Model{Name: model}, [][]*tensor.Tensor{{in}})
	if err != nil {
		t.Fatal(err)
	}
	return send
}

func TestGRPCStreamingReusesStreams(t *testing.T) {
	srv, addr := startStreamServer(t)
	send := streamClient(t, addr, "ok")
	const workers, each = 4, 50
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				if err := send(t.Context(), w*each+i, Step{}); err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if n := srv.streams.Load(); n < 1 || n > workers {
		t.Errorf("%d streams opened for %d requests from %d workers, want 1..%d", n, workers*each, workers, workers)
	}
}

func TestGRPCStreamingReportsTheServersError(t *testing.T) {
	_, addr := startStreamServer(t)
	send := streamClient(t, addr, "nope")
	if err := send(t.Context(), 0, Step{}); err == nil || !strings.Contains(err.Error(), "unknown model nope") {
		t.Errorf("send err = %v, want the server's message", err)
	}
	// The failed stream is not reused: the next request opens another and fails alike.
	if err := send(t.Context(), 1, Step{}); err == nil || !strings.Contains(err.Error(), "unknown model nope") {
		t.Errorf("second send err = %v, want the server's message", err)
	}
}

func TestGRPCStreamingStopsWithTheContext(t *testing.T) {
	_, addr := startStreamServer(t)
	send := streamClient(t, addr, "ok")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := send(ctx, 0, Step{}); !errors.Is(err, context.Canceled) {
		t.Errorf("send on a cancelled context: err = %v, want context.Canceled", err)
	}
}

func TestGRPCMetadataGoesWithEveryCall(t *testing.T) {
	srv, addr := startStreamServer(t)
	c, err := NewGRPC(GRPCOptions{Addr: addr, Model: "ok", Streaming: true, Metadata: metadata.Pairs("authorization", "Bearer t0k")})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	check := func(what string) {
		t.Helper()
		md := srv.md.Swap(nil)
		if md == nil || !slices.Equal(md.Get("authorization"), []string{"Bearer t0k"}) {
			t.Errorf("%s: the server saw metadata %v, want authorization", what, md)
		}
	}
	if _, err := c.Model(t.Context()); err == nil {
		t.Fatal("Model succeeded against a server without metadata")
	}
	check("unary call")
	in := &tensor.Tensor{Name: "IN", DType: tensor.FP32, Shape: tensor.Shape{1}, Data: make([]byte, 4)}
	send, err := c.Prepare(Model{Name: "ok"}, [][]*tensor.Tensor{{in}})
	if err != nil {
		t.Fatal(err)
	}
	if err := send(t.Context(), 0, Step{}); err != nil {
		t.Fatal(err)
	}
	check("stream")
}
