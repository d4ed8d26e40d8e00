package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	inference "github.com/ferryml/ferry/internal/proto"
	"github.com/ferryml/ferry/internal/tensor"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// GRPCOptions configure a GRPCClient.
type GRPCOptions struct {
	Addr    string // host:port
	Model   string
	Version string        // "" lets the server pick
	Timeout time.Duration // per call; 0 is defaultTimeout
	// MaxMessageBytes raises grpc-go's 4 MiB default in both directions, so large
	// tensors fit; 0 keeps 1 GiB.
	MaxMessageBytes int
}

// GRPCClient speaks the V2 gRPC protocol to one model, over one connection (HTTP/2
// multiplexes the requests in flight).
type GRPCClient struct {
	o    GRPCOptions
	conn *grpc.ClientConn
	api  inference.GRPCInferenceServiceClient
}

var _ Client = (*GRPCClient)(nil)

// NewGRPC builds a client; it connects on first use.
func NewGRPC(o GRPCOptions) (*GRPCClient, error) {
	if o.Addr == "" {
		return nil, errors.New("no gRPC address")
	}
	if o.Model == "" {
		return nil, errors.New("no model name")
	}
	if o.Timeout <= 0 {
		o.Timeout = defaultTimeout
	}
	if o.MaxMessageBytes <= 0 {
		o.MaxMessageBytes = 1 << 30
	}
	conn, err := grpc.NewClient(o.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(o.MaxMessageBytes), grpc.MaxCallSendMsgSize(o.MaxMessageBytes)))
	if err != nil {
		return nil, fmt.Errorf("grpc %s: %w", o.Addr, err)
	}
	return &GRPCClient{o: o, conn: conn, api: inference.NewGRPCInferenceServiceClient(conn)}, nil
}

// Close closes the connection.
func (c *GRPCClient) Close() error { return c.conn.Close() }

// Model calls ModelMetadata for the inputs and ModelConfig for max_batch_size.
func (c *GRPCClient) Model(ctx context.Context) (Model, error) {
	ctx, cancel := context.WithTimeout(ctx, c.o.Timeout)
	defer cancel()
	md, err := c.api.ModelMetadata(ctx, &inference.ModelMetadataRequest{Name: c.o.Model, Version: c.o.Version})
	if err != nil {
		return Model{}, fmt.Errorf("model metadata: %w", err)
	}
	cfg, err := c.api.ModelConfig(ctx, &inference.ModelConfigRequest{Name: c.o.Model, Version: c.o.Version})
	if err != nil {
		return Model{}, fmt.Errorf("model config: %w", err)
	}
	m := Model{Name: c.o.Model, Version: c.o.Version, MaxBatchSize: int(cfg.GetConfig().GetMaxBatchSize())}
	for _, in := range md.GetInputs() {
		dt, err := tensor.ParseDType(in.GetDatatype())
		if err != nil {
			return Model{}, fmt.Errorf("model metadata: input %q: %w", in.GetName(), err)
		}
		m.Inputs = append(m.Inputs, Input{Name: in.GetName(), DType: dt, Shape: in.GetShape()})
	}
	return m, nil
}

// Stats calls ModelStatistics, summed over the versions it returns.
func (c *GRPCClient) Stats(ctx context.Context) (Stats, error) {
	ctx, cancel := context.WithTimeout(ctx, c.o.Timeout)
	defer cancel()
	resp, err := c.api.ModelStatistics(ctx, &inference.ModelStatisticsRequest{Name: c.o.Model, Version: c.o.Version})
	if err != nil {
		return Stats{}, fmt.Errorf("model statistics: %w", err)
	}
	var s Stats
	for _, m := range resp.GetModelStats() {
		s.InferenceCount += m.GetInferenceCount()
		s.ExecutionCount += m.GetExecutionCount()
	}
	return s, nil
}

// Prepare builds each sample's ModelInferRequest once, with the tensors in
// raw_input_contents. The messages are shared by every call and never modified.
func (c *GRPCClient) Prepare(_ Model, samples [][]*tensor.Tensor) (Sender, error) {
	if len(samples) == 0 {
		return nil, errors.New("no request to prepare")
	}
	reqs := make([]*inference.ModelInferRequest, len(samples))
	for i, s := range samples {
		r := &inference.ModelInferRequest{ModelName: c.o.Model, ModelVersion: c.o.Version}
		for _, t := range s {
			r.Inputs = append(r.Inputs, &inference.ModelInferRequest_InferInputTensor{
				Name: t.Name, Datatype: t.DType.String(), Shape: t.Shape,
			})
			r.RawInputContents = append(r.RawInputContents, t.Data)
		}
		reqs[i] = r
	}
	return func(ctx context.Context, i int) error {
		ctx, cancel := context.WithTimeout(ctx, c.o.Timeout)
		defer cancel()
		resp, err := c.api.ModelInfer(ctx, reqs[i%len(reqs)])
		if err != nil {
			return err
		}
		if len(resp.GetOutputs()) == 0 {
			return errors.New("response without outputs")
		}
		return nil
	}, nil
}
