package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/ferryml/ferry/internal/tensor"
)

// Input is one model input as the model's metadata declares it.
type Input struct {
	Name  string
	DType tensor.DType
	// Shape has -1 for each variable dimension; for a batching model Shape[0] is the
	// batch dimension.
	Shape tensor.Shape
}

// Model is what a benchmark needs to know about the model under test.
type Model struct {
	Name    string
	Version string // "" lets the server pick
	// MaxBatchSize is the configuration's max_batch_size: 0 means the model takes no
	// batch dimension, so every request is one item.
	MaxBatchSize int
	Inputs       []Input
	// Outputs are the output names the metadata lists, for requests that place them
	// in shared memory.
	Outputs []string
	// Sequence marks a stateful model (the config has sequence_batching): each request
	// belongs to a sequence and a sequence's requests are sent one after another.
	Sequence bool
}

// Stats is the part of the statistics extension a benchmark reads: its ratio over a
// level is the server's average batch size.
type Stats struct {
	InferenceCount uint64 // items inferred (rows), summed over the model's versions
	ExecutionCount uint64 // model executions (batches)
	// The phases of a successful request as the extension times them, for the
	// server's columns of perf_analyzer's CSV.
	Queue, ComputeInput, ComputeInfer, ComputeOutput Phase
}

// Phase is one cumulative duration of the statistics extension: how many times it
// was timed and their total.
type Phase struct {
	Count uint64
	Total time.Duration
}

// add adds o to p.
func (p *Phase) add(o Phase) { p.Count, p.Total = p.Count+o.Count, p.Total+o.Total }

// mean is the average over what happened between before and p, in µs; 0 when nothing
// did.
func (p Phase) mean(before Phase) float64 {
	if p.Count <= before.Count {
		return 0
	}
	return us((p.Total - before.Total) / time.Duration(p.Count-before.Count))
}

// Client is one protocol's connection to a server, for one model. Its methods are safe
// for concurrent use once Prepare has returned.
type Client interface {
	// Model fetches the model's metadata and configuration.
	Model(ctx context.Context) (Model, error)
	// Stats fetches the model's cumulative statistics.
	Stats(ctx context.Context) (Stats, error)
	// Prepare encodes one request per sample once, so that sending costs the client
	// as little as possible. Each sample is the inputs of one request.
	Prepare(m Model, samples [][]*tensor.Tensor) (Sender, error)
	// Close releases connections; it may be called after a failed setup.
	Close() error
}

// Sender sends request number i (which picks sample i modulo the number of samples),
// as step seq of a sequence, and waits for its response. seq is the zero Step for a
// model without sequences. A nil error means the server answered with success.
type Sender func(ctx context.Context, i int, seq Step) error

// Step places a request in a sequence of a stateful model: the V2 parameters
// sequence_id, sequence_start and sequence_end. The zero Step is outside any sequence.
type Step struct {
	ID         uint64
	Start, End bool
}

// ref names the model (and version) in messages.
func (m Model) ref() string {
	if m.Version == "" {
		return fmt.Sprintf("%q", m.Name)
	}
	return fmt.Sprintf("%q version %s", m.Name, m.Version)
}
