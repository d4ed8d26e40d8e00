package scheduler

import (
	"errors"
	"testing"
)

// readyEcho is an echo that reports readiness.
type readyEcho struct {
	echo
	err error
}

func (r *readyEcho) Ready() error { return r.err }

func TestSchedulerReady(t *testing.T) {
	down := errors.New("upstream down")
	for _, tc := range []struct {
		name      string
		instances []Instance
		want      error
	}{
		{"instances that do not report readiness are ready", []Instance{&echo{}}, nil},
		{"one ready instance is enough", []Instance{&readyEcho{err: down}, &readyEcho{}}, nil},
		{"all not ready: the first reason", []Instance{&readyEcho{err: down}, &readyEcho{err: errors.New("other")}}, down},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New("m/1", tc.instances, Options{})
			defer s.Close()
			if got := s.Ready(); !errors.Is(got, tc.want) || (got == nil) != (tc.want == nil) {
				t.Errorf("Ready() = %v, want %v", got, tc.want)
			}
		})
	}
}
