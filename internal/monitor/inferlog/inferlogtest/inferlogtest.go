package inferlogtest

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/monitor/inferlog"
	"github.com/ferryml/ferry/internal/tensor"
)

// Dir logs n requests into a new temporary directory and returns it. Request i is of
// model "a" (even i) or "b" (odd i), version 1+i%3, client request id "id-<i>", and
// started i seconds after t0; its one input "x" is the UINT8 i.
func Dir(t testing.TB, n int, t0 time.Time) string {
	t.Helper()
	dir := t.TempDir()
	l, err := inferlog.New(inferlog.Config{Dir: dir, Buffer: n}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		l.Finished(&core.Record{Model: []string{"a", "b"}[i%2], Version: strconv.Itoa(1 + i%3), ID: "id-" + strconv.Itoa(i),
			Start: t0.Add(time.Duration(i) * time.Second), Total: time.Millisecond,
			Inputs: []*tensor.Tensor{{Name: "x", DType: tensor.Uint8, Shape: tensor.Shape{1}, Data: []byte{byte(i)}}}})
	}
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	return dir
}
