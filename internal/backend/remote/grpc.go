package remote

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/internal/modelconfig"
	"github.com/ferryml/ferry/internal/tensor"
)

// grpcClient speaks V2 gRPC with raw_input_contents / raw_output_contents.
type grpcClient struct {
	o    Options
	conn *grpc.ClientConn
	api  inference.GRPCInferenceServiceClient
}

func newGRPC(o Options) (*grpcClient, error) {
	creds := insecure.NewCredentials()
	if o.TLS != nil {
		creds = credentials.NewTLS(o.TLS)
	}
	conn, err := grpc.NewClient(o.Addr,
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(math.MaxInt32), grpc.MaxCallSendMsgSize(math.MaxInt32)),
		// grpc-go's reconnect backoff grows to 2 minutes; an upstream that comes back
		// should be found within seconds, when the breaker or health check next asks.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 2 * time.Second},
			MinConnectTimeout: min(o.Timeout, 20*time.Second),
		}))
	if err != nil {
		return nil, modelconfig.ParamCause("url", err)
	}
	return &grpcClient{o: o, conn: conn, api: inference.NewGRPCInferenceServiceClient(conn)}, nil
}

func (c *grpcClient) close() { c.conn.Close() }

// prepare builds the request message once; every try sends the same message.
func (c *grpcClient) prepare(in []*tensor.Tensor, want []string) (sender, error) {
	req := &inference.ModelInferRequest{ModelName: c.o.Model, ModelVersion: c.o.Version,
		Inputs: make([]*inference.ModelInferRequest_InferInputTensor, len(in)), RawInputContents: make([][]byte, len(in))}
	for i, t := range in {
		req.Inputs[i] = &inference.ModelInferRequest_InferInputTensor{Name: t.Name, Datatype: t.DType.String(), Shape: t.Shape}
		req.RawInputContents[i] = t.Data
	}
	for _, name := range want {
		req.Outputs = append(req.Outputs, &inference.ModelInferRequest_InferRequestedOutputTensor{Name: name})
	}
	return func(ctx context.Context) ([]*tensor.Tensor, error) {
		resp, err := c.api.ModelInfer(ctx, req)
		if err != nil {
			return nil, c.rpcError(ctx, err)
		}
		outs, err := decodeGRPC(resp)
		if err != nil {
			return nil, &Error{Upstream: c.o.URL, Model: c.o.Model, Msg: "unreadable response: " + err.Error(), kind: failure}
		}
		return selectOutputs(outs, want)
	}, nil
}

func decodeGRPC(resp *inference.ModelInferResponse) ([]*tensor.Tensor, error) {
	raw := resp.GetRawOutputContents()
	if len(raw) != 0 && len(raw) != len(resp.GetOutputs()) {
		return nil, fmt.Errorf("%d raw_output_contents for %d outputs", len(raw), len(resp.GetOutputs()))
	}
	outs := make([]*tensor.Tensor, len(resp.GetOutputs()))
	for i, o := range resp.GetOutputs() {
		dt, err := tensor.ParseDType(o.GetDatatype())
		if err != nil {
			return nil, fmt.Errorf("output %q: %v", o.GetName(), err)
		}
		var data []byte
		if len(raw) > 0 {
			data = raw[i]
		} else if data, err = rawFromContents(dt, o.GetContents()); err != nil {
			return nil, fmt.Errorf("output %q: %v", o.GetName(), err)
		}
		t := &tensor.Tensor{Name: o.GetName(), DType: dt, Shape: o.GetShape(), Data: data}
		if err := t.Validate(); err != nil {
			return nil, fmt.Errorf("output %q: %v", o.GetName(), err)
		}
		outs[i] = t
	}
	return outs, nil
}

// rpcError classifies a failed RPC the way restClient.statusError classifies statuses.
func (c *grpcClient) rpcError(ctx context.Context, err error) error {
	st := status.Convert(err)
	e := &Error{Upstream: c.o.URL, Model: c.o.Model, Status: "gRPC " + st.Code().String(), Msg: st.Message(), kind: refused}
	switch st.Code() {
	case codes.Canceled, codes.DeadlineExceeded:
		e.kind, e.busy = failure, true
		switch {
		case errors.Is(ctx.Err(), context.Canceled):
			e.kind, e.busy, e.Msg = abandoned, false, "try cancelled"
		case errors.Is(ctx.Err(), context.DeadlineExceeded), st.Code() == codes.DeadlineExceeded:
			// The upstream sees our per-try deadline too, and may report it first.
			e.Status, e.Msg = "", fmt.Sprintf("no answer within the per-try timeout (%v)", c.o.Timeout)
		}
	case codes.Unavailable:
		e.kind, e.busy = failure, true
	case codes.Internal, codes.Unknown, codes.DataLoss, codes.Aborted:
		e.kind = failure
	case codes.ResourceExhausted:
		e.busy = true
	case codes.InvalidArgument, codes.OutOfRange, codes.FailedPrecondition:
		e.invalid = true
	}
	return e
}

func (c *grpcClient) metadata(ctx context.Context) (modelconfig.IO, error) {
	md, err := c.api.ModelMetadata(ctx, &inference.ModelMetadataRequest{Name: c.o.Model, Version: c.o.Version})
	if err != nil {
		return modelconfig.IO{}, c.rpcError(ctx, err)
	}
	conv := func(ts []*inference.ModelMetadataResponse_TensorMetadata) []restTensor {
		out := make([]restTensor, len(ts))
		for i, t := range ts {
			out[i] = restTensor{Name: t.GetName(), Datatype: t.GetDatatype(), Shape: t.GetShape()}
		}
		return out
	}
	io, err := tensorInfos(conv(md.GetInputs()), conv(md.GetOutputs()))
	if err != nil {
		return modelconfig.IO{}, &Error{Upstream: c.o.URL, Model: c.o.Model, Msg: "model metadata: " + err.Error(), kind: refused}
	}
	// max_batch_size comes from the upstream's configuration, when it serves one.
	if cr, err := c.api.ModelConfig(ctx, &inference.ModelConfigRequest{Name: c.o.Model, Version: c.o.Version}); err == nil {
		io.MaxBatchSize = max(cr.GetConfig().GetMaxBatchSize(), 0)
	}
	return io, nil
}

func (c *grpcClient) ready(ctx context.Context) error {
	r, err := c.api.ModelReady(ctx, &inference.ModelReadyRequest{Name: c.o.Model, Version: c.o.Version})
	if err != nil {
		return c.rpcError(ctx, err)
	}
	if !r.GetReady() {
		return &Error{Upstream: c.o.URL, Model: c.o.Model, Status: "gRPC OK", Msg: "model is not ready", kind: failure, busy: true}
	}
	return nil
}
