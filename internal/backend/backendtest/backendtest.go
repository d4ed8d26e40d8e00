package backendtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferryml/ferry/internal/scheduler"
	"github.com/ferryml/ferry/internal/tensor"
)

// Factory describes one backend's small test model: a model that batches along the
// first dimension and whose outputs follow from its inputs alone (an add, an echo, a
// tree ensemble), so that every request's outputs can be checked on their own.
type Factory struct {
	// Name names the model in the scheduler's errors.
	Name string
	// MaxBatchSize is the model's max_batch_size, at least 2: the largest number of
	// rows one execution takes.
	MaxBatchSize int
	// Outputs are the model's output names, in the order Execute returns them when
	// it is asked for all of them.
	Outputs []string
	// Open opens a new instance of the model. The suite owns it and closes it (more
	// than once: Close must be safe to repeat).
	Open func(t *testing.T) scheduler.Instance
	// Inputs returns a request of rows rows whose values depend on seed, so that two
	// requests with different seeds expect different outputs.
	Inputs func(rows, seed int) []*tensor.Tensor
	// Check reports (t.Errorf) any output in out whose values are not what in should
	// give. out holds the outputs asked for, possibly a subset of Outputs: Check finds
	// them by name and checks those it is given. It is called from several goroutines
	// at once, so it must not call t.Fatal.
	Check func(t *testing.T, in, out []*tensor.Tensor)
	// Runs, when not nil, counts the executions that reached the engine (an upstream's
	// requests, say), so the suite can tell that a cancelled request did not run.
	Runs func() int64
}

// Run runs the conformance suite against f, each check a subtest.
func Run(t *testing.T, f Factory) {
	t.Helper()
	if f.Open == nil || f.Inputs == nil || f.Check == nil || len(f.Outputs) == 0 || f.MaxBatchSize < 2 {
		t.Fatalf("backendtest: factory %q needs Open, Inputs, Check, Outputs and MaxBatchSize ≥ 2", f.Name)
	}
	t.Run("Execute gives one row and a full batch their outputs", f.testExecute)
	t.Run("Execute returns the outputs asked for, in that order", f.testSubset)
	t.Run("a cancelled context fails Execute and the instance still works", f.testCancelled)
	t.Run("instances execute concurrently", f.testConcurrentInstances)
	t.Run("the dynamic batcher packs requests over two instances", f.testBatching)
	t.Run("Close returns nil and is safe to repeat", f.testClose)
}

// open opens an instance closed again when the test ends (a second Close, usually).
func (f Factory) open(t *testing.T) scheduler.Instance {
	t.Helper()
	in := f.Open(t)
	if in == nil {
		t.Fatalf("%s: Open returned a nil instance", f.Name)
	}
	t.Cleanup(func() { in.Close() })
	return in
}

// execute runs one request on in and checks its outputs: names, rows and values.
func (f Factory) execute(ctx context.Context, t *testing.T, in scheduler.Instance, rows, seed int, want []string) {
	t.Helper()
	x := f.Inputs(rows, seed)
	out, err := in.Execute(ctx, x, want)
	if err != nil {
		t.Errorf("%s: Execute(%d rows, seed %d, want %q): %v", f.Name, rows, seed, want, err)
		return
	}
	f.verify(t, x, out, rows, want)
}

// verify checks that out names the outputs asked for (all when want is nil), each with
// rows rows, then lets the factory check the values.
func (f Factory) verify(t *testing.T, in, out []*tensor.Tensor, rows int, want []string) {
	t.Helper()
	names := make([]string, len(out))
	for i, o := range out {
		if o == nil {
			t.Errorf("%s: output %d is nil", f.Name, i)
			return
		}
		names[i] = o.Name
		if len(o.Shape) == 0 || o.Shape[0] != int64(rows) {
			t.Errorf("%s: output %q has shape %v, want %d rows", f.Name, o.Name, o.Shape, rows)
		}
		if err := o.Validate(); err != nil {
			t.Errorf("%s: output %q: %v", f.Name, o.Name, err)
		}
	}
	expect := want
	if expect == nil {
		expect = f.Outputs
	}
	if !slices.Equal(names, expect) {
		t.Errorf("%s: outputs %q, want %q", f.Name, names, expect)
		return
	}
	f.Check(t, in, out)
}

func (f Factory) testExecute(t *testing.T) {
	in := f.open(t)
	for _, rows := range []int{1, f.MaxBatchSize} {
		f.execute(context.Background(), t, in, rows, rows, nil)
	}
}

func (f Factory) testSubset(t *testing.T) {
	in := f.open(t)
	wants := [][]string{}
	for _, o := range f.Outputs {
		wants = append(wants, []string{o})
	}
	if len(f.Outputs) > 1 {
		rev := slices.Clone(f.Outputs)
		slices.Reverse(rev)
		wants = append(wants, rev)
	}
	for i, want := range wants {
		f.execute(context.Background(), t, in, 2, 100+i, want)
	}
}

func (f Factory) testCancelled(t *testing.T) {
	in := f.open(t)
	f.execute(context.Background(), t, in, 1, 1, nil) // started and warm
	var before int64
	if f.Runs != nil {
		before = f.Runs()
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	out, err := in.Execute(ctx, f.Inputs(1, 2), nil)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("%s: Execute with a cancelled context = %d outputs, %v; want an error wrapping context.Canceled", f.Name, len(out), err)
	}
	if f.Runs != nil {
		if after := f.Runs(); after != before {
			t.Errorf("%s: a cancelled Execute reached the engine (%d executions, want %d)", f.Name, after, before)
		}
	}
	f.execute(context.Background(), t, in, 1, 3, nil)
}

// testConcurrentInstances runs several instances at once, each from its own goroutine
// as the scheduler does; under -race this finds state the instances share unguarded.
func (f Factory) testConcurrentInstances(t *testing.T) {
	const instances, rounds = 3, 10
	var wg sync.WaitGroup
	for i := range instances {
		in := f.open(t)
		wg.Go(func() {
			for r := range rounds {
				rows := 1 + (i+r)%f.MaxBatchSize
				f.execute(context.Background(), t, in, rows, 1000*i+r, nil)
			}
		})
	}
	wg.Wait()
}

// counter is a scheduler.Observer counting executions and their rows.
type counter struct {
	executions, rows, maxRows atomic.Int64
	dropped                   atomic.Int64
}

func (c *counter) Executed(rows int) {
	c.executions.Add(1)
	c.rows.Add(int64(rows))
	for {
		m := c.maxRows.Load()
		if int64(rows) <= m || c.maxRows.CompareAndSwap(m, int64(rows)) {
			return
		}
	}
}
func (c *counter) Dropped(string)                { c.dropped.Add(1) }
func (c *counter) QueueDepth(int, int)           {}
func (c *counter) Batched(time.Duration, string) {}

// testBatching submits from 16 goroutines at once, through a scheduler with dynamic
// batching over two instances: every request must get back its own outputs (a batch
// split wrongly hands one request another's rows), and requests must share executions.
func (f Factory) testBatching(t *testing.T) {
	const clients, rounds = 16, 8
	obs := &counter{}
	s := scheduler.New(f.Name, []scheduler.Instance{f.open(t), f.open(t)}, scheduler.Options{
		MaxBatchSize: f.MaxBatchSize,
		Batching:     &scheduler.Batching{MaxQueueDelay: 2 * time.Millisecond},
		Observer:     obs,
	})
	defer func() {
		if err := s.Close(); err != nil {
			t.Errorf("%s: scheduler Close: %v", f.Name, err)
		}
	}()
	var sent atomic.Int64
	start := make(chan struct{})
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			<-start
			for r := range rounds {
				rows := 1 + (c+r)%min(2, f.MaxBatchSize)
				seed := 10_000 + c*rounds + r
				var want []string
				if r%4 == 3 { // some requests want one output only
					want = f.Outputs[len(f.Outputs)-1:]
				}
				x := f.Inputs(rows, seed)
				res, err := s.Submit(context.Background(), &scheduler.Request{Inputs: x, Outputs: want})
				if err != nil {
					t.Errorf("%s: Submit(%d rows, seed %d): %v", f.Name, rows, seed, err)
					return
				}
				sent.Add(int64(rows))
				f.verify(t, x, res.Outputs, rows, want)
			}
		})
	}
	close(start)
	wg.Wait()
	if t.Failed() {
		return
	}
	execs, rows := obs.executions.Load(), obs.rows.Load()
	if rows != sent.Load() {
		t.Errorf("%s: executions ran %d rows, want the %d rows sent", f.Name, rows, sent.Load())
	}
	if execs >= clients*rounds { // fewer executions than requests: some ran together
		t.Errorf("%s: %d requests ran in %d executions (largest %d rows); want batches packing several requests",
			f.Name, clients*rounds, execs, obs.maxRows.Load())
	}
	if d := obs.dropped.Load(); d != 0 {
		t.Errorf("%s: %d requests dropped, want none", f.Name, d)
	}
	t.Logf("%s: %d requests (%d rows) in %d executions, largest %d rows", f.Name, clients*rounds, rows, execs, obs.maxRows.Load())
}

func (f Factory) testClose(t *testing.T) {
	in := f.open(t)
	f.execute(context.Background(), t, in, 1, 1, nil)
	if err := in.Close(); err != nil {
		t.Errorf("%s: Close after use: %v", f.Name, err)
	}
	err := closeSafely(in)
	var p panicked
	if errors.As(err, &p) {
		t.Errorf("%s: a second Close panicked: %v", f.Name, err)
	} else if err != nil {
		t.Errorf("%s: a second Close: %v, want nil", f.Name, err)
	}
}

// panicked is a panic recovered from Close.
type panicked struct{ v any }

func (p panicked) Error() string { return fmt.Sprint("panic: ", p.v) }

func closeSafely(in scheduler.Instance) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = panicked{r}
		}
	}()
	return in.Close()
}
