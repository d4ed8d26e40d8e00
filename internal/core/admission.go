package core

import (
	"context"
	"errors"
	"time"

	"github.com/ferryml/ferry/internal/inference"
)

// Admission decides, after the checks and before the scheduler, whether a request may
// run now: tenants' rate limits and quotas, and each model's load shedding
// (internal/admission implements it). A refusal is an error that wraps ErrRateLimited
// (a tenant over its limits: 429) or ErrUnavailable (overload: 503) and may say when to
// retry (RetryAfter). done is called once with the admitted request's time in core
// and its error, so an adaptive limit can learn from it.
type Admission interface {
	Admit(ctx context.Context, t Ticket) (done func(latency time.Duration, err error), err error)
}

// Ticket is what admission knows of a request. Config is the leased version's config
// (never mutated); Priority is the V2 "priority" parameter (0: the model's default).
type Ticket struct {
	Tenant, Key    string
	Model, Version string
	Config         *inference.ModelConfig
	Items          int
	Priority       int
}

// ErrRateLimited: a caller over its rate limits or quotas (HTTP 429 with Retry-After,
// gRPC RESOURCE_EXHAUSTED).
var ErrRateLimited = errors.New("rate limited")

// RetryAfter is how long err says to wait before trying again (0: it does not say).
// Transports send it as the Retry-After header or the retry-after trailer.
func RetryAfter(err error) time.Duration {
	var r interface{ RetryIn() time.Duration }
	if errors.As(err, &r) {
		return r.RetryIn()
	}
	return 0
}

// admit asks the Admission, if any, about req to l. Ensemble steps and shadow copies
// were admitted as the request they belong to, so they pass.
func (s *Server) admit(ctx context.Context, l *Lease, req *InferRequest, items int) (func(time.Duration, error), error) {
	if s.admission == nil || req.step || req.mirror != nil {
		return nil, nil
	}
	t := Ticket{Model: l.Model, Version: l.Version, Config: l.Config, Items: items}
	if s.callerOf != nil {
		t.Tenant, t.Key = s.callerOf(ctx)
	}
	if p, ok := asInt(req.Parameters["priority"]); ok && p > 0 {
		t.Priority = int(min(p, 1<<31))
	}
	return s.admission.Admit(ctx, t)
}
