package core

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/internal/modelconfig"
	"github.com/ferryml/ferry/internal/scheduler"
	"github.com/ferryml/ferry/internal/tensor"
)

// maxEnsembleDepth bounds ensembles whose steps are ensembles, so two ensembles that
// name each other fail the request instead of recursing without end.
const maxEnsembleDepth = 8

// ensembleDepthKey carries, in a step's context, how many ensembles enclose it.
type ensembleDepthKey struct{}

// isEnsemble reports whether a lease is an ensemble, which has no scheduler of its own.
func isEnsemble(l *Lease) bool { return l.Config.GetEnsembleScheduling() != nil }

// inferEnsemble runs an ensemble request: its steps form a DAG over named tensors, and
// each step runs, as soon as the tensors it reads exist, as an ordinary request to its
// model through Infer, so it is queued and batched with that model's other traffic and
// counted in that model's statistics. Steps that do not depend on each other run at the
// same time. Only the steps that lead to the requested outputs run. The first failing
// step cancels the others and fails the request, naming the step and its model.
//
// Validation refuses response_cache on an ensemble: the cache keys a response by the
// loaded scheduler, which an ensemble lacks, so a changed ensemble or step model could
// answer with stale outputs. Its step models may cache.
// items and outputs are what Infer's check of the request found.
func (s *Server) inferEnsemble(ctx context.Context, l *Lease, req *InferRequest, start time.Time, items int, outputs []string) (*InferResponse, error) {
	fail := func(err error) (*InferResponse, error) { return s.failed(l, req, start, err) }
	depth, _ := ctx.Value(ensembleDepthKey{}).(int)
	if depth >= maxEnsembleDepth {
		return fail(Unavailablef("ensemble '%s' version %s: ensembles nest more than %d deep; do two ensembles name each other as steps?", l.Model, l.Version, maxEnsembleDepth))
	}
	ctx = context.WithValue(ctx, ensembleDepthKey{}, depth+1)
	e := &ensembleRun{s: s, l: l, req: req, steps: l.Config.GetEnsembleScheduling().GetStep()}
	tensors, err := e.run(ctx, outputs)
	if err != nil {
		return fail(err)
	}
	resp := &InferResponse{Model: l.Model, Version: l.Version, ID: req.ID}
	for _, name := range outputs {
		t, err := e.output(tensors, name)
		if err != nil {
			return fail(err)
		}
		resp.Outputs = append(resp.Outputs, t)
	}
	if err := applyClassification(resp, req.Outputs, l.Config.GetMaxBatchSize() > 0); err != nil {
		return fail(err)
	}
	// The ensemble executes nothing itself: its queue and compute times are in its
	// step models' statistics, and it counts no execution or batch.
	s.finish(l, req, resp, outcome{items: items, start: start, total: time.Since(start), timing: scheduler.Timing{Batch: items}})
	return resp, nil
}

// ensembleRun is one ensemble request in flight. Only the goroutine in run touches it;
// step goroutines get their inputs as arguments and hand their outputs back on a channel.
type ensembleRun struct {
	s     *Server
	l     *Lease
	req   *InferRequest
	steps []*inference.ModelEnsembling_Step
}

// stepResult is what one step hands back: its outputs, renamed to ensemble tensors.
type stepResult struct {
	i   int
	out []*tensor.Tensor
	err error
}

// run executes the steps needed for want and returns every tensor it produced (the
// request's inputs included). It returns only after every step it started has returned.
func (e *ensembleRun) run(ctx context.Context, want []string) (map[string]*tensor.Tensor, error) {
	have := make(map[string]*tensor.Tensor, len(e.req.Inputs))
	for _, t := range e.req.Inputs {
		have[t.Name] = t
	}
	absent := map[string]bool{} // optional ensemble inputs the request left out
	for _, in := range e.l.Config.GetInput() {
		if _, ok := have[in.GetName()]; !ok {
			absent[in.GetName()] = true
		}
	}
	needed := neededSteps(e.steps, want)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make(chan stepResult, len(e.steps)) // each step sends once: never blocks
	started := make([]bool, len(e.steps))
	running := 0
	var first error
	for {
		for i, st := range e.steps {
			if first != nil || started[i] || !needed[i] || !stepReady(st, have, absent) {
				continue
			}
			started[i] = true
			running++
			in := stepInputs(st, have)
			go func() { results <- e.runStep(ctx, i, in) }()
		}
		if running == 0 {
			break
		}
		r := <-results
		running--
		if r.err != nil {
			if first == nil {
				first = r.err
				cancel() // the other steps leave their queues without running
			}
			continue
		}
		for _, t := range r.out {
			have[t.Name] = t
		}
	}
	return have, first
}

// runStep sends one step to its model as an ordinary request.
func (e *ensembleRun) runStep(ctx context.Context, i int, in []*tensor.Tensor) stepResult {
	st := e.steps[i]
	sreq := &InferRequest{Model: st.GetModelName(), ID: e.req.ID, Inputs: in, Parameters: e.req.Parameters, TraceParent: e.req.TraceParent, Background: e.req.Background, step: true}
	if v := st.GetModelVersion(); v > 0 {
		sreq.Version = strconv.FormatInt(v, 10)
	}
	for _, k := range sortedStrings(st.GetOutputMap()) {
		sreq.Outputs = append(sreq.Outputs, RequestedOutput{Name: k})
	}
	ctx, end := e.s.startStep(ctx, i, sreq.Model) // trace.go
	resp, err := e.s.Infer(ctx, sreq)
	end(err)
	if err != nil {
		return stepResult{i: i, err: e.stepError(i, err)}
	}
	out := make([]*tensor.Tensor, 0, len(resp.Outputs))
	for _, t := range resp.Outputs {
		name, ok := st.GetOutputMap()[t.Name]
		if !ok {
			continue
		}
		c := *t
		c.Name = name
		out = append(out, &c)
	}
	return stepResult{i: i, out: out}
}

// stepError names the ensemble, the step and its model, and keeps the step's error kind:
// a step model's bad input stays 400, its full queue 503. A step model that is not loaded
// makes the ensemble unavailable, not unknown.
func (e *ensembleRun) stepError(i int, err error) error {
	where := fmt.Sprintf("ensemble '%s' version %s: step %d (model '%s')", e.l.Model, e.l.Version, i, e.steps[i].GetModelName())
	if errors.Is(err, ErrNotFound) {
		return Unavailablef("%s: %v", where, err)
	}
	return fmt.Errorf("%s: %w", where, err)
}

// output returns one requested ensemble output, checked against the ensemble's config.
func (e *ensembleRun) output(have map[string]*tensor.Tensor, name string) (*tensor.Tensor, error) {
	t, ok := have[name]
	if !ok {
		return nil, fmt.Errorf("ensemble '%s' version %s: output %q was not produced by any step", e.l.Model, e.l.Version, name)
	}
	for _, o := range e.l.Config.GetOutput() {
		if o.GetName() == name && modelconfig.DType(o.GetDataType()) != t.DType {
			return nil, fmt.Errorf("ensemble '%s' version %s: output %q is %s from %s, but the ensemble declares %s",
				e.l.Model, e.l.Version, name, t.DType, e.writer(name), modelconfig.DType(o.GetDataType()))
		}
	}
	return t, nil
}

// writer names the step that writes tensor name, for messages.
func (e *ensembleRun) writer(name string) string {
	for i, st := range e.steps {
		for k, v := range st.GetOutputMap() {
			if v == name {
				return fmt.Sprintf("step %d (output %q of model '%s')", i, k, st.GetModelName())
			}
		}
	}
	return "the request"
}

// neededSteps marks the steps whose outputs lead, directly or through other steps, to a
// tensor in want.
func neededSteps(steps []*inference.ModelEnsembling_Step, want []string) []bool {
	wanted := make(map[string]bool, len(want))
	for _, w := range want {
		wanted[w] = true
	}
	needed := make([]bool, len(steps))
	for progress := true; progress; {
		progress = false
		for i, st := range steps {
			if needed[i] || !writesAny(st, wanted) {
				continue
			}
			needed[i], progress = true, true
			for _, t := range st.GetInputMap() {
				wanted[t] = true
			}
		}
	}
	return needed
}

func writesAny(st *inference.ModelEnsembling_Step, wanted map[string]bool) bool {
	for _, t := range st.GetOutputMap() {
		if wanted[t] {
			return true
		}
	}
	return false
}

// stepReady reports whether every tensor a step reads exists or is an optional ensemble
// input the request left out.
func stepReady(st *inference.ModelEnsembling_Step, have map[string]*tensor.Tensor, absent map[string]bool) bool {
	for _, t := range st.GetInputMap() {
		if _, ok := have[t]; !ok && !absent[t] {
			return false
		}
	}
	return true
}

// stepInputs gives the step model its inputs under its own names. The tensors share
// their data with the ensemble's: nothing on the request path writes to input data.
func stepInputs(st *inference.ModelEnsembling_Step, have map[string]*tensor.Tensor) []*tensor.Tensor {
	in := make([]*tensor.Tensor, 0, len(st.GetInputMap()))
	for _, k := range sortedStrings(st.GetInputMap()) {
		t, ok := have[st.GetInputMap()[k]]
		if !ok {
			continue // an optional ensemble input the request left out
		}
		c := *t
		c.Name = k
		in = append(in, &c)
	}
	return in
}

func sortedStrings(m map[string]string) []string {
	return slices.Sorted(maps.Keys(m))
}
