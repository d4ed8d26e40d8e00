package python

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/ferryml/ferry/internal/backend/backendtest"
	"github.com/ferryml/ferry/internal/modelconfig"
	"github.com/ferryml/ferry/internal/scheduler"
	"github.com/ferryml/ferry/internal/tensor"
)

// TestConformance runs the backend conformance suite on Triton's add_sub example
// (OUTPUT0 = INPUT0 + INPUT1, OUTPUT1 = INPUT0 - INPUT1, FP32 [batch, 4]); each
// instance is its own child process.
func TestConformance(t *testing.T) {
	needPython(t)
	m := writeModel(t, "add", sprintf(addConfig, tensor.FP32), addModel)
	cfg, err := modelconfig.Parse([]byte(m.config))
	if err != nil {
		t.Fatal(err)
	}
	modelconfig.SetDefaults(cfg, "add")
	if err := modelconfig.Validate(cfg, "add"); err != nil {
		t.Fatal(err)
	}
	f := NewFactory(Options{})
	backendtest.Run(t, backendtest.Factory{
		Name:         "add",
		MaxBatchSize: int(cfg.MaxBatchSize),
		Outputs:      []string{"OUTPUT0", "OUTPUT1"},
		Open: func(t *testing.T) scheduler.Instance {
			in, err := f.Open(context.Background(), filepath.Join(m.dir, "1", "model.py"), cfg)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			return in
		},
		Inputs: func(rows, seed int) []*tensor.Tensor {
			a, b := make([]float64, 4*rows), make([]float64, 4*rows)
			for i := range a {
				a[i], b[i] = float64(seed*100+i), float64(3*seed-i)/4
			}
			return addInputs(tensor.FP32, rows, a, b)
		},
		Check: func(t *testing.T, in, out []*tensor.Tensor) {
			a, b := decode(t, in[0]), decode(t, in[1])
			for _, o := range out {
				got := decode(t, o)
				for i := range a {
					want := float64(float32(a[i]) + float32(b[i]))
					if o.Name == "OUTPUT1" {
						want = float64(float32(a[i]) - float32(b[i]))
					}
					if got[i] != want {
						t.Errorf("%s[%d] = %v, want %v", o.Name, i, got[i], want)
						break
					}
				}
			}
		},
	})
}
