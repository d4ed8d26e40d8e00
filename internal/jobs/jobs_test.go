package jobs

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ferryml/ferry/internal/mgmtapi"
)

// gated runs each job until its gate closes; a job whose input is "fail" fails.
type gated struct{ gates map[string]chan struct{} }

func (g *gated) run(ctx context.Context, s mgmtapi.JobSpec, progress func(mgmtapi.JobProgress)) error {
	progress(mgmtapi.JobProgress{Rows: 10, Total: 40})
	select {
	case <-g.gates[s.Input]:
	case <-ctx.Done():
		return ctx.Err()
	}
	if s.Input == "fail" {
		return errors.New("column \"age\" is missing")
	}
	return nil
}

func spec(in string) mgmtapi.JobSpec {
	return mgmtapi.JobSpec{Model: "m", Input: in, Output: in + ".out"}
}

func TestJobsRunInOrderAndEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := &gated{gates: map[string]chan struct{}{"a": make(chan struct{}), "b": make(chan struct{}), "fail": make(chan struct{})}}
		m := New(g.run, Options{})
		defer m.Close()
		a, _ := m.Submit(spec("a"))
		b, _ := m.Submit(spec("b"))
		f, _ := m.Submit(spec("fail"))
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if st := state(t, m, a.ID, b.ID, f.ID); st != "running queued queued" {
			t.Fatalf("states %s", st)
		}
		got, _ := m.Get(a.ID)
		if p := got.Progress; p.Rows != 10 || p.RowsPerSecond != 5 || p.ETASeconds != 6 {
			t.Errorf("progress %+v, want 10 rows at 5/s, 6 s left", p)
		}
		close(g.gates["a"])
		synctest.Wait()
		if st := state(t, m, a.ID, b.ID, f.ID); st != "succeeded running queued" {
			t.Fatalf("states %s", st)
		}
		if _, err := m.Cancel(f.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Cancel(b.ID); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if st := state(t, m, a.ID, b.ID, f.ID); st != "succeeded cancelled cancelled" {
			t.Fatalf("states %s", st)
		}
		if l := m.List(); len(l) != 3 {
			t.Fatalf("list holds %d jobs", len(l))
		}
	})
}

func TestFailedJobSaysWhy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := &gated{gates: map[string]chan struct{}{"fail": make(chan struct{})}}
		m := New(g.run, Options{Keep: 1})
		defer m.Close()
		close(g.gates["fail"])
		j, _ := m.Submit(spec("fail"))
		synctest.Wait()
		got, _ := m.Get(j.ID)
		if got.State != mgmtapi.JobFailed || got.Error != `column "age" is missing` || got.Finished == nil {
			t.Fatalf("job %+v", got)
		}
	})
}

func TestBadSpecsAreRefused(t *testing.T) {
	m := New((&gated{}).run, Options{Check: func(s mgmtapi.JobSpec) error {
		if s.Input == "/etc/passwd" {
			return errors.New("input is outside --jobs-dir")
		}
		return nil
	}})
	defer m.Close()
	for _, s := range []mgmtapi.JobSpec{{}, {Model: "m", Input: "x"}, {Model: "m", Input: "x", Output: "x"}, {Model: "m", Input: "/etc/passwd", Output: "y"},
		{Model: "m", Input: "x", Output: "y", Concurrency: -1}} {
		if _, err := m.Submit(s); !errors.Is(err, ErrInvalid) {
			t.Errorf("Submit(%+v) = %v, want ErrInvalid", s, err)
		}
	}
	if _, err := m.Get("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(nope) = %v", err)
	}
}

func state(t *testing.T, m *Manager, ids ...string) string {
	t.Helper()
	s := ""
	for i, id := range ids {
		j, err := m.Get(id)
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 {
			s += " "
		}
		s += j.State
	}
	return s
}
