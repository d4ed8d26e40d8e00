package scheduler

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/ferryml/ferry/internal/platform/threadprio"
	"github.com/ferryml/ferry/internal/tensor"
)

// With the process's threads in the background, batches still run in front, on the
// instance's own thread; direct runs stay on the caller's.
func TestBatchesRunOnAForegroundThread(t *testing.T) {
	if err := threadprio.Background(); err != nil {
		t.Fatal(err)
	}
	defer threadprio.Reset() //nolint:errcheck // the other tests run in the usual class
	for _, batching := range []*Batching{{MaxQueueDelay: time.Millisecond}, nil} {
		p := &tidProbe{tid: make(chan int, 1)}
		s := New("m", []Instance{p}, Options{MaxBatchSize: 8, Batching: batching})
		if _, err := s.Submit(context.Background(), req(1, 1)); err != nil {
			t.Fatal(err)
		}
		front, _, _ := threadprio.Threads() // while the scheduler, and its thread, lives
		s.Close()
		if got, want := slices.Contains(front, <-p.tid), batching != nil; got != want {
			t.Errorf("batching %v: the instance ran in front: %v, want %v", batching != nil, got, want)
		}
	}
}

// tidProbe records the thread each execution runs on.
type tidProbe struct {
	echo
	tid chan int
}

func (p *tidProbe) Execute(ctx context.Context, in []*tensor.Tensor, want []string) ([]*tensor.Tensor, error) {
	p.tid <- syscall.Gettid()
	return p.echo.Execute(ctx, in, want)
}

// Go keeps the main thread even when a locked goroutine ends on it, so the test below
// could not tell; locking the main goroutine to it keeps every instance elsewhere.
func init() { runtime.LockOSThread() }

// An instance's thread outlives its scheduler: a child process another goroutine
// started from that thread earlier gets its parent-death signal when the thread exits,
// which killed Python models' processes when an unrelated model unloaded.
func TestInstanceThreadOutlivesTheScheduler(t *testing.T) {
	for _, opts := range []Options{
		{MaxBatchSize: 8, Batching: &Batching{MaxQueueDelay: time.Millisecond}},
		{MaxBatchSize: 8, Sequencing: &Sequencing{}},
	} {
		tid := instanceThread(t, opts)
		if tid == os.Getpid() {
			t.Fatal("the instance ran on the main thread, which init keeps for the main goroutine")
		}
		// A locked goroutine's thread exits just after the goroutine: watch for a while.
		for deadline := time.Now().Add(200 * time.Millisecond); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if _, err := os.Stat(fmt.Sprintf("/proc/self/task/%d", tid)); err != nil {
				t.Errorf("batching %v, sequencing %v: the instance's thread %d exited with the scheduler", opts.Batching != nil, opts.Sequencing != nil, tid)
				break
			}
		}
	}
}

// instanceThread runs one request through a new scheduler, closes it, and returns the
// thread the instance ran on.
func instanceThread(t *testing.T, opts Options) int {
	t.Helper()
	p := &tidProbe{tid: make(chan int, 1)}
	s := New("m", []Instance{p}, opts)
	defer s.Close()
	r := req(1, 1)
	if opts.Sequencing != nil {
		r.Sequence = &Sequence{ID: 1, Start: true, End: true}
	}
	if _, err := s.Submit(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return <-p.tid
}
