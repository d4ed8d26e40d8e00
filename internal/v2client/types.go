package v2client

import (
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ferryml/ferry/internal/tensor"
)

// TensorMeta is one input or output of a model's metadata.
type TensorMeta struct {
	Name  string
	DType tensor.DType
	Shape []int64 // -1 for a variable dimension
}

// Metadata is a model's metadata (GET /v2/models/{m}, ModelMetadata).
type Metadata struct {
	Name     string
	Versions []string
	Platform string
	Inputs   []TensorMeta
	Outputs  []TensorMeta
}

// Config is what a client needs of a model's configuration.
type Config struct {
	MaxBatchSize int32 // 0: the model does not batch
	Sequence     bool  // the model has a sequence batcher: requests need sequence ids
}

// Phase is one duration statistic: how many and how long in all.
type Phase struct {
	Count uint64
	Total time.Duration
}

// VersionStats is one model version's statistics (GET .../stats, ModelStatistics).
type VersionStats struct {
	Name, Version                 string
	InferenceCount                uint64 // items (rows) inferred
	ExecutionCount                uint64 // executions (batches)
	Success, Fail, Queue          Phase
	ComputeInput, ComputeInfer    Phase
	ComputeOutput, CacheHit, Miss Phase
}

// Param is one request parameter. Value is a bool, string, int64, uint64, int or
// float64: the types both protocols can carry.
type Param struct {
	Key   string
	Value any
}

// Request is one inference request.
type Request struct {
	ID         string
	Inputs     []*tensor.Tensor
	Outputs    []string // the outputs to return, in this order; nil: all of them
	Parameters []Param
	// Binary sends the tensors in REST's binary tensor data extension and asks for the
	// outputs the same way, instead of JSON arrays. gRPC always sends raw contents.
	Binary bool
	// Header goes with the request: HTTP headers over REST, metadata over gRPC (a
	// routing key such as x-user-id, a traceparent).
	Header map[string]string
	// InputRegions, when set, has the server read every input from a registered shared
	// memory region instead, input i from region i (Data is not sent; Name, DType and
	// Shape are).
	InputRegions []Region
	// OutputRegions, when set, has the server write each of Outputs into a region.
	OutputRegions []Region
}

// check refuses regions that do not pair up with the tensors.
func (r *Request) check() error {
	if r.InputRegions != nil && len(r.InputRegions) != len(r.Inputs) {
		return fmt.Errorf("%d input regions for %d inputs", len(r.InputRegions), len(r.Inputs))
	}
	if r.OutputRegions != nil && len(r.OutputRegions) != len(r.Outputs) {
		return fmt.Errorf("%d output regions for %d outputs", len(r.OutputRegions), len(r.Outputs))
	}
	return nil
}

// Region places a tensor in a registered shared memory region.
type Region struct {
	Name         string
	Offset, Size uint64
}

// params are the region's request parameters, as both protocols name them.
func (r Region) params() []Param {
	return []Param{{"shared_memory_region", r.Name}, {"shared_memory_offset", int64(r.Offset)}, {"shared_memory_byte_size", int64(r.Size)}}
}

// Response is one inference response.
type Response struct {
	ModelName, ModelVersion, ID string
	Outputs                     []*tensor.Tensor // in the order the server sent them
	Parameters                  map[string]any
}

// Output returns the output called name, or nil.
func (r *Response) Output(name string) *tensor.Tensor {
	for _, t := range r.Outputs {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// Select returns the outputs called names, in that order; an output the response lacks
// is an error naming it.
func (r *Response) Select(names []string) ([]*tensor.Tensor, error) {
	out := make([]*tensor.Tensor, len(names))
	for i, name := range names {
		if out[i] = r.Output(name); out[i] == nil {
			return nil, fmt.Errorf("the response has no output %q", name)
		}
	}
	return out, nil
}

// ErrBadResponse is matched by errors.Is for an answer the client cannot read: not V2,
// or tensors that do not fit their shapes. It is the server's fault, not the request's.
var ErrBadResponse = errors.New("unreadable response")

// Error is a server's refusal: a REST status other than 200 or a gRPC status other than
// OK, with the server's message (or, Code OK, a gRPC ready check answered "not ready").
// Transport failures (no connection, a timeout) and ErrBadResponse are other errors.
type Error struct {
	HTTPStatus int        // REST: the status code; 0 over gRPC
	Code       codes.Code // gRPC: the status code; codes.OK over REST
	Msg        string     // the server's error message
}

// Status is "HTTP 503" or "gRPC Unavailable".
func (e *Error) Status() string {
	if e.HTTPStatus != 0 {
		return fmt.Sprintf("HTTP %d", e.HTTPStatus)
	}
	return "gRPC " + e.Code.String()
}

func (e *Error) Error() string { return e.Status() + ": " + e.Msg }

// GRPCStatus lets status.Code and status.Convert read a gRPC refusal as grpc-go's own.
func (e *Error) GRPCStatus() *status.Status {
	if e.HTTPStatus != 0 {
		return status.New(codes.Unknown, e.Error())
	}
	return status.New(e.Code, e.Msg)
}
