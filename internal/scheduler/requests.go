package scheduler

import (
	"context"
	"fmt"
	"time"

	"github.com/ferryml/ferry/internal/tensor"
)

// RequestsInstance is an Instance that takes a dynamic batch as its separate requests
// rather than as tensors concatenated along the batch dimension. Triton's Python
// backend hands execute() the list of requests, and each request gets its own outputs
// or its own error, so one failing request does not fail the others. The batcher calls
// ExecuteRequests for batches of two or more requests; single requests still go
// through Execute.
type RequestsInstance interface {
	Instance
	// ExecuteRequests runs several requests in one execution: in[i] and want[i] are
	// request i's inputs and wanted outputs (nil: all). It returns, for each request,
	// its outputs or its error.
	ExecuteRequests(ctx context.Context, in [][]*tensor.Tensor, want [][]string) ([][]*tensor.Tensor, []error)
}

// runRequests executes a batch on a RequestsInstance and hands each request its own
// outcome.
func (b *batcher) runRequests(inst RequestsInstance, live []*item, start time.Time) {
	in := make([][]*tensor.Tensor, len(live))
	want := make([][]string, len(live))
	rows := 0
	for i, it := range live {
		in[i], want[i] = it.req.Inputs, it.req.Outputs
		rows += it.rows
	}
	t0 := time.Now()
	outs, errs := executeRequests(context.Background(), inst, in, want) // no caller may cancel a shared batch
	b.s.opts.Observer.Executed(rows)
	done := time.Now()
	b.delivering(len(live))
	leader := true // the first request that succeeded carries the execution's statistics
	for i, it := range live {
		if errs[i] != nil {
			b.finish(it, nil, errs[i])
			continue
		}
		b.finish(it, &Result{Outputs: pickOutputs(outs[i], it.req.Outputs), Timing: Timing{
			Queue: start.Sub(it.enq), Input: t0.Sub(start), Infer: done.Sub(t0), Batch: rows, Leader: leader,
		}}, nil)
		leader = false
	}
}

// executeRequests shields the server from a panicking backend and from results that do
// not line up with the requests.
func executeRequests(ctx context.Context, inst RequestsInstance, in [][]*tensor.Tensor, want [][]string) (outs [][]*tensor.Tensor, errs []error) {
	defer func() {
		if r := recover(); r != nil {
			outs, errs = nil, nil
			err := fmt.Errorf("backend panic: %v", r)
			for range in {
				errs = append(errs, err)
			}
			outs = make([][]*tensor.Tensor, len(in))
		}
	}()
	outs, errs = inst.ExecuteRequests(ctx, in, want)
	if len(outs) != len(in) || len(errs) != len(in) {
		err := fmt.Errorf("backend returned %d results and %d errors for %d requests", len(outs), len(errs), len(in))
		outs, errs = make([][]*tensor.Tensor, len(in)), make([]error, len(in))
		for i := range errs {
			errs[i] = err
		}
	}
	return outs, errs
}
