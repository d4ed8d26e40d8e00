package v2grpc

import (
	"context"
	"errors"
	"log/slog"

	_ "github.com/ferryml/ferry/internal/grpcdeflate" // deflate, which Triton's clients offer
	_ "google.golang.org/grpc/encoding/gzip"          // and gzip: requests compressed so are answered so

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthgrpc "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/internal/shm"
)

// Core is the serving API this transport calls: core's one API, which every transport
// shares.
type Core = core.API

// Options configure a Server.
type Options struct {
	Logger *slog.Logger
	// Limits bound every request. The zero value means the core's Limits(); a
	// MaxGRPCMessageSize of 0 means core.DefaultLimits' (never grpc-go's 4 MiB default,
	// which breaks tritonclient's large tensors).
	Limits core.Limits
	// SharedMemory holds the regions of the shared memory extension (shm.go); nil
	// refuses to register any. The caller owns it and closes it after the server stops.
	SharedMemory *shm.Registry
}

// Server implements inference.GRPCInferenceServiceServer over a Core. It holds no
// per-request state; one Server may be registered on several grpc.Servers.
type Server struct {
	inference.UnimplementedGRPCInferenceServiceServer

	core   Core
	log    *slog.Logger
	limits core.Limits
	health *health.Server
	shm    *shm.Registry
}

var _ inference.GRPCInferenceServiceServer = (*Server)(nil)

// New builds a Server. It starts nothing and does not register itself; see Register.
func New(c Core, opts Options) *Server {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	lim := opts.Limits
	if lim == (core.Limits{}) {
		lim = c.Limits()
	}
	if lim.MaxGRPCMessageSize <= 0 {
		lim.MaxGRPCMessageSize = core.DefaultLimits().MaxGRPCMessageSize
	}
	s := &Server{core: c, log: log, limits: lim, health: health.NewServer(), shm: opts.SharedMemory}
	s.SetServing(false) // until the caller says the models it needs are loaded
	return s
}

// ServerOptions are the grpc.Server options this service needs: message size limits
// raised to Limits.MaxGRPCMessageSize in both directions (grpc-go's 4 MiB default
// breaks tritonclient's large tensors), and the codec that recycles
// raw_input_contents buffers (codec.go). The server that cmd/ferry builds adds its own
// (stream workers, the interceptor chain) after these.
func (s *Server) ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.MaxRecvMsgSize(s.limits.MaxGRPCMessageSize),
		grpc.MaxSendMsgSize(s.limits.MaxGRPCMessageSize),
		grpc.ForceServerCodecV2(newInferCodec()),
	}
}

// Register adds inference.GRPCInferenceService and grpc.health.v1.Health to r. A
// grpc.Server passed here must be built with ServerOptions, or large tensors fail.
func (s *Server) Register(r grpc.ServiceRegistrar) {
	inference.RegisterGRPCInferenceServiceServer(r, s)
	healthgrpc.RegisterHealthServer(r, healthService{Server: s.health, ready: s.core.Ready})
}

// SetServing sets the health status of the server ("") and of the inference service,
// which starts as NOT_SERVING. Call SetServing(true) once core is ready to serve, and
// SetServing(false) first when draining. Check also consults core.Ready at call time,
// as Triton's does, so it never answers SERVING from a core that is not ready; Watch
// streams (gRPC client-side health checking) see the changes made here.
func (s *Server) SetServing(serving bool) {
	st := healthgrpc.HealthCheckResponse_NOT_SERVING
	if serving {
		st = healthgrpc.HealthCheckResponse_SERVING
	}
	s.health.SetServingStatus("", st)
	s.health.SetServingStatus(inference.GRPCInferenceService_ServiceDesc.ServiceName, st)
}

// healthService is the standard health service whose Check also consults core's
// readiness at call time, as Triton's does, so a probe never sees SERVING from a core
// that is not ready.
type healthService struct {
	*health.Server
	ready func() bool
}

func (h healthService) Check(ctx context.Context, req *healthgrpc.HealthCheckRequest) (*healthgrpc.HealthCheckResponse, error) {
	res, err := h.Server.Check(ctx, req)
	if err != nil {
		return nil, err
	}
	if res.GetStatus() == healthgrpc.HealthCheckResponse_SERVING && !h.ready() {
		return &healthgrpc.HealthCheckResponse{Status: healthgrpc.HealthCheckResponse_NOT_SERVING}, nil
	}
	return res, nil
}

// ServerLive implements inference.GRPCInferenceServiceServer.
func (s *Server) ServerLive(context.Context, *inference.ServerLiveRequest) (*inference.ServerLiveResponse, error) {
	return &inference.ServerLiveResponse{Live: s.core.Live()}, nil
}

// ServerReady implements inference.GRPCInferenceServiceServer.
func (s *Server) ServerReady(context.Context, *inference.ServerReadyRequest) (*inference.ServerReadyResponse, error) {
	return &inference.ServerReadyResponse{Ready: s.core.Ready()}, nil
}

// ModelReady implements inference.GRPCInferenceServiceServer. As released Triton does
// (InferenceServer::ModelIsReady), a name that names no model (unknown, empty, or one no
// model folder can have) and an unknown version answer OK with ready=false, which
// tritonclient.grpc's is_model_ready() turns into False; only a version that is not a
// number is INVALID_ARGUMENT. REST keeps answering 404 for an unknown model.
func (s *Server) ModelReady(ctx context.Context, req *inference.ModelReadyRequest) (*inference.ModelReadyResponse, error) {
	if core.CheckModelName(req.GetName()) != nil {
		return &inference.ModelReadyResponse{}, nil
	}
	ready, err := s.core.ModelReady(ctx, req.GetName(), req.GetVersion())
	if errors.Is(err, core.ErrNotFound) {
		return &inference.ModelReadyResponse{}, nil
	}
	if err != nil {
		return nil, s.statusError(err)
	}
	return &inference.ModelReadyResponse{Ready: ready}, nil
}

// ServerMetadata implements inference.GRPCInferenceServiceServer.
func (s *Server) ServerMetadata(context.Context, *inference.ServerMetadataRequest) (*inference.ServerMetadataResponse, error) {
	md := s.core.Metadata()
	return &inference.ServerMetadataResponse{Name: md.Name, Version: md.Version, Extensions: md.Extensions}, nil
}

// ModelMetadata implements inference.GRPCInferenceServiceServer.
func (s *Server) ModelMetadata(ctx context.Context, req *inference.ModelMetadataRequest) (*inference.ModelMetadataResponse, error) {
	md, err := s.core.ModelMetadata(ctx, req.GetName(), req.GetVersion())
	if err != nil {
		return nil, s.statusError(err)
	}
	return &inference.ModelMetadataResponse{
		Name:     md.Name,
		Versions: md.Versions,
		Platform: md.Platform,
		Inputs:   tensorMetadata(md.Inputs),
		Outputs:  tensorMetadata(md.Outputs),
	}, nil
}

func tensorMetadata(ts []core.TensorMetadata) []*inference.ModelMetadataResponse_TensorMetadata {
	out := make([]*inference.ModelMetadataResponse_TensorMetadata, len(ts))
	for i, t := range ts {
		out[i] = &inference.ModelMetadataResponse_TensorMetadata{Name: t.Name, Datatype: t.DataType, Shape: t.Shape}
	}
	return out
}

// ModelConfig implements inference.GRPCInferenceServiceServer.
func (s *Server) ModelConfig(ctx context.Context, req *inference.ModelConfigRequest) (*inference.ModelConfigResponse, error) {
	cfg, err := s.core.ModelConfig(ctx, req.GetName(), req.GetVersion())
	if err != nil {
		return nil, s.statusError(err)
	}
	return &inference.ModelConfigResponse{Config: cfg}, nil
}

// ModelStatistics implements inference.GRPCInferenceServiceServer.
func (s *Server) ModelStatistics(ctx context.Context, req *inference.ModelStatisticsRequest) (*inference.ModelStatisticsResponse, error) {
	stats, err := s.core.ModelStatistics(ctx, req.GetName(), req.GetVersion())
	if err != nil {
		return nil, s.statusError(err)
	}
	return encodeStatistics(stats), nil
}
