package bench

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/ferryml/ferry/internal/tensor"
	"github.com/ferryml/ferry/internal/v2client"
)

// HTTPOptions configure an HTTPClient.
type HTTPOptions struct {
	URL     string // host:port, or a URL with http:// or https://
	Model   string
	Version string // "" lets the server pick
	// Binary sends inputs and asks for outputs in the binary tensor data extension
	// instead of JSON arrays.
	Binary bool
	// MaxConns is how many connections stay open for reuse; at least the largest number
	// of requests in flight, or connections churn and the client measures itself.
	MaxConns int
	Timeout  time.Duration // per request, and per metadata or statistics call; 0 is defaultTimeout
	// Header goes on every request (perf_analyzer's -H), e.g. an Authorization for a
	// server behind a gateway.
	Header http.Header
	// SharedMemory, when set, sends the tensors through system shared memory instead
	// (JSON requests whose tensors name regions); Binary is then ignored.
	SharedMemory *SharedMemory
}

// defaultTimeout bounds a request when the options set no timeout: a hung server
// fails the run instead of stalling it.
const defaultTimeout = time.Minute

// HTTPClient speaks the V2 REST protocol to one model, through v2client: the bodies are
// encoded once, and answers are read but not decoded.
type HTTPClient struct {
	o     HTTPOptions
	c     *v2client.REST
	model *v2client.RESTModel
	shm   *shmPool // set by Prepare with SharedMemory
}

var _ Client = (*HTTPClient)(nil)

// NewHTTP checks the options and builds a client; it connects on first use.
func NewHTTP(o HTTPOptions) (*HTTPClient, error) {
	if o.Model == "" {
		return nil, errors.New("no model name")
	}
	if o.Timeout <= 0 {
		o.Timeout = defaultTimeout
	}
	c, err := v2client.NewREST(v2client.RESTOptions{URL: o.URL, Timeout: o.Timeout, MaxConns: max(o.MaxConns, 2), Header: o.Header})
	if err != nil {
		return nil, err
	}
	return &HTTPClient{o: o, c: c, model: c.Model(o.Model, o.Version)}, nil
}

// Close releases the shared memory regions, if any, and closes the idle connections;
// requests still running keep theirs until done.
func (c *HTTPClient) Close() error {
	var err error
	if c.shm != nil {
		err = c.shm.close()
	}
	c.c.Close()
	return err
}

// Model reads GET /v2/models/{m} for the inputs and .../config for max_batch_size.
func (c *HTTPClient) Model(ctx context.Context) (Model, error) {
	return describe(ctx, c.o.Model, c.o.Version, c.model)
}

// Stats reads GET /v2/models/{m}/stats, summed over the versions it lists.
func (c *HTTPClient) Stats(ctx context.Context) (Stats, error) {
	return statsOf(c.model.Stats(ctx))
}

// Prepare encodes each sample's request body once (with SharedMemory, once per set of
// regions, as each set is made).
func (c *HTTPClient) Prepare(m Model, samples [][]*tensor.Tensor) (Sender, error) {
	if len(samples) == 0 {
		return nil, errors.New("no request to prepare")
	}
	if c.o.SharedMemory != nil {
		return c.prepareShm(m, samples)
	}
	reqs := make([]*v2client.Request, len(samples))
	for i, s := range samples {
		reqs[i] = &v2client.Request{Inputs: s, Binary: c.o.Binary}
	}
	return c.sender(reqs)
}

// sender encodes the requests and sends request i as reqs[i modulo their number].
func (c *HTTPClient) sender(reqs []*v2client.Request) (Sender, error) {
	bodies := make([]v2client.Body, len(reqs))
	for i, r := range reqs {
		var err error
		if bodies[i], err = v2client.EncodeREST(r); err != nil {
			return nil, err
		}
	}
	return func(ctx context.Context, i int, seq Step) error {
		b := bodies[i%len(bodies)]
		if seq != (Step{}) {
			var err error
			if b, err = b.WithParameters(seq.params()...); err != nil {
				return err
			}
		}
		return c.model.SendDiscard(ctx, b)
	}, nil
}

// params are the step's request parameters, typed as tritonclient sends them: the id
// as an integer, the flags as booleans.
func (s Step) params() []v2client.Param {
	return []v2client.Param{{Key: "sequence_id", Value: s.ID}, {Key: "sequence_start", Value: s.Start}, {Key: "sequence_end", Value: s.End}}
}

// v2model is what both protocols' model handles answer.
type v2model interface {
	Metadata(ctx context.Context) (v2client.Metadata, error)
	Config(ctx context.Context) (v2client.Config, error)
}

// describe reads a model's metadata and configuration into a Model.
func describe(ctx context.Context, name, version string, m v2model) (Model, error) {
	md, err := m.Metadata(ctx)
	if err != nil {
		return Model{}, fmt.Errorf("model metadata: %w", err)
	}
	cfg, err := m.Config(ctx)
	if err != nil {
		return Model{}, fmt.Errorf("model config: %w", err)
	}
	out := Model{Name: name, Version: version, MaxBatchSize: int(cfg.MaxBatchSize), Sequence: cfg.Sequence}
	for _, in := range md.Inputs {
		out.Inputs = append(out.Inputs, Input{Name: in.Name, DType: in.DType, Shape: in.Shape})
	}
	for _, o := range md.Outputs {
		out.Outputs = append(out.Outputs, o.Name)
	}
	return out, nil
}

// statsOf sums a model's statistics over the versions the server lists.
func statsOf(vs []v2client.VersionStats, err error) (Stats, error) {
	if err != nil {
		return Stats{}, fmt.Errorf("model statistics: %w", err)
	}
	var s Stats
	for _, v := range vs {
		s.InferenceCount += v.InferenceCount
		s.ExecutionCount += v.ExecutionCount
		s.Queue.add(Phase(v.Queue))
		s.ComputeInput.add(Phase(v.ComputeInput))
		s.ComputeInfer.add(Phase(v.ComputeInfer))
		s.ComputeOutput.add(Phase(v.ComputeOutput))
	}
	return s, nil
}
