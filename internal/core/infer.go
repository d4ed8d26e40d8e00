package core

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/internal/modelconfig"
	"github.com/ferryml/ferry/internal/scheduler"
	"github.com/ferryml/ferry/internal/tensor"
)

// Infer runs one request on the model version it names (an alias resolved), or, when
// it names none, on the version its endpoint's routing policy picks (route.go); a
// shadow copy, when the policy samples one, runs after the answer (shadow.go).
func (s *Server) Infer(ctx context.Context, req *InferRequest) (*InferResponse, error) {
	if s.tracer != nil {
		return s.tracedInfer(ctx, req) // trace.go
	}
	return s.serve(ctx, req)
}

// serve is Infer, within the request's span when it is traced.
func (s *Server) serve(ctx context.Context, req *InferRequest) (*InferResponse, error) {
	start := time.Now()
	policy := s.routes.Get(req.Model)
	version, route, shadow, err := routeBy(policy, req)
	if err != nil {
		return nil, err
	}
	if err := CheckModelName(req.Model); err != nil {
		return nil, err
	}
	l, err := s.repo.Acquire(ctx, req.Model, version)
	if errors.Is(err, ErrNotFound) {
		if now := s.routes.Get(req.Model); now != policy {
			// The policy moved between the decision and the lease, and the version it
			// chose was let go meanwhile (an endpoint publishes a move, then lets the
			// old version go): decide again under the new policy.
			if version, route, shadow, err = routeBy(now, req); err == nil {
				l, err = s.repo.Acquire(ctx, req.Model, version)
			}
		}
	}
	if err != nil {
		return nil, err
	}
	defer l.Release()
	traceRoute(req, version, route, shadow)
	req.route = route
	resp, err := s.infer(ctx, l, req, start)
	if shadow != "" && shadow != l.Version {
		s.shadow(req, l.Version, shadow, resp, err)
	}
	return resp, err
}

// infer runs req on the leased version.
func (s *Server) infer(ctx context.Context, l *Lease, req *InferRequest, start time.Time) (*InferResponse, error) {
	if req.Prepare != nil {
		if err := req.Prepare(s.metadata(l), l.Config.GetMaxBatchSize() > 0); err != nil {
			return nil, err
		}
	}
	if s.obs != nil {
		s.obs.ObserveInFlight(l.Model, l.Version, 1)
		defer s.obs.ObserveInFlight(l.Model, l.Version, -1)
	}
	fail := func(err error) (*InferResponse, error) { return s.failed(l, req, start, err) }
	items, outputs, err := s.check(l.Config, req)
	if err != nil {
		return fail(err)
	}
	done, err := s.admit(ctx, l, req, items) // admission.go
	if err != nil {
		return nil, err // counted by admission's own metrics: a tenant's quota is not the version's failure
	}
	admitted := time.Now()
	resp, err := s.run(ctx, l, req, start, items, outputs)
	if done != nil {
		done(time.Since(admitted), err)
	}
	return resp, err
}

// run runs an admitted request with its checked items and outputs.
func (s *Server) run(ctx context.Context, l *Lease, req *InferRequest, start time.Time, items int, outputs []string) (*InferResponse, error) {
	fail := func(err error) (*InferResponse, error) { return s.failed(l, req, start, err) }
	if isEnsemble(l) {
		return s.inferEnsemble(ctx, l, req, start, items, outputs) // ensemble.go: its steps come back through Infer
	}
	sreq, err := schedulerRequest(req, outputs)
	if err != nil {
		return fail(err)
	}
	cached, hit := s.cacheGet(l, req, outputs, items, start) // cache.go
	if hit != nil {
		return hit, nil
	}
	submitted := submitTime(req) // trace.go
	res, err := l.Scheduler.Submit(ctx, sreq)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fail(deadlineError(l, start))
		}
		return fail(s.runError(l, err))
	}
	if l.Config.GetMaxBatchSize() == 0 {
		res.Timing.Batch = 1 // a model that does not batch runs one item per request
	}
	resp := &InferResponse{Model: l.Model, Version: l.Version, ID: req.ID, Outputs: res.Outputs}
	if err := applyClassification(resp, req.Outputs, l.Config.GetMaxBatchSize() > 0); err != nil {
		return fail(err)
	}
	s.cachePut(l, cached, resp)
	s.finish(l, req, resp, outcome{items: items, start: start, total: time.Since(start), timing: res.Timing, submitted: submitted})
	return resp, nil
}

// deadlineError is the answer to a request whose own deadline (gRPC's, or the
// Ferry-Timeout header) passed before it was answered, wherever it was then (queue,
// backend, upstream): DEADLINE_EXCEEDED / 504, naming the deadline.
func deadlineError(l *Lease, start time.Time) error {
	return &wrapped{msg: fmt.Sprintf("model '%s' version %s: the request's deadline (gRPC deadline or Ferry-Timeout header) passed after %s, before it was answered",
		l.Model, l.Version, time.Since(start).Round(time.Millisecond)), kind: ErrUnavailable, cause: context.DeadlineExceeded}
}

// runError turns what the scheduler and backend return into the core vocabulary.
func (s *Server) runError(l *Lease, err error) error {
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &wrapped{msg: fmt.Sprintf("model '%s' version %s: request ended before it ran: %v", l.Model, l.Version, err),
			kind: ErrUnavailable, cause: err} // transports that know deadlines (gRPC) keep their meaning
	case errors.Is(err, scheduler.ErrClosed):
		return Unavailablef("model '%s' version %s is unloading", l.Model, l.Version)
	case errors.Is(err, scheduler.ErrQueueFull), errors.Is(err, scheduler.ErrTimeout):
		return Unavailablef("model '%s' version %s: %v", l.Model, l.Version, err)
	case errors.Is(err, ErrInvalid), errors.Is(err, ErrUnavailable):
		return err
	}
	var bad interface{ InvalidInput() bool }
	if errors.As(err, &bad) && bad.InvalidInput() {
		return Invalidf("model '%s' version %s: %v", l.Model, l.Version, err)
	}
	var busy interface{ Unavailable() bool } // a backend whose upstream is down or overloaded
	if errors.As(err, &busy) && busy.Unavailable() {
		return Unavailablef("model '%s' version %s: %v", l.Model, l.Version, err)
	}
	return fmt.Errorf("model '%s' version %s: inference failed: %w", l.Model, l.Version, err)
}

// failed counts a request to l, started at start, that ended in err, and returns err.
func (s *Server) failed(l *Lease, req *InferRequest, start time.Time, err error) (*InferResponse, error) {
	s.finish(l, req, nil, outcome{start: start, total: time.Since(start), err: err})
	return nil, err
}

// finish counts a request to l in the statistics and tells the taps.
func (s *Server) finish(l *Lease, req *InferRequest, resp *InferResponse, o outcome) {
	if o.cached {
		s.stats.recordCacheHit(l.Model, l.Version, o.items, o.lookup, o.total)
	} else {
		s.stats.record(l.Model, l.Version, o.err == nil, o.items, o.timing, o.total)
	}
	s.traceOutcome(l, req, o)
	s.tapped(l, req, resp, o)
}

// check validates the inputs against the model's config and returns the number of items
// (batch rows) and the output names to compute.
func (s *Server) check(cfg *inference.ModelConfig, req *InferRequest) (int, []string, error) {
	maxBatch := int64(cfg.GetMaxBatchSize())
	byName := make(map[string]*tensor.Tensor, len(req.Inputs))
	for _, t := range req.Inputs {
		if _, dup := byName[t.Name]; dup {
			return 0, nil, &InputError{Input: t.Name, Reason: "given more than once"}
		}
		byName[t.Name] = t
	}
	batch := int64(-1)
	for _, in := range cfg.GetInput() {
		t, ok := byName[in.GetName()]
		if !ok {
			if in.GetOptional() {
				continue
			}
			return 0, nil, &InputError{Input: in.GetName(), Reason: fmt.Sprintf("model '%s' expects this input; it is missing", cfg.GetName())}
		}
		delete(byName, in.GetName())
		b, err := s.checkInput(in, t, maxBatch)
		if err != nil {
			return 0, nil, err
		}
		if batch >= 0 && b != batch {
			return 0, nil, &InputError{Input: t.Name, Reason: fmt.Sprintf("batch size %d differs from the other inputs' %d", b, batch)}
		}
		batch = b
	}
	for name := range byName {
		return 0, nil, &InputError{Input: name, Reason: fmt.Sprintf("model '%s' has no such input", cfg.GetName())}
	}
	outputs, err := requestedOutputs(cfg, req.Outputs)
	if err != nil {
		return 0, nil, err
	}
	if batch < 0 || maxBatch == 0 {
		batch = 1
	}
	return int(batch), outputs, nil
}

// checkInput checks one input's datatype, shape and data; it returns its batch size.
func (s *Server) checkInput(in *inference.ModelInput, t *tensor.Tensor, maxBatch int64) (int64, error) {
	if err := s.limits.CheckShape(t.Name, t.Shape); err != nil {
		return 0, err
	}
	if want := modelconfig.DType(in.GetDataType()); t.DType != want {
		return 0, &InputError{Input: t.Name, Reason: fmt.Sprintf("datatype %s does not match the model's %s", t.DType, want)}
	}
	dims := tensor.Shape(in.GetDims())
	shape := t.Shape
	var batch int64 = 1
	if maxBatch > 0 {
		if len(shape) == 0 {
			return 0, &InputError{Input: t.Name, Reason: fmt.Sprintf("shape [] has no batch dimension; expected [-1]+%v", dims)}
		}
		batch, shape = shape[0], shape[1:]
		if batch < 1 || batch > maxBatch {
			return 0, &InputError{Input: t.Name, Reason: fmt.Sprintf("batch size %d is outside 1..%d (max_batch_size)", batch, maxBatch)}
		}
	}
	if !shape.Matches(dims) && !reshapeMatches(in, shape) {
		want := dims.String()
		if maxBatch > 0 {
			want = "[-1," + want[1:]
		}
		return 0, &InputError{Input: t.Name, Reason: fmt.Sprintf("shape %v does not match the model's %s", t.Shape, want)}
	}
	if err := t.Validate(); err != nil {
		return 0, &InputError{Input: t.Name, Reason: err.Error()}
	}
	return batch, nil
}

// reshapeMatches accepts the shape a config's reshape names, as Triton does.
func reshapeMatches(in *inference.ModelInput, shape tensor.Shape) bool {
	r := in.GetReshape()
	return r != nil && shape.Matches(tensor.Shape(r.GetShape()))
}

// requestedOutputs checks the requested output names; none means all, in config order.
func requestedOutputs(cfg *inference.ModelConfig, req []RequestedOutput) ([]string, error) {
	if len(req) == 0 {
		names := make([]string, len(cfg.GetOutput()))
		for i, o := range cfg.GetOutput() {
			names[i] = o.GetName()
		}
		return names, nil
	}
	known := make(map[string]bool, len(cfg.GetOutput()))
	for _, o := range cfg.GetOutput() {
		known[o.GetName()] = true
	}
	names := make([]string, len(req))
	for i, o := range req {
		if !known[o.Name] {
			return nil, Invalidf("output %q: model '%s' has no such output", o.Name, cfg.GetName())
		}
		names[i] = o.Name
	}
	return names, nil
}

// schedulerRequest carries the V2 scheduling parameters ("priority", and "timeout" in
// microseconds, as Triton names them) to the scheduler.
func schedulerRequest(req *InferRequest, outputs []string) (*scheduler.Request, error) {
	sr := &scheduler.Request{Inputs: req.Inputs, Outputs: outputs, Background: req.Background}
	var err error
	if sr.Sequence, err = sequenceOf(req.Parameters); err != nil { // sequence.go
		return nil, err
	}
	if v, ok := req.Parameters["priority"]; ok {
		p, ok := asInt(v)
		if !ok || p < 0 {
			return nil, Invalidf("parameter \"priority\": want a non-negative integer, got %v", v)
		}
		sr.Priority = int(min(p, 1<<31))
	}
	if v, ok := req.Parameters["timeout"]; ok {
		us, ok := asInt(v)
		if !ok || us < 0 {
			return nil, Invalidf("parameter \"timeout\": want microseconds as a non-negative integer, got %v", v)
		}
		sr.Timeout = time.Duration(min(us, int64(time.Duration(1<<62)/time.Microsecond))) * time.Microsecond
	}
	return sr, nil
}

// asInt accepts the integer forms a parameter arrives in (JSON numbers decode as float64
// or int64 depending on the transport).
func asInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case int:
		return int64(x), true
	case uint64:
		return int64(min(x, 1<<62)), true
	case float64:
		if x == float64(int64(x)) {
			return int64(x), true
		}
	}
	return 0, false
}
