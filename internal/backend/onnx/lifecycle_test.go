package onnx

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/ferryml/ferry/internal/tensor"
	"github.com/ferryml/ferry/tools/onnxgen"
)

// Runtime.Close closes the sessions still open and makes everything return
// ErrClosed; a new Runtime can then be made. The test leaves a fresh rt for
// the tests after it.
func TestRuntimeClose(t *testing.T) {
	needORT(t)
	path := writeModel(t, onnxgen.Simple())
	s, err := rt.Open(path, SessionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Close(); err != nil {
		t.Fatalf("Runtime.Close: %v", err)
	}
	if err := rt.Close(); err != nil {
		t.Errorf("second Runtime.Close: %v", err)
	}
	shape := tensor.Shape{1, 16}
	in := []*tensor.Tensor{
		tt("INPUT0", tensor.Int32, shape, make([]int32, 16)), tt("INPUT1", tensor.Int32, shape, make([]int32, 16)),
	}
	if _, err := s.Execute(context.Background(), in, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Execute after Runtime.Close err = %v, want ErrClosed", err)
	}
	if _, err := rt.Inspect(path); !errors.Is(err, ErrClosed) {
		t.Errorf("Inspect after Runtime.Close err = %v, want ErrClosed", err)
	}
	if _, err := rt.Open(path, SessionOptions{}); !errors.Is(err, ErrClosed) {
		t.Errorf("Open after Runtime.Close err = %v, want ErrClosed", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Session.Close after Runtime.Close: %v", err)
	}

	rt, err = NewRuntime(Options{LibraryPath: findORTLib(), Logger: testLogger()})
	if err != nil {
		rt = nil
		t.Fatalf("NewRuntime after Close: %v", err)
	}
	s2, err := rt.Open(path, SessionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if _, err := s2.Execute(context.Background(), in, nil); err != nil {
		t.Errorf("Execute on the new runtime: %v", err)
	}
}

func TestSessionOptions(t *testing.T) {
	needORT(t)
	path := writeModel(t, onnxgen.MLP(1))
	for _, tc := range []struct {
		name    string
		opts    SessionOptions
		wantErr string
	}{
		{"defaults", SessionOptions{}, ""},
		{"one intra-op thread", SessionOptions{IntraOpThreads: 1}, ""},
		{"parallel execution", SessionOptions{IntraOpThreads: 2, Parallel: true, InterOpThreads: 2}, ""},
		{"basic optimization, no arena, no memory pattern", SessionOptions{IntraOpThreads: 1, Optimization: OptimizeBasic, NoMemArena: true, NoMemPattern: true}, ""},
		{"no optimization, bounded spinning", SessionOptions{IntraOpThreads: 2, Optimization: OptimizeNone,
			Config: map[string]string{"session.intra_op.allow_spinning": "1", "session.intra_op.spin_duration_us": "50"}}, ""},
		{"negative threads", SessionOptions{IntraOpThreads: -1}, "thread counts must be >= 0"},
		{"unknown optimization level", SessionOptions{Optimization: 7}, "unknown graph optimization level 7"},
		// ONNX Runtime checks this entry's value when it creates the session: the
		// entries reach it.
		{"bad session entry", SessionOptions{IntraOpThreads: 2, Config: map[string]string{"session.intra_op_thread_affinities": "not;affinities"}}, "Processor id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := rt.Open(path, tc.opts)
			if tc.wantErr != "" {
				if err == nil {
					s.Close()
				}
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Open err = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			out, err := s.Execute(context.Background(), []*tensor.Tensor{mlpInput(2)}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !out[0].Shape.Equal(tensor.Shape{2, onnxgen.MLPClasses}) {
				t.Fatalf("output shape %v", out[0].Shape)
			}
			probs := values[float32](t, out[0])
			for r := range 2 {
				var sum float64
				for _, p := range probs[r*onnxgen.MLPClasses : (r+1)*onnxgen.MLPClasses] {
					sum += float64(p)
				}
				if math.Abs(sum-1) > 1e-5 {
					t.Errorf("softmax row %d sums to %v", r, sum)
				}
			}
			if got := s.IO(); len(got.Inputs) != 1 || got.Inputs[0].Name != "input" || len(got.Outputs) != 1 {
				t.Errorf("IO() = %+v", got)
			}
			if s.ResidentBytes() <= 0 {
				t.Errorf("ResidentBytes() = %d, want the model file's size", s.ResidentBytes())
			}
		})
	}
}

// A rank-0 BOOL input is checked like any other BOOL.
func TestScalarBoolInput(t *testing.T) {
	model := onnxgen.NewModel("and").
		Input("x", onnxgen.Bool, onnxgen.Sym("batch")).
		Input("k", onnxgen.Bool).
		Node("And", []string{"x", "k"}, []string{"y"}).
		Output("y", onnxgen.Bool, onnxgen.Sym("batch")).
		Bytes()
	s := open(t, model)
	x := &tensor.Tensor{Name: "x", DType: tensor.Bool, Shape: tensor.Shape{3}, Data: []byte{1, 0, 1}}
	out := execute(t, s, nil, x, &tensor.Tensor{Name: "k", DType: tensor.Bool, Shape: tensor.Shape{}, Data: []byte{1}})
	checkTensor(t, out[0], "y", tensor.Bool, tensor.Shape{3}, []byte{1, 0, 1})
	_, err := s.Execute(context.Background(), []*tensor.Tensor{x, {Name: "k", DType: tensor.Bool, Shape: tensor.Shape{}, Data: []byte{7}}}, nil)
	if err == nil || err.Error() != `input "k": BOOL element 0 is byte 7, want 0 or 1` {
		t.Errorf("Execute(k=7) err = %v", err)
	}
}
