package scheduler

import (
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ferryml/ferry/internal/tensor"
)

// perRequest is a fake RequestsInstance: it records how many requests each call got
// and answers each request on its own; value 13 fails its request, 99 panics.
type perRequest struct {
	echo
	mu     sync.Mutex
	calls  []int
	broken bool // return one result too few
}

func (p *perRequest) ExecuteRequests(ctx context.Context, in [][]*tensor.Tensor, want [][]string) ([][]*tensor.Tensor, []error) {
	p.mu.Lock()
	p.calls = append(p.calls, len(in))
	p.mu.Unlock()
	outs := make([][]*tensor.Tensor, len(in))
	errs := make([]error, len(in))
	for i, x := range in {
		switch v := int32(binary.LittleEndian.Uint32(x[0].Data)); v {
		case 13:
			errs[i] = fmt.Errorf("request with %d refused", v)
		case 99:
			panic("boom")
		default:
			outs[i], errs[i] = p.Execute(ctx, x, want[i])
		}
	}
	if p.broken {
		return outs[1:], errs[1:]
	}
	return outs, errs
}

func TestBatchReachesARequestsInstanceAsItsRequests(t *testing.T) {
	for _, tc := range []struct {
		name   string
		values []int32
		broken bool
		want   []string // per request: "" for success, else a piece of its error
	}{
		{"all succeed", []int32{1, 2, 3, 4}, false, []string{"", "", "", ""}},
		{"one fails alone", []int32{1, 13, 3, 4}, false, []string{"", "refused", "", ""}},
		{"a panic fails the batch", []int32{1, 2, 99, 4}, false, []string{"backend panic: boom", "backend panic: boom", "backend panic: boom", "backend panic: boom"}},
		{"results that do not line up", []int32{1, 2, 3, 4}, true, []string{"3 results and 3 errors for 4 requests", "3 results", "3 results", "3 results"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				inst := &perRequest{broken: tc.broken}
				s := New("m", []Instance{inst}, Options{MaxBatchSize: 4, Batching: &Batching{MaxQueueDelay: time.Second}})
				defer s.Close()
				var wg sync.WaitGroup
				leaders := 0
				var mu sync.Mutex
				for i, v := range tc.values {
					wg.Go(func() {
						res, err := s.Submit(context.Background(), req(1, v))
						switch {
						case tc.want[i] == "" && err != nil:
							t.Errorf("request %d: %v", i, err)
						case tc.want[i] != "" && (err == nil || !strings.Contains(err.Error(), tc.want[i])):
							t.Errorf("request %d: err = %v, want %q", i, err, tc.want[i])
						case err == nil:
							if got := int32(binary.LittleEndian.Uint32(res.Outputs[0].Data)); got != v || res.Timing.Batch != 4 {
								t.Errorf("request %d: value %d in a batch of %d, want %d in 4", i, got, res.Timing.Batch, v)
							}
							mu.Lock()
							if res.Timing.Leader {
								leaders++
							}
							mu.Unlock()
						}
					})
				}
				wg.Wait()
				if len(inst.calls) != 1 || inst.calls[0] != 4 {
					t.Errorf("ExecuteRequests calls = %v, want one of 4 requests", inst.calls)
				}
				if succeeded := len(tc.want) - countNonEmpty(tc.want); succeeded > 0 && leaders != 1 {
					t.Errorf("%d leaders among the successful requests, want 1", leaders)
				}
			})
		})
	}
}

func countNonEmpty(ss []string) int {
	n := 0
	for _, s := range ss {
		if s != "" {
			n++
		}
	}
	return n
}

// TestSingleRequestsStillUseExecute: a batch of one goes through Execute, so a
// RequestsInstance keeps the single-request path (and its caller's cancellation).
func TestSingleRequestsStillUseExecute(t *testing.T) {
	inst := &perRequest{}
	s := New("m", []Instance{inst}, Options{MaxBatchSize: 4, Batching: &Batching{}})
	defer s.Close()
	if _, err := s.Submit(context.Background(), req(1, 5)); err != nil {
		t.Fatal(err)
	}
	if len(inst.calls) != 0 {
		t.Errorf("ExecuteRequests ran for a lone request: %v", inst.calls)
	}
}
