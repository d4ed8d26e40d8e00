package repository

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ferryml/ferry/internal/core"
)

// scriptedSource plays one sync result per call, running its change (files written into
// the root, as a mirror would) first; past the script it repeats the last result.
type scriptedSource struct {
	steps []syncStep
	calls int
}

type syncStep struct {
	change  func()
	refused map[string]error
	err     error
}

func (s *scriptedSource) Sync(context.Context) (map[string]error, error) {
	st := s.steps[min(s.calls, len(s.steps)-1)]
	s.calls++
	if st.change != nil && s.calls <= len(s.steps) {
		st.change()
	}
	return st.refused, st.err
}

func sourceRepo(t *testing.T, root string, mode Mode, src Source) *Repository {
	t.Helper()
	r, err := New(Options{Root: root, Mode: mode, Backends: fakeBackends(), Source: src})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func indexEntry(r *Repository, name string) (core.ModelIndexEntry, bool) {
	for _, e := range r.Index(false) {
		if e.Name == name {
			return e, true
		}
	}
	return core.ModelIndexEntry{}, false
}

func TestStartFailsWhenTheSourceCannotSync(t *testing.T) {
	down := errors.New("model store s3://m/p: listing: connection refused")
	r := sourceRepo(t, t.TempDir(), ModeNone, &scriptedSource{steps: []syncStep{{err: down}}})
	if err := r.Start(t.Context()); !errors.Is(err, down) {
		t.Fatalf("Start = %v, want the sync error", err)
	}
}

func TestSourceRefusalsShowInAcquireAndIndex(t *testing.T) {
	root := t.TempDir()
	bad := errors.New("object s3://m/p/adder/1/model.fake refused: checksum mismatch")
	src := &scriptedSource{steps: []syncStep{
		{ // first sync: adder's files arrive; fresh's only object is refused
			change:  func() { writeTestModel(t, root, "adder", adderConfig) },
			refused: map[string]error{"fresh": errors.New("object s3://m/p/fresh/1/model.fake refused: size mismatch")},
		},
		{refused: map[string]error{"adder": bad}}, // an update of adder is refused
		{}, // all good again
	}}
	r := sourceRepo(t, root, ModePoll, src)
	if err := r.Start(t.Context()); err != nil {
		t.Fatal(err)
	}

	if r.Healthy() {
		t.Error("Healthy with fresh refused and no files to serve")
	}
	_, err := r.Acquire(t.Context(), "fresh", "")
	if !errors.Is(err, core.ErrUnavailable) || !strings.Contains(err.Error(), "model 'fresh' is not ready: object s3://m/p/fresh/1/model.fake refused: size mismatch") {
		t.Errorf("Acquire(fresh) = %v, want unavailable with the refusal", err)
	}
	if e, _ := indexEntry(r, "fresh"); e.State != core.StateUnavailable || !strings.Contains(e.Reason, "size mismatch") {
		t.Errorf("index entry of fresh: %+v", e)
	}
	for _, e := range r.Index(true) {
		if e.Name == "fresh" {
			t.Errorf("ready-only index lists fresh: %+v", e)
		}
	}

	r.Poll(t.Context())
	lease, err := r.Acquire(t.Context(), "adder", "")
	if err != nil {
		t.Fatalf("Acquire(adder) with its update refused: %v, want the previous files serving", err)
	}
	lease.Release()
	e, _ := indexEntry(r, "adder")
	if e.State != core.StateReady || e.Reason != "update from the model store refused, previous files kept: "+bad.Error() {
		t.Errorf("index entry of adder: %+v", e)
	}
	if _, listed := indexEntry(r, "fresh"); listed {
		t.Errorf("fresh still listed after a sync that no longer refuses it")
	}
	if !r.Healthy() {
		t.Error("not Healthy though every model serves (adder on its previous files)")
	}

	r.Poll(t.Context())
	if e, _ := indexEntry(r, "adder"); e.State != core.StateReady || e.Reason != "" {
		t.Errorf("index entry of adder after a clean sync: %+v", e)
	}
}

func TestPollSyncsFirstAndSurvivesASyncFailure(t *testing.T) {
	root := t.TempDir()
	src := &scriptedSource{steps: []syncStep{
		{},
		{change: func() { writeTestModel(t, root, "adder", adderConfig) }},
		{err: errors.New("listing: timeout")},
	}}
	r := sourceRepo(t, root, ModePoll, src)
	if err := r.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Acquire(t.Context(), "adder", ""); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("Acquire before the model arrived: %v", err)
	}
	r.Poll(t.Context()) // the sync brings adder, the rescan loads it
	lease, err := r.Acquire(t.Context(), "adder", "")
	if err != nil {
		t.Fatalf("Acquire after the poll that synced it: %v", err)
	}
	lease.Release()
	r.Poll(t.Context()) // the sync fails: the files already here keep serving
	lease, err = r.Acquire(t.Context(), "adder", "")
	if err != nil {
		t.Fatalf("Acquire after a failed sync: %v", err)
	}
	lease.Release()
	if src.calls != 3 {
		t.Errorf("source synced %d times, want 3 (start and two polls)", src.calls)
	}
}
