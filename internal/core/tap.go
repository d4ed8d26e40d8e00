package core

import (
	"sync"
	"time"

	"github.com/ferryml/ferry/internal/scheduler"
	"github.com/ferryml/ferry/internal/tensor"
)

// Tap sees every inference request that reached a model version, once its outcome is
// known: the one seam metrics, an inference log, drift monitoring, shadow comparison
// and a rollout's analysis read requests from. Finished runs on the request's goroutine
// before Infer returns, so it must be quick: a subscriber with more to do hands the
// record (or what it needs of it) to a goroutine of its own.
//
// The record and its tensors are valid only during Finished: the record is reused, and
// the tensors are the request's and the response's own (a transport may reuse an input
// buffer once it has answered). A subscriber that keeps anything copies it
// (Record.Keep). Without a subscriber no record is built.
type Tap interface {
	Finished(r *Record)
}

// Record is one finished request.
type Record struct {
	Model, Version, ID string
	// Route says how the version was chosen: "" when the request named it (or has no
	// routing policy), else the router's route ("match", "sticky", "weight", "default")
	// or RouteShadow for a shadow copy.
	Route string
	// Shadow, on a shadow copy's record, compares it with the primary; nil otherwise.
	Shadow     *ShadowResult
	Priority   int        // the priority level the request asked for (0: the model's default)
	Parameters Parameters // the request's parameters as the client sent them
	// TraceParent is the client's W3C trace context ("" when it sent none).
	TraceParent string
	Inputs      []*tensor.Tensor
	Outputs     []*tensor.Tensor // nil when Err is set
	Items       int              // rows (items) the request carried; 0 when it failed
	Start       time.Time
	Total       time.Duration // from Start to the outcome, in core
	// Timing is the scheduler's breakdown; zero for a cache hit, an ensemble (its steps
	// have their own records) and a request that failed before it ran.
	Timing scheduler.Timing
	Cached bool  // answered from the response cache
	Err    error // nil on success
}

// Keep returns a copy of r whose tensors the subscriber owns.
func (r *Record) Keep() *Record {
	c := *r
	c.Inputs, c.Outputs = cloneTensors(r.Inputs), cloneTensors(r.Outputs)
	return &c
}

func cloneTensors(ts []*tensor.Tensor) []*tensor.Tensor {
	if ts == nil {
		return nil
	}
	out := make([]*tensor.Tensor, len(ts))
	for i, t := range ts {
		c := *t
		c.Shape = t.Shape.Clone()
		c.Data = append([]byte(nil), t.Data...)
		out[i] = &c
	}
	return out
}

// tapped tells every Tap about a request to l that ended; a no-op without subscribers.
func (s *Server) tapped(l *Lease, req *InferRequest, resp *InferResponse, o outcome) {
	if len(s.taps) == 0 {
		return
	}
	r := records.Get().(*Record)
	*r = Record{Model: l.Model, Version: l.Version, ID: req.ID, Route: string(req.route), Parameters: req.Parameters, TraceParent: req.TraceParent,
		Inputs: req.Inputs, Items: o.items, Start: o.start, Total: o.total, Timing: o.timing, Cached: o.cached, Err: o.err}
	if p, ok := asInt(req.Parameters["priority"]); ok {
		r.Priority = int(p)
	}
	if resp != nil && o.err == nil {
		r.Outputs = resp.Outputs
	}
	if req.mirror != nil {
		r.Shadow = req.mirror.record(r.Outputs)
	}
	for _, t := range s.taps {
		t.Finished(r)
	}
	*r = Record{} // drop the references before the record goes back
	records.Put(r)
}

// records are reused: a subscriber keeps nothing of a record past Finished (Keep
// copies), so a request costs its taps no allocation.
var records = sync.Pool{New: func() any { return new(Record) }}

// outcome is how a request to a version ended, as the statistics and taps count it.
type outcome struct {
	items  int
	start  time.Time
	total  time.Duration
	timing scheduler.Timing
	cached bool
	lookup time.Duration // with cached: the cache lookup's time
	// submitted is when a traced request went to the scheduler (zero otherwise).
	submitted time.Time
	err       error
}
