package onnx

import (
	"context"
	"fmt"
	"testing"

	"github.com/ferryml/ferry/internal/tensor"
	"github.com/ferryml/ferry/tools/onnxgen"
)

// BenchmarkExecuteMLP reports rows per second through onnxgen.MLP (256 ->
// 1024 -> 1024 -> 10), one session on ONNX Runtime's default threads.
func BenchmarkExecuteMLP(b *testing.B) {
	needORT(b)
	s, err := rt.Open(writeModel(b, onnxgen.MLP(1)), SessionOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	for _, batch := range []int{1, 32} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			in := []*tensor.Tensor{mlpInput(batch)}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Execute(ctx, in, nil); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "items/s")
		})
	}
}

// BenchmarkExecuteOverhead measures the fixed cost of one Execute on the tiny
// "simple" model, where ONNX Runtime's own work is negligible; a cancellable
// context adds RunOptions and a context.AfterFunc per call.
func BenchmarkExecuteOverhead(b *testing.B) {
	needORT(b)
	s, err := rt.Open(writeModel(b, onnxgen.Simple()), SessionOptions{IntraOpThreads: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	shape := tensor.Shape{1, 16}
	in := []*tensor.Tensor{
		tt("INPUT0", tensor.Int32, shape, make([]int32, 16)), tt("INPUT1", tensor.Int32, shape, make([]int32, 16)),
	}
	cancellable, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, bc := range []struct {
		name string
		ctx  context.Context
	}{{"background", context.Background()}, {"cancellable", cancellable}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Execute(bc.ctx, in, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkOpenMLP: what loading one instance of the mlp example costs, and what reading
// its inputs and outputs costs the first time (describe remembers them): from the file
// (read_desc, what Open does) against through a throwaway ONNX Runtime session
// (session_io, what it did before, 8.5 ms of a 12.7 ms Open on the 2-core machine).
func BenchmarkOpenMLP(b *testing.B) {
	needORT(b)
	path := writeModel(b, onnxgen.MLP(1))
	b.Run("read_desc", func(b *testing.B) {
		for b.Loop() {
			if _, err := rt.readDesc(path); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("session_io", func(b *testing.B) {
		for b.Loop() {
			if _, _, err := rt.sessionIO(path); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("open", func(b *testing.B) {
		for b.Loop() {
			s, err := rt.Open(path, SessionOptions{IntraOpThreads: 1})
			if err != nil {
				b.Fatal(err)
			}
			s.Close()
		}
	})
}
