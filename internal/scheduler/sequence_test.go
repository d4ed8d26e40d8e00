package scheduler

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ferryml/ferry/internal/tensor"
)

// accumulator is a fake stateful instance: y = x + S and S_OUT = y, where S is the
// implicit state. It records every execution's rows and control values, and notices a
// sequence (by CORRID) executing twice at the same time.
type accumulator struct {
	name    string
	gate    chan struct{} // when set, each execution waits for it to be closed
	delay   time.Duration
	mu      sync.Mutex
	execs   []accExec
	running map[float64]bool
	overlap bool
}

type accExec struct {
	inst     string
	x, state []int32
	ctl      map[string][]float64 // control input -> one value per row
	corrText []string             // CORRID rows when it is BYTES
}

func (a *accumulator) Execute(ctx context.Context, in []*tensor.Tensor, want []string) ([]*tensor.Tensor, error) {
	if a.gate != nil {
		<-a.gate
	}
	by := map[string]*tensor.Tensor{}
	for _, t := range in {
		by[t.Name] = t
	}
	x, s := by["x"], by["S"]
	if x == nil || s == nil {
		return nil, fmt.Errorf("fake: inputs %v lack x or S", slices.Collect(func(yield func(string) bool) {
			for n := range by {
				yield(n)
			}
		}))
	}
	e := accExec{inst: a.name, x: int32s(x), state: int32s(s), ctl: map[string][]float64{}}
	for _, name := range []string{"START", "END", "READY", "CORRID"} {
		t := by[name]
		switch {
		case t == nil:
		case t.DType == tensor.Bytes:
			els, _ := tensor.BytesElements(t.Data)
			for _, b := range els {
				e.corrText = append(e.corrText, string(b))
			}
		default:
			e.ctl[name], _ = t.Float64s()
		}
	}
	ids := e.ctl["CORRID"]
	a.mu.Lock()
	a.execs = append(a.execs, e)
	if a.running == nil {
		a.running = map[float64]bool{}
	}
	for _, id := range ids {
		if id != 0 && a.running[id] {
			a.overlap = true
		}
		a.running[id] = true
	}
	a.mu.Unlock()
	if a.delay > 0 {
		time.Sleep(a.delay)
	}
	a.mu.Lock()
	for _, id := range ids {
		delete(a.running, id)
	}
	a.mu.Unlock()
	y := make([]byte, len(x.Data))
	for i := range e.x {
		binary.LittleEndian.PutUint32(y[4*i:], uint32(e.x[i]+e.state[i]))
	}
	out := []*tensor.Tensor{
		{Name: "y", DType: tensor.Int32, Shape: x.Shape.Clone(), Data: y},
		{Name: "S_OUT", DType: tensor.Int32, Shape: s.Shape.Clone(), Data: slices.Clone(y)},
	}
	if want == nil {
		return out, nil
	}
	return pickOutputs(out, want), nil
}

func (a *accumulator) Close() error { return nil }

func (a *accumulator) executions() []accExec {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.execs)
}

func int32s(t *tensor.Tensor) []int32 {
	out := make([]int32, len(t.Data)/4)
	for i := range out {
		out[i] = int32(binary.LittleEndian.Uint32(t.Data[4*i:]))
	}
	return out
}

func le32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }

// accState is the fake's implicit state.
var accState = State{Input: "S", Output: "S_OUT", DType: tensor.Int32, Dims: tensor.Shape{1}}

// allControls uses each false/true encoding once: START INT32, END FP32, READY BOOL.
func allControls(corr tensor.DType) []Control {
	return []Control{
		{Kind: ControlStart, Input: "START", DType: tensor.Int32, False: le32(0), True: le32(1)},
		{Kind: ControlEnd, Input: "END", DType: tensor.FP32, False: le32(math.Float32bits(0)), True: le32(math.Float32bits(1))},
		{Kind: ControlReady, Input: "READY", DType: tensor.Bool, False: []byte{0}, True: []byte{1}},
		{Kind: ControlCorrID, Input: "CORRID", DType: corr},
	}
}

// seqReq is one row of x = v in sequence id; batched gives it the batch dimension.
func seqReq(id uint64, v int32, start, end bool) *Request {
	return &Request{
		Inputs:   []*tensor.Tensor{{Name: "x", DType: tensor.Int32, Shape: tensor.Shape{1, 1}, Data: le32(uint32(v))}},
		Outputs:  []string{"y"},
		Sequence: &Sequence{ID: id, Start: start, End: end},
	}
}

// value is the single INT32 an accumulator response holds.
func value(t *testing.T, res *Result) int32 {
	t.Helper()
	if len(res.Outputs) != 1 || res.Outputs[0].Name != "y" {
		t.Fatalf("outputs %v, want only y (the state output stays inside)", res.Outputs)
	}
	return int32s(res.Outputs[0])[0]
}

// send submits in a goroutine and returns the channel of its outcome.
func send(s *Scheduler, r *Request) chan error {
	return sendCtx(context.Background(), s, r, nil)
}

func sendCtx(ctx context.Context, s *Scheduler, r *Request, got *int32) chan error {
	done := make(chan error, 1)
	go func() {
		res, err := s.Submit(ctx, r)
		if err == nil && got != nil {
			*got = int32s(res.Outputs[0])[0]
		}
		done <- err
	}()
	return done
}

func TestEachSequenceAccumulatesItsOwnState(t *testing.T) {
	for _, strategy := range []SequenceStrategy{StrategyDirect, StrategyOldest} {
		t.Run(fmt.Sprint("strategy ", strategy), func(t *testing.T) {
			insts := []Instance{&accumulator{name: "a", delay: time.Millisecond}, &accumulator{name: "b", delay: time.Millisecond}}
			s := New("m", insts, Options{MaxBatchSize: 4, Sequencing: &Sequencing{
				Strategy: strategy, MaxQueueDelay: time.Millisecond, Controls: allControls(tensor.Uint64), States: []State{accState}}})
			defer s.Close()
			var wg sync.WaitGroup
			for id := uint64(1); id <= 12; id++ { // more sequences than the 8 slots: some wait
				wg.Go(func() {
					sum := int32(0)
					for step := range 6 {
						v := int32(id)*100 + int32(step)
						res, err := s.Submit(context.Background(), seqReq(id, v, step == 0, step == 5))
						if err != nil {
							t.Errorf("sequence %d step %d: %v", id, step, err)
							return
						}
						sum += v
						if got := value(t, res); got != sum {
							t.Errorf("sequence %d step %d: got %d, want the running sum %d", id, step, got, sum)
						}
					}
				})
			}
			wg.Wait()
			for _, in := range insts {
				if in.(*accumulator).overlap {
					t.Error("a sequence ran two requests at the same time")
				}
				for _, e := range in.(*accumulator).executions() {
					if len(e.x) > 4 {
						t.Errorf("a batch of %d rows ran; max_batch_size is 4", len(e.x))
					}
				}
			}
		})
	}
}

func TestDirectKeepsEachSequenceInItsSlot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		inst := &accumulator{name: "a"}
		s := New("m", []Instance{inst}, Options{MaxBatchSize: 4, Sequencing: &Sequencing{
			MaxQueueDelay: 10 * time.Millisecond, MinSlotUtilization: 0.75,
			Controls: allControls(tensor.Uint64), States: []State{accState}}})
		defer s.Close()
		start := time.Now()
		var errs []chan error
		for id := uint64(1); id <= 3; id++ { // slots 0, 1, 2 in this order
			errs = append(errs, send(s, seqReq(id, int32(id), true, false)))
			synctest.Wait()
		}
		for _, e := range errs {
			if err := <-e; err != nil {
				t.Fatal(err)
			}
		}
		if waited := time.Since(start); waited != 0 {
			t.Errorf("3 of 4 slots ready (minimum_slot_utilization 0.75) waited %v, want 0", waited)
		}
		// Sequence 1 ends alone: 1 of 4 slots waits the whole queue delay.
		if err := <-send(s, seqReq(1, 10, false, true)); err != nil {
			t.Fatal(err)
		}
		if waited := time.Since(start); waited != 10*time.Millisecond {
			t.Errorf("one ready slot ran after %v, want the 10ms queue delay", waited)
		}
		// Sequences 2 and 3 keep rows 1 and 2; row 0 is padding with READY false.
		var got2, got3 int32
		e2 := sendCtx(context.Background(), s, seqReq(2, 20, false, false), &got2)
		e3 := sendCtx(context.Background(), s, seqReq(3, 30, false, false), &got3)
		if err := errors.Join(<-e2, <-e3); err != nil {
			t.Fatal(err)
		}
		if got2 != 22 || got3 != 33 {
			t.Errorf("sums %d and %d, want 22 and 33", got2, got3)
		}
		ex := inst.executions()
		want := []struct {
			corr, start, end, ready []float64
		}{
			{corr: []float64{1, 2, 3}, start: []float64{1, 1, 1}, end: []float64{0, 0, 0}, ready: []float64{1, 1, 1}},
			{corr: []float64{1}, start: []float64{0}, end: []float64{1}, ready: []float64{1}},
			{corr: []float64{0, 2, 3}, start: []float64{0, 0, 0}, end: []float64{0, 0, 0}, ready: []float64{0, 1, 1}},
		}
		if len(ex) != len(want) {
			t.Fatalf("%d executions, want %d", len(ex), len(want))
		}
		for i, w := range want {
			c := ex[i].ctl
			if !slices.Equal(c["CORRID"], w.corr) || !slices.Equal(c["START"], w.start) ||
				!slices.Equal(c["END"], w.end) || !slices.Equal(c["READY"], w.ready) {
				t.Errorf("execution %d: controls %v, want CORRID %v START %v END %v READY %v", i, c, w.corr, w.start, w.end, w.ready)
			}
		}
		if !slices.Equal(ex[2].state, []int32{0, 2, 3}) {
			t.Errorf("states fed to the third execution %v, want [0 2 3] (zeros in padding)", ex[2].state)
		}
	})
}

func TestRequestsOfASequenceRunInOrderOneAtATime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		insts := []Instance{&accumulator{name: "a", delay: 5 * time.Millisecond}, &accumulator{name: "b", delay: 5 * time.Millisecond}}
		s := New("m", insts, Options{MaxBatchSize: 4, Sequencing: &Sequencing{
			Strategy: StrategyOldest, Controls: allControls(tensor.Uint64), States: []State{accState}}})
		defer s.Close()
		got := make([]int32, 8)
		var errs []chan error
		for i := range 8 { // queued at once, in this order
			errs = append(errs, sendCtx(context.Background(), s, seqReq(7, int32(i+1), i == 0, false), &got[i]))
			synctest.Wait()
		}
		for _, e := range errs {
			if err := <-e; err != nil {
				t.Fatal(err)
			}
		}
		if want := []int32{1, 3, 6, 10, 15, 21, 28, 36}; !slices.Equal(got, want) {
			t.Errorf("running sums %v, want %v", got, want)
		}
		for _, in := range insts {
			if in.(*accumulator).overlap {
				t.Error("two requests of one sequence ran at the same time")
			}
		}
	})
}

func TestIdleSequenceIsReleased(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// One slot: a second sequence waits until the first one's slot is freed.
		s := New("m", []Instance{&accumulator{name: "a"}}, Options{MaxBatchSize: 1, Sequencing: &Sequencing{
			IdleTimeout: 100 * time.Millisecond, States: []State{accState}}})
		defer s.Close()
		if _, err := s.Submit(context.Background(), seqReq(1, 5, true, false)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(60 * time.Millisecond)
		res, err := s.Submit(context.Background(), seqReq(1, 1, false, false))
		if err != nil || value(t, res) != 6 {
			t.Fatalf("within the idle time: %v, %v; want the sum 6", res, err)
		}
		start := time.Now()
		if _, err := s.Submit(context.Background(), seqReq(2, 1, true, false)); err != nil {
			t.Fatal(err)
		}
		if waited := time.Since(start); waited != 100*time.Millisecond {
			t.Errorf("a new sequence waited %v for the only slot, want the 100ms until sequence 1 is idle", waited)
		}
		_, err = s.Submit(context.Background(), seqReq(1, 1, false, false))
		var se *SequenceError
		if !errors.As(err, &se) || !strings.Contains(err.Error(), "sequence 1 is not active") {
			t.Fatalf("request of a released sequence: %v, want a SequenceError naming sequence 1", err)
		}
	})
}

func TestStartAndEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New("m", []Instance{&accumulator{name: "a"}}, Options{MaxBatchSize: 2, Sequencing: &Sequencing{States: []State{accState}}})
		defer s.Close()
		step := func(id uint64, v int32, start, end bool) (int32, error) {
			res, err := s.Submit(context.Background(), seqReq(id, v, start, end))
			if err != nil {
				return 0, err
			}
			return value(t, res), nil
		}
		for _, tc := range []struct {
			name       string
			id         uint64
			v          int32
			start, end bool
			want       int32
			wantErr    string
		}{
			{"no START for a new sequence", 9, 1, false, false, 0, "sequence 9 is not active"},
			{"START", 9, 5, true, false, 5, ""},
			{"continue", 9, 3, false, false, 8, ""},
			{"START again restarts from the initial state", 9, 2, true, false, 2, ""},
			{"END", 9, 1, false, true, 3, ""},
			{"after END", 9, 1, false, false, 0, "sequence 9 is not active"},
			{"START and END in one request", 9, 4, true, true, 4, ""},
		} {
			got, err := step(tc.id, tc.v, tc.start, tc.end)
			switch {
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("%s: got %d, %v; want error %q", tc.name, got, err, tc.wantErr)
			case tc.wantErr == "" && (err != nil || got != tc.want):
				t.Errorf("%s: got %d, %v; want %d", tc.name, got, err, tc.want)
			}
		}
		// END freed the slots: two new sequences run together at once.
		start := time.Now()
		e1, e2 := send(s, seqReq(1, 1, true, false)), send(s, seqReq(2, 1, true, false))
		if err := errors.Join(<-e1, <-e2); err != nil || time.Since(start) != 0 {
			t.Errorf("two new sequences in two free slots: %v after %v", err, time.Since(start))
		}
	})
}

func TestSequenceRequestsThatAreRefused(t *testing.T) {
	s := New("m", []Instance{&accumulator{name: "a"}}, Options{MaxBatchSize: 4, Sequencing: &Sequencing{
		Controls: allControls(tensor.Int32), States: []State{accState}}})
	defer s.Close()
	noSeq := seqReq(1, 1, true, false)
	noSeq.Sequence = nil
	zeroID := seqReq(0, 1, true, false)
	twoRows := seqReq(1, 1, true, false)
	twoRows.Inputs[0] = &tensor.Tensor{Name: "x", DType: tensor.Int32, Shape: tensor.Shape{2, 1}, Data: make([]byte, 8)}
	text := seqReq(0, 1, true, false)
	text.Sequence.IDString = "abc"
	big := seqReq(1<<40, 1, true, false)
	for _, tc := range []struct {
		name string
		req  *Request
		want string
	}{
		{"no sequence", noSeq, "needs a sequence_id parameter"},
		{"sequence ID 0", zeroID, "needs a sequence_id parameter"},
		{"batch of two", twoRows, "must have batch size 1, got 2"},
		{"string ID with an INT32 CORRID", text, `sequence "abc": this model's CORRID control is INT32`},
		{"ID too large for INT32 CORRID", big, "does not fit this model's INT32 CORRID"},
	} {
		_, err := s.Submit(context.Background(), tc.req)
		var se *SequenceError
		if !errors.As(err, &se) || !se.InvalidInput() || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want a SequenceError containing %q", tc.name, err, tc.want)
		}
	}
}

func TestOldestBatchesCandidatesAndBacklogs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		inst := &accumulator{name: "a"}
		s := New("m", []Instance{inst}, Options{MaxBatchSize: 4, Sequencing: &Sequencing{
			Strategy: StrategyOldest, MaxCandidates: 2, MaxQueueDelay: 10 * time.Millisecond, PreferredBatchSizes: []int{2},
			Controls: allControls(tensor.Bytes), States: []State{accState}}})
		defer s.Close()
		start := time.Now()
		text := func(id string, v int32, startSeq, end bool) *Request {
			r := seqReq(0, v, startSeq, end)
			r.Sequence.IDString = id
			return r
		}
		ea := send(s, text("a", 1, true, false))
		synctest.Wait() // a is older than b
		eb := send(s, text("b", 2, true, false))
		synctest.Wait()
		ec := send(s, text("c", 3, true, false)) // a third candidate: backlog
		if err := errors.Join(<-ea, <-eb); err != nil {
			t.Fatal(err)
		}
		if time.Since(start) != 0 {
			t.Errorf("a preferred batch of 2 waited %v", time.Since(start))
		}
		synctest.Wait()
		select {
		case err := <-ec:
			t.Fatalf("sequence c ran (%v) while both candidate places were taken", err)
		default:
		}
		if err := <-send(s, text("a", 1, false, true)); err != nil { // a ends alone, after the delay
			t.Fatal(err)
		}
		if err := <-ec; err != nil {
			t.Fatal(err)
		}
		ex := inst.executions()
		if len(ex) != 3 || !slices.Equal(ex[0].corrText, []string{"a", "b"}) || !slices.Equal(ex[2].corrText, []string{"c"}) {
			var rows [][]string
			for _, e := range ex {
				rows = append(rows, e.corrText)
			}
			t.Errorf("executions by CORRID %v, want [[a b] [a] [c]]", rows)
		}
	})
}

func TestCancelledSequenceRequestNeverRuns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		inst := &accumulator{name: "a", gate: make(chan struct{})}
		s := New("m", []Instance{inst}, Options{MaxBatchSize: 1, Sequencing: &Sequencing{States: []State{accState}}})
		defer s.Close()
		var first int32
		e1 := sendCtx(context.Background(), s, seqReq(1, 5, true, false), &first) // held in the instance
		synctest.Wait()
		ctx, cancel := context.WithCancel(context.Background())
		e2 := sendCtx(ctx, s, seqReq(1, 100, false, false), nil) // queued behind it
		synctest.Wait()
		cancel()
		if err := <-e2; !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled request: %v", err)
		}
		close(inst.gate)
		if err := <-e1; err != nil {
			t.Fatal(err)
		}
		res, err := s.Submit(context.Background(), seqReq(1, 1, false, false))
		if err != nil || value(t, res) != 6 {
			t.Fatalf("after a cancelled request: %v %v, want the sum 6 (the cancelled 100 never added)", res, err)
		}
	})
}

func TestSequenceWithoutBatchingAndWithInitialState(t *testing.T) {
	inst := &accumulator{name: "a"}
	st := accState
	st.Initial = le32(1000)
	s := New("m", []Instance{inst}, Options{Sequencing: &Sequencing{Controls: allControls(tensor.Int64), States: []State{st}}})
	defer s.Close()
	unbatched := func(v int32, start bool) *Request {
		r := seqReq(3, v, start, false)
		r.Inputs[0].Shape = tensor.Shape{1}
		return r
	}
	for i, want := range []int32{1001, 1003} {
		res, err := s.Submit(context.Background(), unbatched(int32(i+1), i == 0))
		if err != nil {
			t.Fatal(err)
		}
		if got := value(t, res); got != want {
			t.Errorf("step %d: got %d, want %d (initial state 1000)", i, got, want)
		}
		if sh := res.Outputs[0].Shape; !sh.Equal(tensor.Shape{1}) {
			t.Errorf("output shape %v, want [1] without a batch dimension", sh)
		}
	}
	if c := inst.executions()[0].ctl; !slices.Equal(c["START"], []float64{1}) || !slices.Equal(c["CORRID"], []float64{3}) {
		t.Errorf("controls %v, want START [1] CORRID [3]", c)
	}
}
