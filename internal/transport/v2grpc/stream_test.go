package v2grpc

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/inference"
)

func TestModelStreamInferAnswersInOrder(t *testing.T) {
	fc := &fakeCore{}
	c, _ := newTestClient(t, fc, core.Limits{})
	stream, err := c.ModelStreamInfer(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	delay := func(ms int64) map[string]*inference.InferParameter {
		return map[string]*inference.InferParameter{"delay_ms": {ParameterChoice: &inference.InferParameter_Int64Param{Int64Param: ms}}}
	}
	good := func(id string, ms int64) *inference.ModelInferRequest {
		return &inference.ModelInferRequest{
			ModelName: "slow", Id: id, Parameters: delay(ms),
			Inputs:           []*inference.ModelInferRequest_InferInputTensor{{Name: "x", Datatype: "INT32", Shape: []int64{1}}},
			RawInputContents: [][]byte{le(int32(len(id)))},
		}
	}
	// Earlier requests take longer, so answers would come out reversed if the stream
	// sent them as they finished.
	reqs := []struct {
		req     *inference.ModelInferRequest
		wantErr string
	}{
		{good("a", 60), ""},
		{&inference.ModelInferRequest{ModelName: "nope", Id: "b"}, "Request for unknown model: 'nope' is not found"},
		{good("cc", 30), ""},
		{&inference.ModelInferRequest{ModelName: "echo", Id: "d",
			Inputs: []*inference.ModelInferRequest_InferInputTensor{{Name: "x", Datatype: "FP32", Shape: []int64{2}}}, RawInputContents: [][]byte{{1}}},
			`input "x": raw_input_contents[0] has 1 bytes, shape [2] of FP32 needs 8`},
		{&inference.ModelInferRequest{ModelName: "broken", Id: "e"}, "backend exploded"},
		{good("fff", 0), ""},
	}
	for _, r := range reqs {
		if err := stream.Send(r.req); err != nil {
			t.Fatal(err)
		}
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	for i, r := range reqs {
		res, err := stream.Recv()
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		if got := res.GetInferResponse().GetId(); got != r.req.GetId() {
			t.Errorf("response %d has id %q, want %q (answers out of order)", i, got, r.req.GetId())
		}
		if res.GetErrorMessage() != r.wantErr {
			t.Errorf("response %d (id %q) error_message = %q, want %q", i, r.req.GetId(), res.GetErrorMessage(), r.wantErr)
		}
		if r.wantErr == "" {
			if out := res.GetInferResponse().GetRawOutputContents(); len(out) != 1 || string(out[0]) != string(le(int32(len(r.req.GetId())))) {
				t.Errorf("response %d carries outputs %v", i, out)
			}
		} else if len(res.GetInferResponse().GetOutputs()) != 0 {
			t.Errorf("error response %d carries outputs", i)
		}
	}
	if _, err := stream.Recv(); err != io.EOF {
		t.Errorf("after the last answer Recv = %v, want io.EOF", err)
	}
}

// Requests of one sequence must reach core in the order sent, while other requests on
// the same stream still run concurrently.
func TestModelStreamInferKeepsSequencesInOrder(t *testing.T) {
	fc := &fakeCore{}
	c, _ := newTestClient(t, fc, core.Limits{})
	stream, err := c.ModelStreamInfer(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	const steps = 40
	for i := range steps {
		req := &inference.ModelInferRequest{
			ModelName: "seq", Id: fmt.Sprint(i),
			Parameters: map[string]*inference.InferParameter{
				"sequence_id": {ParameterChoice: &inference.InferParameter_Uint64Param{Uint64Param: 9}},
			},
			Inputs:           []*inference.ModelInferRequest_InferInputTensor{{Name: "step", Datatype: "INT32", Shape: []int64{1}}},
			RawInputContents: [][]byte{le(int32(i))},
		}
		if err := stream.Send(req); err != nil {
			t.Fatal(err)
		}
	}
	stream.CloseSend()
	for i := range steps {
		res, err := stream.Recv()
		if err != nil || res.GetErrorMessage() != "" || res.GetInferResponse().GetId() != fmt.Sprint(i) {
			t.Fatalf("response %d = %v, %v", i, res, err)
		}
	}
	fc.mu.Lock()
	defer fc.mu.Unlock()
	want := make([]int32, steps)
	for i := range want {
		want[i] = int32(i)
	}
	if !slices.Equal(fc.steps, want) {
		t.Errorf("core saw sequence steps %v, want %v", fc.steps, want)
	}
}

// Many streams and many requests at once, for the race detector.
func TestModelStreamInferConcurrentStreams(t *testing.T) {
	c, _ := newTestClient(t, &fakeCore{}, core.Limits{})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for s := range 8 {
		wg.Go(func() {
			stream, err := c.ModelStreamInfer(t.Context())
			if err != nil {
				errs <- err
				return
			}
			const n = 200 // over streamWindow, so the window fills and drains
			go func() {
				for i := range n {
					model := "echo"
					if i%7 == 0 {
						model = "nope"
					}
					if err := stream.Send(&inference.ModelInferRequest{ModelName: model, Id: fmt.Sprint(s, "-", i)}); err != nil {
						return
					}
				}
				stream.CloseSend()
			}()
			for i := range n {
				res, err := stream.Recv()
				if err != nil {
					errs <- err
					return
				}
				if got, want := res.GetInferResponse().GetId(), fmt.Sprint(s, "-", i); got != want {
					errs <- fmt.Errorf("stream %d: answer %d has id %q", s, i, got)
					return
				}
			}
			if _, err := stream.Recv(); err != io.EOF {
				errs <- fmt.Errorf("stream %d: end: %v", s, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// A client that goes away mid-stream must not leave goroutines behind (goleak checks
// at the end of the package's tests).
func TestModelStreamInferClientCancels(t *testing.T) {
	c, _ := newTestClient(t, &fakeCore{}, core.Limits{})
	ctx, cancel := context.WithCancel(t.Context())
	stream, err := c.ModelStreamInfer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		req := &inference.ModelInferRequest{ModelName: "slow", Id: fmt.Sprint(i), Parameters: map[string]*inference.InferParameter{
			"delay_ms": {ParameterChoice: &inference.InferParameter_Int64Param{Int64Param: 10_000}},
		}}
		if err := stream.Send(req); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	if _, err := stream.Recv(); err == nil {
		t.Error("Recv after cancel succeeded")
	}
}
