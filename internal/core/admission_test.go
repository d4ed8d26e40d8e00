package core

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// gate is an Admission that records what it is asked and refuses with refuse.
type gate struct {
	mu      sync.Mutex
	tickets []Ticket
	done    []error
	refuse  error
}

func (g *gate) Admit(_ context.Context, t Ticket) (func(time.Duration, error), error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.tickets = append(g.tickets, t)
	if g.refuse != nil {
		return nil, g.refuse
	}
	return func(d time.Duration, err error) {
		g.mu.Lock()
		defer g.mu.Unlock()
		g.done = append(g.done, err)
	}, nil
}

type tenantKey struct{}

// refused is a refusal as admission makes them: a kind and when to retry.
type refused struct{ retry time.Duration }

func (refused) Error() string            { return "tenant acme is over its rate limit" }
func (refused) Unwrap() error            { return ErrRateLimited }
func (r refused) RetryIn() time.Duration { return r.retry }

func TestAdmissionSeesTheRequestAndItsRefusalIsNotAFailure(t *testing.T) {
	repo := newOneModel(t, false)
	g := &gate{}
	s := New(Options{Repository: repo, Admission: g, CallerOf: func(ctx context.Context) (string, string) {
		return ctx.Value(tenantKey{}).(string), "key-1"
	}})
	ctx := context.WithValue(t.Context(), tenantKey{}, "acme")
	req := request(1, 2, 3, 4)
	req.Parameters = Parameters{"priority": int64(3)}
	if _, err := s.Infer(ctx, req); err != nil {
		t.Fatal(err)
	}
	want := Ticket{Tenant: "acme", Key: "key-1", Model: "m", Version: "1", Config: repo.cfg, Items: 2, Priority: 3}
	if len(g.tickets) != 1 || g.tickets[0] != want || len(g.done) != 1 || g.done[0] != nil {
		t.Fatalf("tickets %+v done %v; want [%+v] done once with nil", g.tickets, g.done, want)
	}

	g.refuse = refused{retry: 3 * time.Second}
	_, err := s.Infer(ctx, request(1, 2))
	if !errors.Is(err, ErrRateLimited) || RetryAfter(err) != 3*time.Second {
		t.Fatalf("refused request: err %v (retry after %s), want the refusal", err, RetryAfter(err))
	}
	if RetryAfter(errors.New("other")) != 0 {
		t.Error("RetryAfter of a plain error is not 0")
	}
	st, err := s.ModelStatistics(t.Context(), "m", "")
	if err != nil || len(st) != 1 || st[0].Success.Count != 1 || st[0].Fail.Count != 0 {
		t.Errorf("stats %+v, %v: want 1 success and no failure (a refusal is not the version's failure)", st, err)
	}
	if repo.inst.count() != 1 {
		t.Errorf("the model ran %d times, want once: a refused request never reaches it", repo.inst.count())
	}
}

// An ensemble is admitted once, as itself: its steps pass.
func TestAdmissionOfAnEnsembleIsNotRepeatedForItsSteps(t *testing.T) {
	s := ensServer(t, map[string]string{
		"left": ensPlain + ensIO([]string{"X"}, []string{"Y"}),
		"pipe": ensIO([]string{"IN"}, []string{"OUT"}) + ensSteps(`
			{ model_name: "left" model_version: -1 input_map { key: "X" value: "IN" } output_map { key: "Y" value: "OUT" } }`),
	}, map[string]*ensFn{"left": ensPass(func(context.Context) error { return nil })})
	g := &gate{}
	s.admission = g
	if _, err := ensInfer(s, t.Context(), "pipe", nil, ensVec("IN", 1, 2)); err != nil {
		t.Fatal(err)
	}
	if len(g.tickets) != 1 || g.tickets[0].Model != "pipe" {
		t.Errorf("tickets %+v, want one, for the ensemble", g.tickets)
	}
}
