package core

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/ferryml/ferry/internal/tensor"
)

// countingRepo counts the leases taken on its model.
type countingRepo struct {
	*oneModel
	leases atomic.Int32
}

func (r *countingRepo) Acquire(ctx context.Context, model, version string) (*Lease, error) {
	r.leases.Add(1)
	return r.oneModel.Acquire(ctx, model, version)
}

// A request whose inputs depend on the model (a raw binary REST body) is built from the
// metadata of the version that runs it, under the one lease that runs it.
func TestPrepareBuildsInputsUnderTheRunningLease(t *testing.T) {
	repo := &countingRepo{oneModel: newOneModel(t, false)}
	s := New(Options{Repository: repo})
	req := &InferRequest{Model: "m"}
	req.Prepare = func(md *ModelMetadata, batching bool) error {
		if len(md.Inputs) != 1 || md.Inputs[0].Name != "IN" || !batching {
			t.Errorf("Prepare got %+v, batching %v; want model m's one input IN, batching", md, batching)
		}
		req.Inputs = []*tensor.Tensor{{Name: "IN", DType: tensor.FP32, Shape: tensor.Shape{1, 2}, Data: f32s(1, 2)}}
		return nil
	}
	resp := infer(t, s, req)
	if n := repo.leases.Load(); n != 1 {
		t.Errorf("%d leases for one request, want 1", n)
	}
	if resp.Version != "1" || len(resp.Outputs) != 2 || string(resp.Outputs[0].Data) != string(f32s(2, 4)) {
		t.Errorf("response %+v; want version 1 with OUT = 2*IN", resp)
	}

	bad := errors.New("raw body does not fit")
	_, err := s.Infer(context.Background(), &InferRequest{Model: "m", Prepare: func(*ModelMetadata, bool) error { return bad }})
	if !errors.Is(err, bad) {
		t.Fatalf("Infer with a failing Prepare: %v, want its error", err)
	}
	if runs := repo.inst.count(); runs != 1 {
		t.Errorf("the model ran %d times; a request whose Prepare failed must not run", runs)
	}
}
