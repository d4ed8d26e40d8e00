package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/ferryml/ferry/internal/bench/rawgrpc"
	"github.com/ferryml/ferry/internal/grpcdeflate"
	_ "google.golang.org/grpc/encoding/gzip" // --grpc-compression-algorithm gzip

	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/internal/tensor"
	"github.com/ferryml/ferry/internal/v2client"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
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
	// Conns is how many connections requests take turns on; 0 is one. One connection
	// batches its frames into fewer syscalls; several spread the HTTP/2 framing over
	// more cores (Triton's client library shares a channel among at most 6 clients).
	Conns int
	// Compression is the grpc-encoding of every call: "" or "none", "gzip" or "deflate"
	// (perf_analyzer's --grpc-compression-algorithm).
	Compression string
	// Metadata goes with every call (perf_analyzer's -H), e.g. an authorization for a
	// server behind a gateway.
	Metadata metadata.MD
	// Streaming sends each request as a message on a ModelStreamInfer stream (one
	// stream per request in flight, reused), as perf_analyzer's --streaming does,
	// instead of one unary ModelInfer call each.
	Streaming bool
	// SharedMemory, when set, sends the tensors through system shared memory instead of
	// raw_input_contents.
	SharedMemory *SharedMemory
}

// GRPCClient speaks the V2 gRPC protocol to one model. Inference calls go through
// rawgrpc, which frames them over HTTP/2 itself at a fraction of grpc-go's CPU per call
// (the generator shares the machine with the server it measures); the few control calls
// (metadata, config, statistics, shared memory) go through v2client, over grpc-go.
type GRPCClient struct {
	o     GRPCOptions
	ctl   *v2client.GRPC
	model *v2client.GRPCModel
	infer *rawgrpc.Client
	shm   *shmPool // set by Prepare with SharedMemory
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
	switch o.Compression {
	case "none":
		o.Compression = ""
	case "", "gzip", grpcdeflate.Name:
	default:
		return nil, fmt.Errorf("compression %q: want none, gzip or deflate", o.Compression)
	}
	if o.Timeout <= 0 {
		o.Timeout = defaultTimeout
	}
	if o.MaxMessageBytes <= 0 {
		o.MaxMessageBytes = 1 << 30
	}
	infer, err := rawgrpc.NewClient(o.Addr, rawgrpc.Options{Metadata: o.Metadata, Compression: o.Compression,
		Timeout: o.Timeout, MaxRecvBytes: o.MaxMessageBytes, Conns: o.Conns})
	if err != nil {
		return nil, err
	}
	var opts []grpc.DialOption
	if md := o.Metadata; len(md) > 0 {
		opts = append(opts, grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			return invoker(metadata.NewOutgoingContext(ctx, md), method, req, reply, cc, opts...)
		}))
	}
	ctl, err := v2client.NewGRPC(v2client.GRPCOptions{Addr: o.Addr, Timeout: o.Timeout, MaxMessageBytes: o.MaxMessageBytes, DialOptions: opts})
	if err != nil {
		infer.Close()
		return nil, err
	}
	return &GRPCClient{o: o, ctl: ctl, model: ctl.Model(o.Model, o.Version), infer: infer}, nil
}

// Close releases the shared memory regions, if any, and closes the connections.
func (c *GRPCClient) Close() error {
	var err error
	if c.shm != nil {
		err = c.shm.close() // before the connection it unregisters them on closes
	}
	return errors.Join(err, c.infer.Close(), c.ctl.Close())
}

// Model calls ModelMetadata for the inputs and ModelConfig for max_batch_size.
func (c *GRPCClient) Model(ctx context.Context) (Model, error) {
	return describe(ctx, c.o.Model, c.o.Version, c.model)
}

// Stats calls ModelStatistics, summed over the versions it returns.
func (c *GRPCClient) Stats(ctx context.Context) (Stats, error) {
	return statsOf(c.model.Stats(ctx))
}

// Prepare builds each sample's ModelInferRequest once, with the tensors in
// raw_input_contents (with SharedMemory, naming regions instead, once per set of
// regions as each set is made), and encodes it once: as perf_analyzer does, the load
// generator spends its share of the machine on the wire, not on protobuf. Steps of a
// sequence carry parameters of their own, so they are encoded per call.
func (c *GRPCClient) Prepare(m Model, samples [][]*tensor.Tensor) (Sender, error) {
	if len(samples) == 0 {
		return nil, errors.New("no request to prepare")
	}
	if c.o.SharedMemory != nil {
		return c.prepareShm(m, samples)
	}
	reqs := make([]*v2client.Request, len(samples))
	for i, s := range samples {
		reqs[i] = &v2client.Request{Inputs: s}
	}
	return c.sender(reqs)
}

// sender encodes the requests and sends request i as reqs[i modulo their number].
func (c *GRPCClient) sender(reqs []*v2client.Request) (Sender, error) {
	msgs := make([]*inference.ModelInferRequest, len(reqs))
	wire := make([]rawgrpc.Message, len(reqs))
	for i, r := range reqs {
		var err error
		if msgs[i], err = c.model.EncodeGRPC(r); err != nil {
			return nil, err
		}
		if wire[i], err = c.encode(msgs[i]); err != nil {
			return nil, err
		}
	}
	// message is what goes on the wire for request i at step seq.
	message := func(i int, seq Step) (rawgrpc.Message, error) {
		if seq == (Step{}) {
			return wire[i%len(wire)], nil
		}
		return c.encode(inSequence(msgs[i%len(msgs)], seq))
	}
	if c.o.Streaming {
		return c.streamSender(message), nil
	}
	return func(ctx context.Context, i int, seq Step) error {
		m, err := message(i, seq)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(ctx, c.o.Timeout)
		defer cancel()
		b, err := c.infer.Call(ctx, inference.GRPCInferenceService_ModelInfer_FullMethodName, m)
		if err != nil {
			return err
		}
		reply, err := readInferReply(b)
		if err != nil {
			return err
		}
		return reply.err()
	}, nil
}

// encode is r in protobuf wire format, framed for the wire.
func (c *GRPCClient) encode(r *inference.ModelInferRequest) (rawgrpc.Message, error) {
	b, err := proto.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	return c.infer.Encode(b)
}

// inSequence is req as step seq of a sequence: a new message with the sequence
// parameters that shares req's tensors.
func inSequence(req *inference.ModelInferRequest, seq Step) *inference.ModelInferRequest {
	return &inference.ModelInferRequest{
		ModelName: req.ModelName, ModelVersion: req.ModelVersion, Id: req.Id,
		Inputs: req.Inputs, Outputs: req.Outputs, RawInputContents: req.RawInputContents,
		// As tritonclient sends them: the id as int64_param, the flags as bool_param.
		Parameters: map[string]*inference.InferParameter{
			"sequence_id":    {ParameterChoice: &inference.InferParameter_Int64Param{Int64Param: int64(seq.ID)}},
			"sequence_start": {ParameterChoice: &inference.InferParameter_BoolParam{BoolParam: seq.Start}},
			"sequence_end":   {ParameterChoice: &inference.InferParameter_BoolParam{BoolParam: seq.End}},
		},
	}
}

// streamSender sends each request on an idle ModelStreamInfer stream from a free
// list, opening one when none is idle, so there are as many streams as requests in
// flight at most.
func (c *GRPCClient) streamSender(message func(int, Step) (rawgrpc.Message, error)) Sender {
	var mu sync.Mutex
	var idle []*rawgrpc.Stream
	return func(ctx context.Context, i int, seq Step) error {
		m, err := message(i, seq)
		if err != nil {
			return err
		}
		mu.Lock()
		var st *rawgrpc.Stream
		if n := len(idle); n > 0 {
			st, idle = idle[n-1], idle[:n-1]
		}
		mu.Unlock()
		if st == nil {
			if st, err = c.infer.NewStream(ctx, inference.GRPCInferenceService_ModelStreamInfer_FullMethodName); err != nil {
				return err
			}
		}
		// A stream has no per-message deadline: a request that times out or is
		// cancelled ends its stream, which is then not reused.
		ctx, cancel := context.WithTimeout(ctx, c.o.Timeout)
		defer cancel()
		if err := roundTrip(ctx, st, m); err != nil {
			st.Close()
			return err
		}
		mu.Lock()
		idle = append(idle, st)
		mu.Unlock()
		return nil
	}
}

// roundTrip sends one request on st and reads its response.
func roundTrip(ctx context.Context, st *rawgrpc.Stream, m rawgrpc.Message) error {
	if err := st.Send(m); err != nil {
		return err
	}
	b, err := st.Recv(ctx)
	if err == io.EOF {
		return errors.New("stream ended by the server before its response")
	}
	if err != nil {
		return err
	}
	reply, err := readStreamReply(b)
	if err != nil {
		return err
	}
	if reply.errMsg != "" {
		return errors.New(reply.errMsg)
	}
	return reply.infer.err()
}
