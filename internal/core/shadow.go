package core

import (
	"bytes"
	"context"
	"math"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/ferryml/ferry/internal/tensor"
)

// Shadow copies (traffic mirroring) run beside the live traffic and never on its path:
// the client has its answer before its copy starts, a copy that finds no free slot is
// dropped and counted, a copy is never retried, and its outcome reaches only the taps,
// with the difference between its outputs and the primary's (Record.Shadow).
const (
	// shadowSlots bounds the shadow copies running at once.
	shadowSlots = 64
	// shadowTimeout bounds one shadow copy.
	shadowTimeout = 30 * time.Second
	// shadowJitter: a copy starts after a random pause of up to this. Core has the
	// answer before the transport has encoded and sent it; a copy started at once
	// competes with the delivery of the very answer it copies. Measured with
	// BenchmarkPlatformShadowP50 (1000 req/s, 2 cores): client p50 +17% starting at
	// once, -0.4% with the pause.
	shadowJitter = 2 * time.Millisecond
)

// RouteShadow is Record.Route of a shadow copy.
const RouteShadow = "shadow"

// ShadowResult compares a shadow copy with the primary request it copies.
type ShadowResult struct {
	Primary string // the version that answered the client
	// PrimaryFailed: the primary failed, so there was nothing to compare.
	PrimaryFailed bool
	// Diff is the largest absolute difference between an output of the shadow and the
	// same output of the primary (BYTES: 0 when equal, else 1); +Inf when an output's
	// datatype or shape differs or is missing. Zero when either side failed.
	Diff float64
}

// shadows counts what happened to the copies the routing policies asked for.
type shadows struct {
	slots   chan struct{}
	dropped atomic.Int64
}

// ShadowsDropped is how many shadow copies were dropped because shadowSlots were busy.
func (s *Server) ShadowsDropped() int64 { return s.mirror.dropped.Load() }

// shadowCopy is what a shadow copy's request carries for its record.
type shadowCopy struct {
	result ShadowResult
	want   []*tensor.Tensor // the primary's outputs (a copy); nil when it failed
}

// shadow starts a copy of req on version shadow, after the primary (on version primary)
// answered with resp or err. The copy owns its inputs and the primary's outputs: the
// transport may reuse the request's buffers once it has answered.
func (s *Server) shadow(req *InferRequest, primary, shadow string, resp *InferResponse, err error) {
	select {
	case s.mirror.slots <- struct{}{}:
	default:
		s.mirror.dropped.Add(1)
		return
	}
	m := &shadowCopy{result: ShadowResult{Primary: primary, PrimaryFailed: err != nil}}
	if err == nil {
		m.want = cloneTensors(resp.Outputs)
	}
	cp := &InferRequest{Model: req.Model, Version: shadow, ID: req.ID, Inputs: cloneTensors(req.Inputs),
		Parameters: req.Parameters, Outputs: req.Outputs, TraceParent: req.TraceParent, route: RouteShadow, mirror: m}
	go func() {
		defer func() { <-s.mirror.slots }()
		time.Sleep(rand.N(shadowJitter))
		ctx, cancel := context.WithTimeout(context.Background(), shadowTimeout)
		defer cancel()
		l, err := s.repo.Acquire(ctx, cp.Model, shadow)
		if err != nil {
			s.log.Debug("shadow copy not run", "model", cp.Model, "version", shadow, "err", err)
			return
		}
		defer l.Release()
		s.infer(ctx, l, cp, time.Now()) // its outcome goes to the taps, nowhere else
	}()
}

// record is a shadow copy's comparison, once it answered with outputs (nil: it failed).
func (m *shadowCopy) record(outputs []*tensor.Tensor) *ShadowResult {
	if outputs != nil && m.want != nil {
		m.result.Diff = outputDiff(m.want, outputs)
	}
	return &m.result
}

// outputDiff is ShadowResult.Diff of got against want.
func outputDiff(want, got []*tensor.Tensor) float64 {
	worst := 0.0
	for _, w := range want {
		var g *tensor.Tensor
		for _, t := range got {
			if t.Name == w.Name {
				g = t
				break
			}
		}
		if g == nil || g.DType != w.DType || !g.Shape.Equal(w.Shape) {
			return math.Inf(1)
		}
		worst = max(worst, tensorDiff(w, g))
	}
	return worst
}

func tensorDiff(w, g *tensor.Tensor) float64 {
	if w.DType == tensor.Bytes {
		if bytes.Equal(w.Data, g.Data) {
			return 0
		}
		return 1
	}
	a, err1 := w.Float64s()
	b, err2 := g.Float64s()
	if err1 != nil || err2 != nil || len(a) != len(b) {
		return math.Inf(1)
	}
	d := 0.0
	for i := range a {
		switch {
		case a[i] == b[i]: // equal infinities too
		case math.IsNaN(a[i]) && math.IsNaN(b[i]):
		default:
			d = max(d, math.Abs(a[i]-b[i]))
			if math.IsNaN(d) {
				return math.Inf(1)
			}
		}
	}
	return d
}
