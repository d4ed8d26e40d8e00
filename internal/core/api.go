package core

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/internal/router"
	"github.com/ferryml/ferry/internal/settings"
	"github.com/ferryml/ferry/internal/tensor"
)

// Parameters are V2 request/response parameters. Values are bool, int64, float64 or
// string, the types both the JSON and the gRPC encodings carry.
type Parameters map[string]any

// API is the serving API every transport calls; *Server implements it. Every method may
// be called concurrently. Errors use core's vocabulary (ErrNotFound, ErrInvalid, ...),
// which each transport maps to its status codes in one place.
type API interface {
	Live() bool
	Ready() bool
	Metadata() ServerMetadata
	Limits() Limits
	ModelMetadata(ctx context.Context, model, version string) (*ModelMetadata, error)
	// ModelReady fails with a *NotFoundError for an unknown model or version.
	ModelReady(ctx context.Context, model, version string) (bool, error)
	ModelConfig(ctx context.Context, model, version string) (*inference.ModelConfig, error)
	// ModelStatistics reports every model when model is "" and every version when
	// version is "".
	ModelStatistics(ctx context.Context, model, version string) ([]ModelStats, error)
	RepositoryIndex(ctx context.Context, readyOnly bool) ([]ModelIndexEntry, error)
	LoadModel(ctx context.Context, model string, opts LoadOptions) error
	UnloadModel(ctx context.Context, model string, dependents bool) error
	Infer(ctx context.Context, req *InferRequest) (*InferResponse, error)
	// TraceSettings and LogSettings apply an update (none when empty) and return the
	// settings after it; model "" is the global trace setting.
	TraceSettings(ctx context.Context, model string, update settings.TraceUpdate) (settings.TraceSetting, error)
	LogSettings(ctx context.Context, update settings.LogUpdate) (settings.LogSetting, error)
}

var _ API = (*Server)(nil)

// InferRequest is one inference request, whatever transport it came from.
type InferRequest struct {
	Model string
	// Version is "" to let the model's version policy pick its newest ready version.
	Version    string
	ID         string
	Inputs     []*tensor.Tensor
	Parameters Parameters
	// Outputs names the outputs to return; empty means all of the model's outputs.
	Outputs []RequestedOutput
	// TraceParent is the W3C trace context the client sent with the request (the
	// traceparent HTTP header or gRPC metadata, checked by TraceParent), "" when none:
	// the taps see it, so what they record joins the client's trace.
	TraceParent string
	// Header reads the request's headers (HTTP) or metadata (gRPC), for routes that
	// match or hash one (sticky A/B); nil when there are none.
	Header Header
	// Prepare, when set, fills in Inputs once Infer has picked the version that will run
	// the request, from that version's metadata (batching: its max_batch_size > 0), under
	// the same lease: a raw binary REST body takes its shape from the model, and asking
	// for the metadata first would lease twice and could meet another version. Its error
	// fails the request before it counts in the statistics.
	Prepare func(md *ModelMetadata, batching bool) error
	// Background queues the request behind online traffic (a batch job's rows): the
	// dynamic batcher takes it only when no other request waits. Only the in-process
	// lanes set it; no transport does.
	Background bool

	route  router.Route // how Infer chose the version, for the taps
	mirror *shadowCopy  // set on a shadow copy
	step   bool         // an ensemble's step: admitted with its ensemble
	span   trace.Span   // the request's InferRequest span while it records (trace.go)
}

// OutputParameters are the parameters the request gave its output name (nil if it
// named none, or none with that name).
func (r *InferRequest) OutputParameters(name string) map[string]any {
	for _, o := range r.Outputs {
		if o.Name == name {
			return o.Parameters
		}
	}
	return nil
}

// RequestedOutput is one entry of a request's "outputs". Parameters carries per-output
// transport options (such as binary_data) back to the transport untouched.
type RequestedOutput struct {
	Name       string
	Parameters Parameters
}

// InferResponse is the result of an InferRequest. Outputs follow the order of the
// request's Outputs, or the model's output order when none were named.
type InferResponse struct {
	Model      string
	Version    string
	ID         string
	Outputs    []*tensor.Tensor
	Parameters Parameters
}

// ServerMetadata answers GET /v2.
type ServerMetadata struct {
	Name       string
	Version    string
	Extensions []string
}

// TensorMetadata describes one model input or output. Shape includes the batch dimension
// (-1) when the model batches, as V2 metadata does.
type TensorMetadata struct {
	Name     string
	DataType string
	Shape    []int64
}

// ModelMetadata answers GET /v2/models/{m}[/versions/{v}].
type ModelMetadata struct {
	Name     string
	Versions []string
	Platform string
	Inputs   []TensorMetadata
	Outputs  []TensorMetadata
}

// Model states, as Triton's repository index reports them.
const (
	StateUnknown     = "UNKNOWN"
	StateReady       = "READY"
	StateUnavailable = "UNAVAILABLE"
	StateLoading     = "LOADING"
	StateUnloading   = "UNLOADING"
)

// ModelIndexEntry is one row of the repository index.
type ModelIndexEntry struct {
	Name    string
	Version string
	State   string
	Reason  string
}

// LoadOptions are the repository-extension load parameters. Config, when set, is a JSON
// model configuration that replaces config.pbtxt; Files are override files (path relative
// to the model directory, such as "1/model.onnx") supplied with the request.
type LoadOptions struct {
	Config string
	Files  map[string][]byte
}

// Duration is a count and total time, the shape of the statistics extension's durations.
type Duration struct {
	Count uint64
	Total time.Duration
}

// BatchStats are the statistics of executions at one batch size.
type BatchStats struct {
	BatchSize     uint64
	ComputeInput  Duration
	ComputeInfer  Duration
	ComputeOutput Duration
}

// ModelStats are the statistics extension's numbers for one model version.
type ModelStats struct {
	Name           string
	Version        string
	LastInference  time.Time // zero if never
	InferenceCount uint64    // items (batch rows) inferred
	ExecutionCount uint64    // backend runs
	Success        Duration  // end-to-end time of successful requests
	Fail           Duration
	Queue          Duration
	ComputeInput   Duration
	ComputeInfer   Duration
	ComputeOutput  Duration
	CacheHit       Duration
	CacheMiss      Duration
	Batches        []BatchStats
}

// Limits bound what a request may ask of the server. Transports apply them while
// decoding, before allocating, and core checks them again for every transport.
type Limits struct {
	MaxBodyBytes       int64 // a larger body is refused with ErrTooLarge (HTTP 413)
	MaxTensorElements  int64 // elements in one tensor
	MaxRank            int   // dimensions of one tensor
	MaxGRPCMessageSize int   // bytes of one gRPC message, either direction
}

// DefaultLimits are generous enough for real clients (tritonclient sends up to 2 GiB
// over gRPC) while refusing absurd shapes before any allocation.
func DefaultLimits() Limits {
	return Limits{
		MaxBodyBytes:       256 << 20,
		MaxTensorElements:  64 << 20,
		MaxRank:            16,
		MaxGRPCMessageSize: 1 << 30,
	}
}

// CheckShape applies the rank and element limits to one tensor's shape.
func (l Limits) CheckShape(name string, shape tensor.Shape) error {
	if l.MaxRank > 0 && len(shape) > l.MaxRank {
		return &InputError{Input: name, Reason: "rank " + itoa(int64(len(shape))) + " exceeds the limit of " + itoa(int64(l.MaxRank))}
	}
	n, err := shape.NumElements()
	if err != nil {
		return &InputError{Input: name, Reason: err.Error()}
	}
	if l.MaxTensorElements > 0 && n > l.MaxTensorElements {
		return &InputError{Input: name, Reason: "shape " + shape.String() + " has " + itoa(n) + " elements, over the limit of " + itoa(l.MaxTensorElements)}
	}
	return nil
}
