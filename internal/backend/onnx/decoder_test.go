package onnx

import (
	"context"
	"errors"
	"testing"

	"github.com/ferryml/ferry/tools/onnxgen"
)

// bufferModel has a float input X, an int64 input N, and outputs SUM = X + X and
// NOUT = N (Identity), all of shape [batch, n].
func bufferModel() []byte {
	dims := []onnxgen.Dim{onnxgen.Sym("batch"), onnxgen.Sym("n")}
	return onnxgen.NewModel("buffers").
		Input("X", onnxgen.Float, dims...).
		Input("N", onnxgen.Int64, dims...).
		Node("Add", []string{"X", "X"}, []string{"SUM"}).
		Node("Identity", []string{"N"}, []string{"NOUT"}).
		Output("SUM", onnxgen.Float, dims...).
		Output("NOUT", onnxgen.Int64, dims...).
		Bytes()
}

func TestRunBuffersWritesOutputsInPlace(t *testing.T) {
	s := open(t, bufferModel())
	x, n := []float32{1, 2, 3, 4, 5, 6}, []int64{7, 8, 9, 10, 11, 12}
	sum := make([]float32, 6)
	shape := []int64{2, 3}
	err := s.RunBuffers(context.Background(),
		[]Buffer{{Name: "N", Shape: shape, I64: n}, {Name: "X", Shape: shape, F32: x}},
		[]Buffer{{Name: "SUM", Shape: shape, F32: sum}}) // NOUT left out: computed and dropped
	if err != nil {
		t.Fatal(err)
	}
	for i := range x {
		if sum[i] != 2*x[i] {
			t.Fatalf("SUM[%d] = %v, want %v", i, sum[i], 2*x[i])
		}
	}
}

func TestRunBuffersNamesWhatIsWrong(t *testing.T) {
	s := open(t, bufferModel())
	shape := []int64{1, 1}
	x := Buffer{Name: "X", Shape: shape, F32: []float32{1}}
	nb := Buffer{Name: "N", Shape: shape, I64: []int64{1}}
	for _, tc := range []struct {
		name    string
		in, out []Buffer
		want    string
	}{
		{"a missing input", []Buffer{x}, nil, `input "N": missing: the model needs it`},
		{"an unknown input", []Buffer{x, nb, {Name: "Y", Shape: shape, F32: []float32{1}}}, nil, `input "Y": the model has no such input (it takes "X", "N")`},
		{"an input given twice", []Buffer{x, x, nb}, nil, `input "X": given more than once`},
		{"a buffer with both types", []Buffer{{Name: "X", Shape: shape, F32: []float32{1}, I64: []int64{1}}, nb}, nil, `input "X": a buffer needs exactly one of F32 and I64`},
		{"an unknown output", []Buffer{x, nb}, []Buffer{{Name: "Z", Shape: shape, F32: []float32{0}}}, `output "Z": the model has no such output`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := s.RunBuffers(context.Background(), tc.in, tc.out)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("RunBuffers err = %v, want %q", err, tc.want)
			}
		})
	}
	if err := s.RunBuffers(context.Background(), []Buffer{x, {Name: "N", Shape: []int64{1, 2}, I64: []int64{1}}}, nil); err == nil {
		t.Fatal("a buffer shorter than its shape was accepted")
	}
	s.Close()
	if err := s.RunBuffers(context.Background(), []Buffer{x, nb}, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: err %v, want ErrClosed", err)
	}
}
