package remote

import (
	"context"
	"fmt"
	"github.com/ferryml/ferry/internal/netguard"
	"log/slog"
	"sync"
	"time"

	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/internal/modelconfig"
	"github.com/ferryml/ferry/internal/tensor"
)

// Backend opens remote model instances. One Backend serves a whole server: the instances
// of one model version share their upstream state (connection, breaker, retry budget,
// latency window, health check), which lives while any of them is open.
type Backend struct {
	log *slog.Logger
	now func() time.Time

	mu     sync.Mutex
	shared map[string]*upstream // by version key and options

	guard *netguard.Policy // which addresses upstreams may have; nil: any (SetGuard)
}

// SetGuard makes every upstream connection, of models loaded from now on, pass p: an
// upstream url comes from a model config, which a load request may carry. Call it
// before loading models.
func (b *Backend) SetGuard(p *netguard.Policy) { b.guard = p }

// New returns a Backend that logs upstream state changes to log (nil: discard).
func New(log *slog.Logger) *Backend {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Backend{log: log, now: time.Now, shared: map[string]*upstream{}}
}

// Inspect returns a remote model's inputs and outputs for config auto-complete: from the
// config itself when it lists them all with types and dims, else from the upstream's
// model metadata. An upstream that cannot be reached then fails the load.
func (b *Backend) Inspect(ctx context.Context, cfg *inference.ModelConfig) (modelconfig.IO, error) {
	o, err := ParseOptions(cfg)
	if err != nil {
		return modelconfig.IO{}, err
	}
	if io, ok := configIO(cfg); ok {
		return io, nil
	}
	c, err := newClient(o, b.guard)
	if err != nil {
		return modelconfig.IO{}, err
	}
	defer c.close()
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	io, err := c.metadata(ctx)
	if err != nil {
		return modelconfig.IO{}, fmt.Errorf("reading the upstream's model metadata for auto-complete (list every input and output in config.pbtxt to load without it): %w", err)
	}
	return io, nil
}

// configIO describes the model from a config that lists every input and output with its
// data type and dims.
func configIO(cfg *inference.ModelConfig) (modelconfig.IO, bool) {
	if len(cfg.GetInput()) == 0 || len(cfg.GetOutput()) == 0 {
		return modelconfig.IO{}, false
	}
	shape := func(dims []int64, r *inference.ModelTensorReshape) []int64 {
		if r != nil {
			dims = r.GetShape()
		}
		if cfg.GetMaxBatchSize() > 0 {
			return append([]int64{-1}, dims...)
		}
		return append([]int64{}, dims...)
	}
	var io modelconfig.IO
	for _, in := range cfg.GetInput() {
		if in.GetDataType() == inference.DataType_TYPE_INVALID || len(in.GetDims()) == 0 {
			return modelconfig.IO{}, false
		}
		io.Inputs = append(io.Inputs, modelconfig.TensorInfo{Name: in.GetName(), DType: modelconfig.DType(in.GetDataType()), Shape: shape(in.GetDims(), in.GetReshape())})
	}
	for _, out := range cfg.GetOutput() {
		if out.GetDataType() == inference.DataType_TYPE_INVALID || len(out.GetDims()) == 0 {
			return modelconfig.IO{}, false
		}
		io.Outputs = append(io.Outputs, modelconfig.TensorInfo{Name: out.GetName(), DType: modelconfig.DType(out.GetDataType()), Shape: shape(out.GetDims(), out.GetReshape())})
	}
	return io, true
}

// Open returns an instance of a remote model version. key names the version (its folder):
// instances opened with the same key and parameters share one upstream. The first one
// checks the upstream's readiness before returning and starts the periodic check.
func (b *Backend) Open(ctx context.Context, key string, cfg *inference.ModelConfig) (*Instance, error) {
	o, err := ParseOptions(cfg)
	if err != nil {
		return nil, err
	}
	id := fmt.Sprintf("%s\x00%+v", key, o)
	b.mu.Lock()
	u := b.shared[id]
	fresh := u == nil
	if fresh {
		c, err := newClient(o, b.guard)
		if err != nil {
			b.mu.Unlock()
			return nil, err
		}
		u = newUpstream(o, c, b.log.With("model", cfg.GetName(), "upstream", o.URL), b.now)
		u.model, u.version = cfg.GetName(), versionOf(key)
		b.shared[id] = u
	}
	u.refs++
	b.mu.Unlock()
	if fresh {
		u.watch(ctx) // this instance's reference keeps u open meanwhile
	}
	return &Instance{b: b, id: id, u: u}, nil
}

func (b *Backend) release(id string, u *upstream) {
	b.mu.Lock()
	u.refs--
	last := u.refs == 0
	if last {
		delete(b.shared, id)
	}
	b.mu.Unlock()
	if last {
		u.close()
	}
}

// Instance is one execution instance of a remote model: it forwards each (batched)
// request to the upstream. It implements the scheduler's Instance, and Ready for the
// repository's readiness.
type Instance struct {
	b    *Backend
	id   string
	u    *upstream
	once sync.Once
}

// Execute forwards in to the upstream and returns the outputs named in want (all when
// want is nil), with hedging, retries and the circuit breaker as configured.
func (in *Instance) Execute(ctx context.Context, inputs []*tensor.Tensor, want []string) ([]*tensor.Tensor, error) {
	return in.u.call(ctx, inputs, want)
}

// Ready returns nil while the upstream's last health check passed, else why it failed.
func (in *Instance) Ready() error { return in.u.ready() }

// Close releases the instance; the last one of a version closes the connection and stops
// the health check.
func (in *Instance) Close() error {
	in.once.Do(func() { in.b.release(in.id, in.u) })
	return nil
}
