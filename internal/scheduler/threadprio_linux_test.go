package scheduler

import (
	"context"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/ferryml/ferry/internal/tensor"
	"github.com/ferryml/ferry/internal/threadprio"
)

// frontProbe is an instance that records whether the thread it runs on is in front.
type frontProbe struct {
	echo
	inFront chan bool
}

func (p *frontProbe) Execute(ctx context.Context, in []*tensor.Tensor, want []string) ([]*tensor.Tensor, error) {
	front, _, _ := threadprio.Threads()
	p.inFront <- slices.Contains(front, syscall.Gettid())
	return p.echo.Execute(ctx, in, want)
}

// With the process's threads in the background, batches still run in front, on the
// instance's own thread; direct runs stay on the caller's.
func TestBatchesRunOnAForegroundThread(t *testing.T) {
	if err := threadprio.Background(); err != nil {
		t.Fatal(err)
	}
	defer threadprio.Reset() //nolint:errcheck // the other tests run in the usual class
	for _, batching := range []*Batching{{MaxQueueDelay: time.Millisecond}, nil} {
		p := &frontProbe{inFront: make(chan bool, 1)}
		s := New("m", []Instance{p}, Options{MaxBatchSize: 8, Batching: batching})
		if _, err := s.Submit(context.Background(), req(1, 1)); err != nil {
			t.Fatal(err)
		}
		s.Close()
		if got, want := <-p.inFront, batching != nil; got != want {
			t.Errorf("batching %v: the instance ran in front: %v, want %v", batching != nil, got, want)
		}
	}
}
