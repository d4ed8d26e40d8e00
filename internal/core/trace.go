package core

import (
	"context"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/ferryml/ferry/internal/router"
)

// Span names and attributes of what core records of a request, under the transport's
// server span. There is no OpenTelemetry convention for model inference outside GenAI,
// so the names follow Triton's (InferRequest) and the attributes are Ferry's own.
const (
	SpanInfer        = "InferRequest"
	SpanQueue        = "queue"
	SpanCompute      = "compute"
	SpanEnsembleStep = "ensemble step"
	EventRoute       = "route"

	AttrModel      = "ferry.model.name"
	AttrVersion    = "ferry.model.version"
	AttrRequestID  = "ferry.request.id"
	AttrRoute      = "ferry.route"
	AttrShadow     = "ferry.route.shadow_version"
	AttrBatch      = "ferry.batch.size"
	AttrItems      = "ferry.request.items"
	AttrCached     = "ferry.cache.hit"
	AttrStep       = "ferry.ensemble.step"
	AttrInputSecs  = "ferry.compute.input_s"
	AttrInferSecs  = "ferry.compute.infer_s"
	AttrOutputSecs = "ferry.compute.output_s"
)

// tracedInfer is Infer with an InferRequest span around it; ctx, which carries the
// span, reaches the steps of an ensemble and the backend (a remote upstream's client
// span is its child).
//
// The trace extension's settings of the model (trace_level OFF, one in trace_rate,
// trace_count) thin these spans further; the transport's span, made before the model
// is known, follows the OpenTelemetry sampler alone.
//
// A request whose transport span is not sampled gets no span of its own: the sampler is
// parent-based by default, so its spans would not be recorded either, and skipping them
// saves most requests the ids and allocations (its context still carries the
// transport's ids to a remote upstream, marked unsampled).
func (s *Server) tracedInfer(ctx context.Context, req *InferRequest) (*InferResponse, error) {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() && !sc.IsSampled() {
		return s.serve(ctx, req)
	}
	if _, ok := s.trace.Sample(req.Model); !ok { // the trace extension's level, rate and count
		return s.serve(ctx, req)
	}
	ctx, span := s.tracer.Start(ctx, SpanInfer, trace.WithAttributes(attribute.String(AttrModel, req.Model)))
	defer span.End()
	if !span.IsRecording() {
		return s.serve(ctx, req) // not sampled: nothing to record, ids still go on downstream
	}
	if req.ID != "" {
		span.SetAttributes(attribute.String(AttrRequestID, req.ID))
	}
	req.span = span
	resp, err := s.serve(ctx, req)
	req.span = nil
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	return resp, err
}

// traceRoute records the router's decision as an event of the request's span.
func traceRoute(req *InferRequest, version string, route router.Route, shadow string) {
	if req.span == nil || route == "" {
		return
	}
	attrs := []attribute.KeyValue{attribute.String(AttrRoute, string(route)), attribute.String(AttrVersion, version)}
	if shadow != "" {
		attrs = append(attrs, attribute.String(AttrShadow, shadow))
	}
	req.span.AddEvent(EventRoute, trace.WithAttributes(attrs...))
}

// traceOutcome records what finish counts of a traced request: the version that ran it
// and, from the scheduler's timing, its queue and compute spans, made after the fact
// with their own timestamps, so the batcher needs no context of its span. submitted is
// when the request went to the scheduler (zero when it never did).
func (s *Server) traceOutcome(l *Lease, req *InferRequest, o outcome) {
	span := req.span
	if span == nil {
		return
	}
	span.SetAttributes(attribute.String(AttrVersion, l.Version), attribute.Int(AttrItems, o.items))
	if req.route != "" {
		span.SetAttributes(attribute.String(AttrRoute, string(req.route)))
	}
	if o.cached {
		span.SetAttributes(attribute.Bool(AttrCached, true))
	}
	if o.submitted.IsZero() || o.err != nil {
		return
	}
	ctx := trace.ContextWithSpan(context.Background(), span)
	t := o.timing
	queued := o.submitted.Add(t.Queue)
	_, q := s.tracer.Start(ctx, SpanQueue, trace.WithTimestamp(o.submitted))
	q.End(trace.WithTimestamp(queued))
	done := queued.Add(t.Input + t.Infer + t.Output)
	_, c := s.tracer.Start(ctx, SpanCompute, trace.WithTimestamp(queued), trace.WithAttributes(
		attribute.Int(AttrBatch, t.Batch),
		attribute.Float64(AttrInputSecs, t.Input.Seconds()),
		attribute.Float64(AttrInferSecs, t.Infer.Seconds()),
		attribute.Float64(AttrOutputSecs, t.Output.Seconds()),
	))
	c.End(trace.WithTimestamp(done))
}

// submitTime is when a traced request goes to the scheduler; untraced requests do not
// read the clock for it.
func submitTime(req *InferRequest) time.Time {
	if req.span == nil {
		return time.Time{}
	}
	return time.Now()
}

// startStep starts the span of an ensemble's step i, the parent of the step's own
// InferRequest; a no-op without a tracer.
func (s *Server) startStep(ctx context.Context, i int, model string) (context.Context, func(error)) {
	if s.tracer == nil || !trace.SpanFromContext(ctx).IsRecording() {
		return ctx, func(error) {}
	}
	ctx, span := s.tracer.Start(ctx, SpanEnsembleStep+" "+strconv.Itoa(i), trace.WithAttributes(
		attribute.Int(AttrStep, i), attribute.String(AttrModel, model)))
	return ctx, func(err error) {
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}
}
