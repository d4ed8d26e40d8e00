package remote

import (
	"context"
	"encoding/binary"
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ferryml/ferry/internal/backend/backendtest"
	"github.com/ferryml/ferry/internal/scheduler"
	"github.com/ferryml/ferry/internal/tensor"
)

// TestConformance runs the backend conformance suite over REST and gRPC against the
// in-process fake upstream's echo model (y = x, FP32 [batch, 4]; n = the upstream's
// request number, INT64 [batch, 1]). Instances of one version share the upstream.
func TestConformance(t *testing.T) {
	protocols(t, func(t *testing.T, up *fakeUpstream, url string) {
		b := New(nil)
		cfg := remoteConfig(url)
		backendtest.Run(t, backendtest.Factory{
			Name:         "r",
			MaxBatchSize: 8,
			Outputs:      []string{"y", "n"},
			Open: func(t *testing.T) scheduler.Instance {
				in, err := b.Open(context.Background(), "conformance", cfg)
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				return in
			},
			Inputs: func(rows, seed int) []*tensor.Tensor {
				data := make([]byte, 0, 16*rows)
				for i := range 4 * rows {
					data = binary.LittleEndian.AppendUint32(data, math.Float32bits(float32(seed)+float32(i)/8))
				}
				return []*tensor.Tensor{{Name: "x", DType: tensor.FP32, Shape: tensor.Shape{int64(rows), 4}, Data: data}}
			},
			Check: func(t *testing.T, in, out []*tensor.Tensor) {
				for _, o := range out {
					switch o.Name {
					case "y":
						if diff := cmp.Diff(in[0].Data, o.Data); diff != "" {
							t.Errorf("y is not x (-x +y):\n%s", diff)
						}
					case "n":
						if o.DType != tensor.Int64 || len(o.Shape) != 2 || o.Shape[1] != 1 {
							t.Errorf("n is %s%v, want INT64[rows,1]", o.DType, o.Shape)
						}
					}
				}
			},
			Runs: up.tries.Load,
		})
	})
}
