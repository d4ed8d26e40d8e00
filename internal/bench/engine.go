package bench

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/ferryml/ferry/internal/tensor"
)

// Engine runs a model in process, with no server in between. It is the yardstick a
// server's throughput is compared with; cmd/ferry adapts an ONNX Runtime session.
type Engine interface {
	// Execute runs the model once on inputs, which it must not modify.
	Execute(ctx context.Context, inputs []*tensor.Tensor) error
}

// EngineOptions configure RunEngine.
type EngineOptions struct {
	Name       string // names the engine in the report
	BatchSizes []int  // one level each; 1 alone for a model that does not batch
	Duration   time.Duration
	Warmup     time.Duration
	Shapes     map[string]tensor.Shape
	Data       Data
	Progress   func(Level)
}

// RunEngine measures the model at each batch size with one caller per engine, each
// executing back to back for the duration: the engine's own limit, with no queueing,
// network or encoding. Several engines (one per model instance) run concurrently, as a
// server runs its instances.
func RunEngine(ctx context.Context, engines []Engine, m Model, o EngineOptions) (*Report, error) {
	if o.Duration <= 0 {
		return nil, fmt.Errorf("duration %v: must be > 0", o.Duration)
	}
	if len(o.BatchSizes) == 0 {
		return nil, errors.New("no batch size to measure")
	}
	if len(engines) == 0 {
		return nil, errors.New("no engine to measure")
	}
	rep := &Report{Mode: ModeEngine, Model: m.Name, Version: m.Version, Protocol: o.Name, Duration: o.Duration.Seconds()}
	for _, b := range o.BatchSizes {
		samples, err := Samples(m, b, o.Shapes, o.Data)
		if err != nil {
			return nil, err
		}
		if rep.Inputs == nil {
			rep.Inputs = inputReports(samples[0])
		}
		l, err := engineLevel(ctx, engines, samples, b, o)
		if err != nil {
			return nil, fmt.Errorf("batch size %d: %w", b, err)
		}
		if o.Progress != nil {
			o.Progress(l)
		}
		rep.Levels = append(rep.Levels, l)
	}
	return rep, nil
}

func engineLevel(ctx context.Context, engines []Engine, samples [][]*tensor.Tensor, batch int, o EngineOptions) (Level, error) {
	begin := time.Now()
	start, end := begin.Add(o.Warmup), begin.Add(o.Warmup+o.Duration)
	lats := make([][]time.Duration, len(engines))
	lasts := make([]time.Time, len(engines))
	errs := make([]error, len(engines))
	var wg sync.WaitGroup
	for k, e := range engines {
		wg.Go(func() {
			// As the server's batcher runs each instance: from one OS thread.
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			lasts[k] = start
			for i := k; ; i++ {
				t0 := time.Now()
				if !t0.Before(end) {
					return
				}
				if err := e.Execute(ctx, samples[i%len(samples)]); err != nil {
					errs[k] = err
					return
				}
				if t1 := time.Now(); !t0.Before(start) {
					lats[k] = append(lats[k], t1.Sub(t0))
					lasts[k] = t1
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return Level{}, err
		}
	}
	l := Level{Concurrency: len(engines), BatchSize: batch}
	// Runs that started inside the window, over the time the last of them took to finish.
	last := start
	for _, t := range lasts {
		if t.After(last) {
			last = t
		}
	}
	l.measure(slices.Concat(lats...), last.Sub(start))
	return l, nil
}

// PowersOfTwo lists 1, 2, 4, ... up to limit, and limit itself when it is not a power
// of two.
func PowersOfTwo(limit int) []int {
	var out []int
	for b := 1; b <= limit; b *= 2 {
		out = append(out, b)
	}
	if limit > 0 && out[len(out)-1] != limit {
		out = append(out, limit)
	}
	return out
}
