package v2client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/internal/tensor"
)

// GRPCOptions configure a gRPC client.
type GRPCOptions struct {
	Addr string      // host:port
	TLS  *tls.Config // nil: plaintext
	// Timeout bounds each call that has no earlier deadline; 0: only the context's.
	Timeout time.Duration
	// MaxMessageBytes bounds a message in either direction; 0 lifts grpc-go's 4 MiB
	// default to the protocol's 2 GiB, as tensors can be large.
	MaxMessageBytes int
	// DialOptions are added to the client's own (interceptors, connect parameters).
	DialOptions []grpc.DialOption
}

// GRPC is a V2 gRPC client of one server, over grpc-go. It is safe for concurrent use.
type GRPC struct {
	o    GRPCOptions
	conn *grpc.ClientConn
	api  inference.GRPCInferenceServiceClient
}

// NewGRPC builds a client; it connects on first use.
func NewGRPC(o GRPCOptions) (*GRPC, error) {
	if o.Addr == "" {
		return nil, errors.New("no gRPC address")
	}
	creds := insecure.NewCredentials()
	if o.TLS != nil {
		creds = credentials.NewTLS(o.TLS)
	}
	size := o.MaxMessageBytes
	if size <= 0 {
		size = math.MaxInt32
	}
	opts := append([]grpc.DialOption{grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(size), grpc.MaxCallSendMsgSize(size))}, o.DialOptions...)
	conn, err := grpc.NewClient(o.Addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("grpc %s: %w", o.Addr, err)
	}
	return &GRPC{o: o, conn: conn, api: inference.NewGRPCInferenceServiceClient(conn)}, nil
}

// Close closes the connection.
func (c *GRPC) Close() error { return c.conn.Close() }

// Conn is the client's connection, for other services on the same server.
func (c *GRPC) Conn() *grpc.ClientConn { return c.conn }

// API is the generated client, for the calls this package does not wrap.
func (c *GRPC) API() inference.GRPCInferenceServiceClient { return c.api }

// Model is a handle on one model; version "" lets the server choose.
func (c *GRPC) Model(name, version string) *GRPCModel {
	return &GRPCModel{c: c, name: name, version: version}
}

// ServerReady calls ServerReady: nil when the server is ready.
func (c *GRPC) ServerReady(ctx context.Context) error {
	ctx, cancel := c.bound(ctx)
	defer cancel()
	r, err := c.api.ServerReady(ctx, &inference.ServerReadyRequest{})
	if err != nil {
		return grpcError(err)
	}
	if !r.GetReady() {
		return errors.New("the server is not ready")
	}
	return nil
}

// RegisterSystemSharedMemory registers a POSIX shared memory region (key is its
// shm_open name) under name.
func (c *GRPC) RegisterSystemSharedMemory(ctx context.Context, name, key string, offset, size uint64) error {
	ctx, cancel := c.bound(ctx)
	defer cancel()
	_, err := c.api.SystemSharedMemoryRegister(ctx, &inference.SystemSharedMemoryRegisterRequest{
		Name: name, Key: key, Offset: offset, ByteSize: size})
	return grpcError(err)
}

// UnregisterSystemSharedMemory unregisters the region called name.
func (c *GRPC) UnregisterSystemSharedMemory(ctx context.Context, name string) error {
	ctx, cancel := c.bound(ctx)
	defer cancel()
	_, err := c.api.SystemSharedMemoryUnregister(ctx, &inference.SystemSharedMemoryUnregisterRequest{Name: name})
	return grpcError(err)
}

// bound applies the per-call timeout, when there is one.
func (c *GRPC) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if c.o.Timeout <= 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, c.o.Timeout)
}

// grpcError turns a status other than OK into an *Error; nil stays nil.
func grpcError(err error) error {
	if err == nil {
		return nil
	}
	st := status.Convert(err)
	return &Error{Code: st.Code(), Msg: st.Message()}
}

// GRPCModel is a gRPC client's handle on one model (version).
type GRPCModel struct {
	c             *GRPC
	name, version string
}

// Metadata calls ModelMetadata.
func (m *GRPCModel) Metadata(ctx context.Context) (Metadata, error) {
	ctx, cancel := m.c.bound(ctx)
	defer cancel()
	md, err := m.c.api.ModelMetadata(ctx, &inference.ModelMetadataRequest{Name: m.name, Version: m.version})
	if err != nil {
		return Metadata{}, grpcError(err)
	}
	out := Metadata{Name: md.GetName(), Versions: md.GetVersions(), Platform: md.GetPlatform()}
	if out.Inputs, err = grpcMeta(md.GetInputs()); err != nil {
		return Metadata{}, fmt.Errorf("%w: model metadata: input %w", ErrBadResponse, err)
	}
	if out.Outputs, err = grpcMeta(md.GetOutputs()); err != nil {
		return Metadata{}, fmt.Errorf("%w: model metadata: output %w", ErrBadResponse, err)
	}
	return out, nil
}

func grpcMeta(ts []*inference.ModelMetadataResponse_TensorMetadata) ([]TensorMeta, error) {
	out := make([]TensorMeta, len(ts))
	for i, t := range ts {
		dt, err := tensor.ParseDType(t.GetDatatype())
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %w", t.GetName(), err)
		}
		out[i] = TensorMeta{Name: t.GetName(), DType: dt, Shape: t.GetShape()}
	}
	return out, nil
}

// Config calls ModelConfig.
func (m *GRPCModel) Config(ctx context.Context) (Config, error) {
	ctx, cancel := m.c.bound(ctx)
	defer cancel()
	r, err := m.c.api.ModelConfig(ctx, &inference.ModelConfigRequest{Name: m.name, Version: m.version})
	if err != nil {
		return Config{}, grpcError(err)
	}
	cfg := r.GetConfig()
	return Config{MaxBatchSize: max(cfg.GetMaxBatchSize(), 0), Sequence: cfg.GetSequenceBatching() != nil}, nil
}

// Ready calls ModelReady: nil when the model (version) is ready.
func (m *GRPCModel) Ready(ctx context.Context) error {
	ctx, cancel := m.c.bound(ctx)
	defer cancel()
	r, err := m.c.api.ModelReady(ctx, &inference.ModelReadyRequest{Name: m.name, Version: m.version})
	if err != nil {
		return grpcError(err)
	}
	if !r.GetReady() {
		return &Error{Code: 0, Msg: "model is not ready"}
	}
	return nil
}

// Stats calls ModelStatistics: one entry per version the server reports.
func (m *GRPCModel) Stats(ctx context.Context) ([]VersionStats, error) {
	ctx, cancel := m.c.bound(ctx)
	defer cancel()
	r, err := m.c.api.ModelStatistics(ctx, &inference.ModelStatisticsRequest{Name: m.name, Version: m.version})
	if err != nil {
		return nil, grpcError(err)
	}
	ph := func(d *inference.StatisticDuration) Phase {
		return Phase{Count: d.GetCount(), Total: time.Duration(d.GetNs())}
	}
	out := make([]VersionStats, len(r.GetModelStats()))
	for i, s := range r.GetModelStats() {
		is := s.GetInferenceStats()
		out[i] = VersionStats{Name: s.GetName(), Version: s.GetVersion(), InferenceCount: s.GetInferenceCount(), ExecutionCount: s.GetExecutionCount(),
			Success: ph(is.GetSuccess()), Fail: ph(is.GetFail()), Queue: ph(is.GetQueue()), ComputeInput: ph(is.GetComputeInput()),
			ComputeInfer: ph(is.GetComputeInfer()), ComputeOutput: ph(is.GetComputeOutput()), CacheHit: ph(is.GetCacheHit()), Miss: ph(is.GetCacheMiss())}
	}
	return out, nil
}

// EncodeGRPC builds r's ModelInferRequest for this model, with the tensors in
// raw_input_contents. The message shares r's tensor bytes; it can be sent any number of
// times, concurrently.
func (m *GRPCModel) EncodeGRPC(r *Request) (*inference.ModelInferRequest, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	req := &inference.ModelInferRequest{ModelName: m.name, ModelVersion: m.version, Id: r.ID,
		Inputs: make([]*inference.ModelInferRequest_InferInputTensor, len(r.Inputs)), RawInputContents: make([][]byte, len(r.Inputs))}
	for i, t := range r.Inputs {
		req.Inputs[i] = &inference.ModelInferRequest_InferInputTensor{Name: t.Name, Datatype: t.DType.String(), Shape: t.Shape}
		if r.InputRegions != nil {
			req.Inputs[i].Parameters = grpcParams(r.InputRegions[i].params())
			continue
		}
		req.RawInputContents[i] = t.Data
	}
	if r.InputRegions != nil {
		req.RawInputContents = nil
	}
	for i, name := range r.Outputs {
		o := &inference.ModelInferRequest_InferRequestedOutputTensor{Name: name}
		if r.OutputRegions != nil {
			o.Parameters = grpcParams(r.OutputRegions[i].params())
		}
		req.Outputs = append(req.Outputs, o)
	}
	if len(r.Parameters) > 0 {
		req.Parameters = make(map[string]*inference.InferParameter, len(r.Parameters))
		for _, p := range r.Parameters {
			v, err := grpcParam(p)
			if err != nil {
				return nil, err
			}
			req.Parameters[p.Key] = v
		}
	}
	return req, nil
}

// grpcParams converts parameters whose types are known good.
func grpcParams(ps []Param) map[string]*inference.InferParameter {
	out := make(map[string]*inference.InferParameter, len(ps))
	for _, p := range ps {
		out[p.Key], _ = grpcParam(p)
	}
	return out
}

func grpcParam(p Param) (*inference.InferParameter, error) {
	switch v := p.Value.(type) {
	case bool:
		return &inference.InferParameter{ParameterChoice: &inference.InferParameter_BoolParam{BoolParam: v}}, nil
	case string:
		return &inference.InferParameter{ParameterChoice: &inference.InferParameter_StringParam{StringParam: v}}, nil
	case int:
		return &inference.InferParameter{ParameterChoice: &inference.InferParameter_Int64Param{Int64Param: int64(v)}}, nil
	case int64:
		return &inference.InferParameter{ParameterChoice: &inference.InferParameter_Int64Param{Int64Param: v}}, nil
	case uint64:
		return &inference.InferParameter{ParameterChoice: &inference.InferParameter_Uint64Param{Uint64Param: v}}, nil
	case float64:
		return &inference.InferParameter{ParameterChoice: &inference.InferParameter_DoubleParam{DoubleParam: v}}, nil
	}
	return nil, fmt.Errorf("parameter %q: a %T value (want bool, string, int64, uint64 or float64)", p.Key, p.Value)
}

// Infer encodes r, sends it and decodes the answer.
func (m *GRPCModel) Infer(ctx context.Context, r *Request) (*Response, error) {
	req, err := m.EncodeGRPC(r)
	if err != nil {
		return nil, err
	}
	for k, v := range r.Header {
		ctx = metadata.AppendToOutgoingContext(ctx, k, v)
	}
	return m.Send(ctx, req)
}

// Send sends an encoded request and decodes the answer.
func (m *GRPCModel) Send(ctx context.Context, req *inference.ModelInferRequest) (*Response, error) {
	ctx, cancel := m.c.bound(ctx)
	defer cancel()
	resp, err := m.c.api.ModelInfer(injectMetadata(ctx), req) // trace.go
	if err != nil {
		return nil, grpcError(err)
	}
	out, err := DecodeGRPC(resp)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadResponse, err)
	}
	return out, nil
}

// DecodeGRPC reads a ModelInferResponse: raw_output_contents, or typed contents from a
// server that sends those.
func DecodeGRPC(resp *inference.ModelInferResponse) (*Response, error) {
	raw := resp.GetRawOutputContents()
	if len(raw) != 0 && len(raw) != len(resp.GetOutputs()) {
		return nil, fmt.Errorf("%d raw_output_contents for %d outputs", len(raw), len(resp.GetOutputs()))
	}
	out := &Response{ModelName: resp.GetModelName(), ModelVersion: resp.GetModelVersion(), ID: resp.GetId(),
		Outputs: make([]*tensor.Tensor, len(resp.GetOutputs()))}
	for i, o := range resp.GetOutputs() {
		dt, err := tensor.ParseDType(o.GetDatatype())
		if err != nil {
			return nil, fmt.Errorf("output %q: %w", o.GetName(), err)
		}
		var data []byte
		if len(raw) > 0 {
			data = raw[i]
		} else if data, err = rawFromContents(dt, o.GetContents()); err != nil {
			return nil, fmt.Errorf("output %q: %w", o.GetName(), err)
		}
		t := &tensor.Tensor{Name: o.GetName(), DType: dt, Shape: o.GetShape(), Data: data}
		if err := t.Validate(); err != nil {
			return nil, fmt.Errorf("output %q: %w", o.GetName(), err)
		}
		out.Outputs[i] = t
	}
	if len(resp.GetParameters()) > 0 {
		out.Parameters = make(map[string]any, len(resp.GetParameters()))
		for k, p := range resp.GetParameters() {
			out.Parameters[k] = paramValue(p)
		}
	}
	return out, nil
}

// paramValue is an InferParameter's value as a Go value.
func paramValue(p *inference.InferParameter) any {
	switch v := p.GetParameterChoice().(type) {
	case *inference.InferParameter_BoolParam:
		return v.BoolParam
	case *inference.InferParameter_Int64Param:
		return v.Int64Param
	case *inference.InferParameter_StringParam:
		return v.StringParam
	case *inference.InferParameter_DoubleParam:
		return v.DoubleParam
	case *inference.InferParameter_Uint64Param:
		return v.Uint64Param
	}
	return nil
}
