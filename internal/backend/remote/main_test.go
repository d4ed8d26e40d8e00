package remote

import (
	"context"
	"encoding/binary"
	"math"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/internal/tensor"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// remoteConfig is a remote model "r" forwarding to the fake's echo model; params are
// key, value pairs.
func remoteConfig(url string, params ...string) *inference.ModelConfig {
	cfg := &inference.ModelConfig{Name: "r", Backend: "remote", Parameters: map[string]*inference.ModelParameter{
		"url": {StringValue: url}, "model_name": {StringValue: "echo"}, "health_interval": {StringValue: "off"},
	}}
	for i := 0; i+1 < len(params); i += 2 {
		cfg.Parameters[params[i]] = &inference.ModelParameter{StringValue: params[i+1]}
	}
	return cfg
}

func openInstance(t *testing.T, b *Backend, cfg *inference.ModelConfig) *Instance {
	t.Helper()
	in, err := b.Open(context.Background(), t.Name(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { in.Close() })
	return in
}

// echoInput is an FP32 [rows, 4] input x holding 0, 1, 2, ...
func echoInput(rows int) []*tensor.Tensor {
	data := make([]byte, 0, rows*16)
	for i := range rows * 4 {
		data = binary.LittleEndian.AppendUint32(data, math.Float32bits(float32(i)))
	}
	return []*tensor.Tensor{{Name: "x", DType: tensor.FP32, Shape: tensor.Shape{int64(rows), 4}, Data: data}}
}

// fakeClock is a settable clock for the breaker's cooldown.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Unix(1_000_000, 0)} }

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Faults.

// failing answers status to every request before the k-th (all of them when k < 0).
func failing(k int64, status int) fault {
	return func(_ context.Context, n int64) *injected {
		if k < 0 || n < k {
			return &injected{status: status, msg: "injected failure"}
		}
		return nil
	}
}

// slowOn delays the requests pick chooses by d (less when the caller leaves first).
func slowOn(pick func(n int64) bool, d time.Duration) fault {
	return func(ctx context.Context, n int64) *injected {
		if pick(n) {
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-ctx.Done():
			case <-t.C:
			}
		}
		return nil
	}
}
