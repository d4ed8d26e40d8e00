package jobs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/ferryml/ferry/internal/mgmtapi"
)

// RunFunc does a job: it reports progress as it goes and returns when the job is done,
// failed, or ctx ended (cancel, or the server stopping).
type RunFunc func(ctx context.Context, spec mgmtapi.JobSpec, progress func(mgmtapi.JobProgress)) error

// Options configure a Manager.
type Options struct {
	// MaxRunning is how many jobs run at once (default 1); the rest wait in order.
	MaxRunning int
	// Keep is how many finished jobs stay listed (default 100); the oldest go first.
	Keep int
	// Check validates a spec before it is queued (paths, model names); nil accepts all.
	Check func(mgmtapi.JobSpec) error
}

// ErrNotFound is the answer for an unknown job id.
var ErrNotFound = errors.New("no such job")

// ErrInvalid wraps a spec the Manager refuses.
var ErrInvalid = errors.New("invalid job")

// Manager owns the jobs. Its methods are safe for concurrent use.
type Manager struct {
	run  RunFunc
	opts Options

	mu      sync.Mutex
	jobs    map[string]*job
	queue   []*job // waiting, in submission order
	running int
	closed  bool
	wg      sync.WaitGroup
}

type job struct {
	status mgmtapi.Job
	cancel context.CancelFunc // set while running
}

// New returns a Manager that runs jobs with run.
func New(run RunFunc, opts Options) *Manager {
	if opts.MaxRunning <= 0 {
		opts.MaxRunning = 1
	}
	if opts.Keep <= 0 {
		opts.Keep = 100
	}
	return &Manager{run: run, opts: opts, jobs: map[string]*job{}}
}

// Submit checks and queues a job; it starts at once when a slot is free.
func (m *Manager) Submit(spec mgmtapi.JobSpec) (mgmtapi.Job, error) {
	if err := checkSpec(spec); err != nil {
		return mgmtapi.Job{}, err
	}
	if m.opts.Check != nil {
		if err := m.opts.Check(spec); err != nil {
			return mgmtapi.Job{}, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
	}
	j := &job{status: mgmtapi.Job{ID: newID(), Spec: spec, State: mgmtapi.JobQueued, Created: time.Now().UTC(),
		Progress: mgmtapi.JobProgress{Total: -1, ETASeconds: -1}}}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return mgmtapi.Job{}, errors.New("the server is stopping; no new jobs")
	}
	m.jobs[j.status.ID] = j
	m.queue = append(m.queue, j)
	m.startLocked()
	m.forgetLocked()
	return j.view(), nil
}

func checkSpec(s mgmtapi.JobSpec) error {
	for _, f := range []struct{ name, v string }{{"model", s.Model}, {"input", s.Input}, {"output", s.Output}} {
		if f.v == "" {
			return fmt.Errorf("%w: %q is required", ErrInvalid, f.name)
		}
	}
	if s.Input == s.Output {
		return fmt.Errorf("%w: input and output are the same file %q", ErrInvalid, s.Input)
	}
	if s.ChunkRows < 0 || s.Concurrency < 0 {
		return fmt.Errorf("%w: chunk_rows and concurrency must not be negative", ErrInvalid)
	}
	return nil
}

// startLocked starts queued jobs while slots are free.
func (m *Manager) startLocked() {
	for m.running < m.opts.MaxRunning && len(m.queue) > 0 && !m.closed {
		j := m.queue[0]
		m.queue = m.queue[1:]
		ctx, cancel := context.WithCancel(context.Background())
		j.cancel = cancel
		now := time.Now().UTC()
		j.status.State, j.status.Started = mgmtapi.JobRunning, &now
		m.running++
		m.wg.Go(func() { m.runJob(ctx, j) })
	}
}

func (m *Manager) runJob(ctx context.Context, j *job) {
	err := m.run(ctx, j.status.Spec, func(p mgmtapi.JobProgress) { m.progress(j, p) })
	cancelled := ctx.Err() != nil
	j.cancel()
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now().UTC()
	j.status.Finished = &now
	switch {
	case err == nil:
		j.status.State = mgmtapi.JobSucceeded
	case cancelled:
		j.status.State, j.status.Error = mgmtapi.JobCancelled, "cancelled"
	default:
		j.status.State, j.status.Error = mgmtapi.JobFailed, err.Error()
	}
	m.running--
	m.startLocked()
	m.forgetLocked()
}

// progress records a report.
func (m *Manager) progress(j *job, p mgmtapi.JobProgress) {
	m.mu.Lock()
	defer m.mu.Unlock()
	j.status.Progress = p
}

// view is a job's status with its rate and time left as of now (or its end).
func (j *job) view() mgmtapi.Job {
	st := j.status
	p := &st.Progress
	p.RowsPerSecond, p.ETASeconds = 0, -1
	if st.Started != nil {
		end := time.Now()
		if st.Finished != nil {
			end = *st.Finished
		}
		if secs := end.Sub(*st.Started).Seconds(); secs > 0 {
			p.RowsPerSecond = float64(p.Rows+p.Rejected) / secs
		}
	}
	switch {
	case st.State == mgmtapi.JobSucceeded:
		p.ETASeconds = 0
	case p.Total >= 0 && p.RowsPerSecond > 0 && !st.Done():
		p.ETASeconds = float64(max(p.Total-p.Rows-p.Rejected, 0)) / p.RowsPerSecond
	}
	return st
}

// forgetLocked drops the oldest finished jobs beyond Keep.
func (m *Manager) forgetLocked() {
	var done []*job
	for _, j := range m.jobs {
		if j.status.Done() {
			done = append(done, j)
		}
	}
	if len(done) <= m.opts.Keep {
		return
	}
	sort.Slice(done, func(a, b int) bool { return done[a].status.Finished.Before(*done[b].status.Finished) })
	for _, j := range done[:len(done)-m.opts.Keep] {
		delete(m.jobs, j.status.ID)
	}
}

// Get returns one job's status.
func (m *Manager) Get(id string) (mgmtapi.Job, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	j, ok := m.jobs[id]
	if !ok {
		return mgmtapi.Job{}, fmt.Errorf("%w %q", ErrNotFound, id)
	}
	return j.view(), nil
}

// List returns every job, newest first.
func (m *Manager) List() []mgmtapi.Job {
	m.mu.Lock()
	out := make([]mgmtapi.Job, 0, len(m.jobs))
	for _, j := range m.jobs {
		out = append(out, j.view())
	}
	m.mu.Unlock()
	sort.Slice(out, func(a, b int) bool { return out[a].Created.After(out[b].Created) })
	return out
}

// Cancel stops a running job (its work so far stays committed, so the same spec
// resumes it) or drops a queued one. Cancelling a finished job changes nothing.
func (m *Manager) Cancel(id string) (mgmtapi.Job, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	j, ok := m.jobs[id]
	if !ok {
		return mgmtapi.Job{}, fmt.Errorf("%w %q", ErrNotFound, id)
	}
	switch j.status.State {
	case mgmtapi.JobRunning:
		j.cancel() // runJob records the state when the run returns
	case mgmtapi.JobQueued:
		for i, q := range m.queue {
			if q == j {
				m.queue = append(m.queue[:i], m.queue[i+1:]...)
				break
			}
		}
		now := time.Now().UTC()
		j.status.State, j.status.Error, j.status.Finished = mgmtapi.JobCancelled, "cancelled before it started", &now
	}
	return j.view(), nil
}

// Close cancels every job and waits for the running ones to return. Their committed
// chunks stay, so submitting the same specs again resumes them.
func (m *Manager) Close() {
	m.mu.Lock()
	m.closed = true
	for _, j := range m.jobs {
		if j.status.State == mgmtapi.JobRunning {
			j.cancel()
		}
	}
	m.mu.Unlock()
	m.wg.Wait()
}

func newID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
