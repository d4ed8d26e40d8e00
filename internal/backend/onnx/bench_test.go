package onnx

import (
	"context"
	"fmt"
	"testing"

	ort "github.com/yalue/onnxruntime_go"

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

// BenchmarkStringFill compares filling a 1000-element STRING tensor of 32-byte
// strings the binding's way (SetContents: a Go string and a C.CString per
// element, C strings that end at a NUL) with fill's (one cgo call, each
// element copied by length), and the whole Execute through an identity model.
func BenchmarkStringFill(b *testing.B) {
	needORT(b)
	var data []byte
	for i := range 1000 {
		data = tensor.AppendBytesElement(data, fmt.Appendf(nil, "%032d", i))
	}
	shape := tensor.Shape{1, 1000}
	b.Run("SetContents", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			elems, err := tensor.BytesElements(data)
			if err != nil {
				b.Fatal(err)
			}
			strs := make([]string, len(elems))
			for i, e := range elems {
				strs[i] = string(e)
			}
			v, err := ort.NewStringTensor(ort.Shape(shape))
			if err != nil {
				b.Fatal(err)
			}
			if err := v.SetContents(strs); err != nil {
				b.Fatal(err)
			}
			v.Destroy()
		}
	})
	b.Run("by_length", func(b *testing.B) {
		in := &tensor.Tensor{Name: "INPUT0", DType: tensor.Bytes, Shape: shape, Data: data}
		b.ReportAllocs()
		for b.Loop() {
			v, err := stringValue(in, rt.strs)
			if err != nil {
				b.Fatal(err)
			}
			v.Destroy()
		}
	})
	b.Run("execute_identity", func(b *testing.B) {
		s, err := rt.Open(writeModel(b, onnxgen.Identity(onnxgen.String, "identity_bytes")), SessionOptions{IntraOpThreads: 1})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		in := []*tensor.Tensor{{Name: "INPUT0", DType: tensor.Bytes, Shape: shape, Data: data}}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Execute(context.Background(), in, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}
