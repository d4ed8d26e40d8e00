package onnx

import (
	"testing"

	"github.com/ferryml/ferry/internal/backend/backendtest"
	"github.com/ferryml/ferry/internal/scheduler"
	"github.com/ferryml/ferry/internal/tensor"
	"github.com/ferryml/ferry/tools/onnxgen"
)

// TestConformance runs the backend conformance suite on Triton's "simple" model
// (OUTPUT0 = INPUT0 + INPUT1, OUTPUT1 = INPUT0 - INPUT1, INT32 [batch, 16]).
func TestConformance(t *testing.T) {
	needORT(t)
	path := writeModel(t, onnxgen.Simple())
	backendtest.Run(t, backendtest.Factory{
		Name:         "simple",
		MaxBatchSize: 8,
		Outputs:      []string{"OUTPUT0", "OUTPUT1"},
		Open: func(t *testing.T) scheduler.Instance {
			s, err := rt.Open(path, SessionOptions{IntraOpThreads: 1})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			return s
		},
		Inputs: func(rows, seed int) []*tensor.Tensor {
			a, b := make([]int32, rows*16), make([]int32, rows*16)
			for i := range a {
				a[i], b[i] = int32(seed*1000+i), int32(7*seed-3*i)
			}
			shape := tensor.Shape{int64(rows), 16}
			return []*tensor.Tensor{tt("INPUT0", tensor.Int32, shape, a), tt("INPUT1", tensor.Int32, shape, b)}
		},
		Check: func(t *testing.T, in, out []*tensor.Tensor) {
			a, b := values[int32](t, in[0]), values[int32](t, in[1])
			for _, o := range out {
				got := values[int32](t, o)
				for i := range a {
					want := a[i] + b[i]
					if o.Name == "OUTPUT1" {
						want = a[i] - b[i]
					}
					if got[i] != want {
						t.Errorf("%s[%d] = %d, want %d", o.Name, i, got[i], want)
						break
					}
				}
			}
		},
	})
}
