package backendtest_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/ferryml/ferry/internal/backend/backendtest"
	"github.com/ferryml/ferry/internal/scheduler"
	"github.com/ferryml/ferry/internal/tensor"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// echo is a hand-written backend: OUTPUT0 = INPUT0 and OUTPUT1 = 2·INPUT0, INT32 [rows, 2].
type echo struct {
	mu     sync.Mutex
	closed bool
	runs   *int64 // executions of every echo, guarded by runsMu
}

var runsMu sync.Mutex

func (e *echo) Execute(ctx context.Context, in []*tensor.Tensor, want []string) ([]*tensor.Tensor, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	e.mu.Lock()
	closed := e.closed
	e.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("echo closed")
	}
	runsMu.Lock()
	*e.runs++
	runsMu.Unlock()
	x := in[0]
	double := make([]byte, len(x.Data))
	for i := 0; i < len(x.Data); i += 4 {
		binary.LittleEndian.PutUint32(double[i:], 2*binary.LittleEndian.Uint32(x.Data[i:]))
	}
	all := []*tensor.Tensor{
		{Name: "OUTPUT0", DType: tensor.Int32, Shape: x.Shape.Clone(), Data: slices.Clone(x.Data)},
		{Name: "OUTPUT1", DType: tensor.Int32, Shape: x.Shape.Clone(), Data: double},
	}
	if want == nil {
		return all, nil
	}
	var out []*tensor.Tensor
	for _, w := range want {
		i := slices.IndexFunc(all, func(t *tensor.Tensor) bool { return t.Name == w })
		if i < 0 {
			return nil, fmt.Errorf("no output %q", w)
		}
		out = append(out, all[i])
	}
	return out, nil
}

func (e *echo) Close() error {
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	return nil
}

// TestRunPassesAConformingBackend runs the suite itself over a correct fake.
func TestRunPassesAConformingBackend(t *testing.T) {
	var runs int64
	backendtest.Run(t, backendtest.Factory{
		Name:         "echo",
		MaxBatchSize: 4,
		Outputs:      []string{"OUTPUT0", "OUTPUT1"},
		Open:         func(*testing.T) scheduler.Instance { return &echo{runs: &runs} },
		Inputs: func(rows, seed int) []*tensor.Tensor {
			var data []byte
			for i := range 2 * rows {
				data = binary.LittleEndian.AppendUint32(data, uint32(seed*10+i))
			}
			return []*tensor.Tensor{{Name: "INPUT0", DType: tensor.Int32, Shape: tensor.Shape{int64(rows), 2}, Data: data}}
		},
		Check: func(t *testing.T, in, out []*tensor.Tensor) {
			for _, o := range out {
				k := uint32(1)
				if o.Name == "OUTPUT1" {
					k = 2
				}
				for i := 0; i < len(in[0].Data); i += 4 {
					if got, want := binary.LittleEndian.Uint32(o.Data[i:]), k*binary.LittleEndian.Uint32(in[0].Data[i:]); got != want {
						t.Errorf("%s[%d] = %d, want %d", o.Name, i/4, got, want)
					}
				}
			}
		},
		Runs: func() int64 { runsMu.Lock(); defer runsMu.Unlock(); return runs },
	})
}
