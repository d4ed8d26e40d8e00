package rollout

import (
	"maps"
	"strconv"
	"time"
)

// State is where a rollout is (monitoring.md §3.6).
type State string

// States.
const (
	Idle         State = "Idle"         // no candidate; stable 100%
	Provisioning State = "Provisioning" // candidate loading; stable 100%
	Mirroring    State = "Mirroring"    // stable 100% plus a shadow copy to the candidate
	Progressing  State = "Progressing"  // running step Status.Step
	Paused       State = "Paused"       // traffic unchanged; Status.Reason says why
	Promoting    State = "Promoting"    // candidate -> 100 in one routing change
	FinalBake    State = "FinalBake"    // candidate 100, stable still loaded, analysis active
	Succeeded    State = "Succeeded"    // terminal: the candidate is the stable version
	Aborting     State = "Aborting"     // stable 100 (set first); candidate kept for debugging
	Aborted      State = "Aborted"      // terminal: stable 100, candidate unloaded
)

// States lists every state, for an exporter that publishes one series per state
// (ferry_rollout_state{state="..."} 1 for the current one, 0 for the others).
var States = []State{Idle, Provisioning, Mirroring, Progressing, Paused, Promoting, FinalBake, Succeeded, Aborting, Aborted}

// Terminal says whether only a new candidate moves s on.
func (s State) Terminal() bool { return s == Succeeded || s == Aborted }

// Paused reasons.
const (
	ReasonManual       = "Manual"
	ReasonInconclusive = "InconclusiveAnalysis"
)

// EventKind names what happened to a rollout.
type EventKind string

// Events (§3.6; Tick carries the clock to timers, Pause is the manual pause).
const (
	NewCandidate        EventKind = "NewCandidate"
	CandidateReady      EventKind = "CandidateReady"
	CandidateLoadFailed EventKind = "CandidateLoadFailed"
	Tick                EventKind = "Tick"
	MeasurementTaken    EventKind = "MeasurementTaken"
	AnalysisDone        EventKind = "AnalysisDone"
	AlarmFired          EventKind = "AlarmFired"
	GateOK              EventKind = "GateOK"
	GateFail            EventKind = "GateFail"
	Promote             EventKind = "Promote"
	Pause               EventKind = "Pause"
	Resume              EventKind = "Resume"
	Abort               EventKind = "Abort"
	DeadlineExceeded    EventKind = "DeadlineExceeded"
	Restart             EventKind = "Restart"
)

// Event is one input to Next.
type Event struct {
	Kind   EventKind `json:"kind"`
	Phase  Phase     `json:"phase,omitempty"`  // MeasurementTaken, AnalysisDone
	Reason string    `json:"reason,omitempty"` // free text: an alarm's name, a load error
	// Rollout is the new candidate's normalized spec (NewCandidate).
	Rollout *Rollout `json:"rollout,omitempty"`
	// Ready says the candidate answered a load check after a restart (Restart).
	Ready bool `json:"ready,omitempty"`
}

// Status is a rollout's persisted state: everything Next needs, so a restarted
// controller resumes from it alone. History is kept apart.
type Status struct {
	Rollout        Rollout        `json:"rollout"`
	State          State          `json:"state"`
	Reason         string         `json:"reason,omitempty"`
	PausedFrom     State          `json:"pausedFrom,omitempty"`
	Step           int            `json:"step"`
	Weights        map[string]int `json:"weights"`
	Mirror         *Mirror        `json:"mirror,omitempty"`
	CandidateReady bool           `json:"candidateReady"`
	// Recheck holds every timed advance until a fresh successful measurement: set on a
	// restart so time that passed unobserved never raises traffic.
	Recheck      bool           `json:"recheck,omitempty"`
	Analysis     AnalysisStatus `json:"analysis"`
	GateFailures int            `json:"gateFailures,omitempty"`
	GateRetryAt  time.Time      `json:"gateRetryAt,omitzero"`
	Started      time.Time      `json:"started,omitzero"`
	StepStarted  time.Time      `json:"stepStarted,omitzero"`
	Deadline     time.Time      `json:"deadline,omitzero"`
	Finished     time.Time      `json:"finished,omitzero"`
}

// Mirror copies Percent of the endpoint's requests to Version (outside the weights).
type Mirror struct {
	Version string `json:"version"`
	Percent int    `json:"percent"`
}

// Effect is something the controller does for a transition, in the order given.
type Effect interface{ effect() }

// SetTraffic replaces the endpoint's weights (version -> percent, summing to 100) and
// its mirror (nil: none) in one routing change.
type SetTraffic struct {
	Weights map[string]int
	Mirror  *Mirror
}

// LoadCandidate loads the candidate; its outcome comes back as CandidateReady or
// CandidateLoadFailed.
type LoadCandidate struct{ Version string }

// UnloadVersion unloads Version After a delay.
type UnloadVersion struct {
	Version string
	After   time.Duration
}

// CallGate asks the gate webhook; its answer comes back as GateOK or GateFail.
type CallGate struct{ Gate Gate }

// Emit records a state change (history, metrics, webhooks).
type Emit struct {
	Event    EventKind
	From, To State
	Message  string
}

func (SetTraffic) effect()    {}
func (LoadCandidate) effect() {}
func (UnloadVersion) effect() {}
func (CallGate) effect()      {}
func (Emit) effect()          {}

// Next is the rollout state machine: pure, so every invariant is a property of this
// one function. It never mutates s.
func Next(s Status, e Event, now time.Time) (Status, []Effect) {
	t := &transition{s: s, now: now}
	if t.s.State == "" {
		t.s.State = Idle
	}
	t.s.Weights = maps.Clone(s.Weights)
	if s.Mirror != nil {
		m := *s.Mirror
		t.s.Mirror = &m
	}
	t.handle(e)
	return t.s, t.fx
}

type transition struct {
	s   Status
	now time.Time
	fx  []Effect
}

func (t *transition) handle(e Event) {
	st := t.s.State
	switch {
	case e.Kind == NewCandidate:
		t.newCandidate(e)
		return
	case st.Terminal() || st == Idle:
		return
	case st == Aborting:
		switch e.Kind {
		case Tick:
			t.tick()
		case Restart:
			t.setTraffic(t.stableOnly(), nil)
		}
		return
	}
	switch e.Kind {
	case Abort:
		t.abort("manual abort" + suffix(e.Reason))
	case DeadlineExceeded:
		t.abort("progress deadline exceeded")
	case AlarmFired:
		if t.candidateExposed() {
			t.abort("alarm" + suffix(e.Reason))
		}
	case Tick:
		t.tick()
	case CandidateReady:
		if st == Provisioning {
			t.s.CandidateReady = true
			t.emit(CandidateReady, st, "candidate "+t.s.Rollout.Candidate+" ready")
			t.enterStep(0)
		}
	case CandidateLoadFailed:
		if st == Provisioning {
			t.abort("candidate failed to load" + suffix(e.Reason))
		}
	case MeasurementTaken:
		t.measured(e)
	case AnalysisDone:
		t.analysisDone(e)
	case GateOK, GateFail:
		t.gate(e)
	case Promote:
		t.promote()
	case Pause:
		t.pause(ReasonManual)
	case Resume:
		t.resume()
	case Restart:
		t.restart(e)
	}
}

func suffix(reason string) string {
	if reason == "" {
		return ""
	}
	return ": " + reason
}

func (t *transition) emit(kind EventKind, from State, msg string) {
	t.fx = append(t.fx, Emit{Event: kind, From: from, To: t.s.State, Message: msg})
}

func (t *transition) setTraffic(w map[string]int, m *Mirror) {
	t.s.Weights, t.s.Mirror = w, m
	var mc *Mirror
	if m != nil {
		c := *m
		mc = &c
	}
	t.fx = append(t.fx, SetTraffic{Weights: maps.Clone(w), Mirror: mc})
}

func (t *transition) weights(candidate int) map[string]int {
	r := t.s.Rollout
	return map[string]int{r.Stable: 100 - candidate, r.Candidate: candidate}
}

func (t *transition) stableOnly() map[string]int { return t.weights(0) }

func (t *transition) candidateExposed() bool {
	return t.s.Weights[t.s.Rollout.Candidate] > 0 || t.s.Mirror != nil
}

func (t *transition) newCandidate(e Event) {
	if e.Rollout == nil {
		return
	}
	old := t.s
	if !old.State.Terminal() && old.State != Idle {
		t.abort("superseded by candidate " + e.Rollout.Candidate)
		if old.Rollout.Candidate != e.Rollout.Stable && old.Rollout.Candidate != e.Rollout.Candidate {
			t.fx = append(t.fx, UnloadVersion{Version: old.Rollout.Candidate, After: old.Rollout.Limits.AbortScaleDownDelay.D()})
		}
	}
	t.s = Status{Rollout: *e.Rollout, State: Provisioning, Started: t.now, StepStarted: t.now,
		Deadline: t.now.Add(e.Rollout.Limits.ProgressDeadline.D()), Analysis: AnalysisStatus{Phase: PhaseRunning}}
	t.setTraffic(t.stableOnly(), nil)
	t.fx = append(t.fx, LoadCandidate{Version: e.Rollout.Candidate})
	t.emit(NewCandidate, old.State, "rolling out "+e.Rollout.Candidate+" over "+e.Rollout.Stable)
}

// abort sends everything to the stable version in one routing change, before any
// other effect of the transition.
func (t *transition) abort(reason string) {
	from := t.s.State
	t.setTraffic(t.stableOnly(), nil)
	// The routing change goes first, even before effects queued earlier in this
	// transition: nothing may happen while the candidate still has traffic.
	last := t.fx[len(t.fx)-1]
	copy(t.fx[1:], t.fx[:len(t.fx)-1])
	t.fx[0] = last
	t.s.State, t.s.Reason, t.s.PausedFrom = Aborting, reason, ""
	t.s.StepStarted, t.s.Deadline, t.s.GateRetryAt, t.s.Recheck = t.now, time.Time{}, time.Time{}, false
	t.emit(Abort, from, reason)
}

func (t *transition) succeed() {
	from := t.s.State
	r := t.s.Rollout
	t.s.State, t.s.Finished, t.s.Deadline = Succeeded, t.now, time.Time{}
	t.fx = append(t.fx, UnloadVersion{Version: r.Stable, After: r.Limits.ScaleDownDelay.D()})
	t.emit(Tick, from, r.Candidate+" is now stable")
}

func (t *transition) tick() {
	s := &t.s
	if s.State == Aborting {
		if !t.now.Before(s.StepStarted.Add(s.Rollout.Limits.AbortScaleDownDelay.D())) {
			s.State, s.Finished = Aborted, t.now
			t.fx = append(t.fx, UnloadVersion{Version: s.Rollout.Candidate})
			t.emit(Tick, Aborting, "candidate "+s.Rollout.Candidate+" unloaded")
		}
		return
	}
	if !s.Deadline.IsZero() && !t.now.Before(s.Deadline) {
		t.abort("progress deadline exceeded")
		return
	}
	if !s.GateRetryAt.IsZero() && !t.now.Before(s.GateRetryAt) {
		s.GateRetryAt = time.Time{}
		t.fx = append(t.fx, CallGate{Gate: *s.Rollout.Strategy.Steps[s.Step].Gate})
		return
	}
	if end, ok := t.timerEnd(); ok && !t.now.Before(end) && !s.Recheck {
		switch s.State {
		case FinalBake:
			t.succeed()
		case Mirroring:
			t.setTraffic(s.Weights, nil)
			t.enterStep(s.Step + 1)
		default:
			t.enterStep(s.Step + 1)
		}
	}
}

// timerEnd is when the current wait ends by itself, if it does.
func (t *transition) timerEnd() (time.Time, bool) {
	s := t.s
	switch s.State {
	case FinalBake:
		return s.StepStarted.Add(s.Rollout.Strategy.FinalBake.D()), true
	case Mirroring, Progressing:
		if d := s.Rollout.Strategy.Steps[s.Step].wait(); d > 0 {
			return s.StepStarted.Add(d), true
		}
	}
	return time.Time{}, false
}

// wait is how long the step waits by its clock (0: it waits for something else).
func (st Step) wait() time.Duration {
	switch {
	case st.Pause != nil:
		return st.Pause.Duration.D()
	case st.Bake != nil:
		return st.Bake.Duration.D()
	case st.Mirror != nil:
		return st.Mirror.Duration.D()
	}
	return 0
}

// enterStep starts step i, running setWeight steps through at once; past the last
// step the candidate is promoted.
func (t *transition) enterStep(i int) {
	s := &t.s
	from := s.State
	steps := s.Rollout.Strategy.Steps
	for ; i < len(steps) && steps[i].SetWeight != nil; i++ {
		t.setTraffic(t.weights(steps[i].SetWeight.Percent), s.Mirror)
	}
	s.Step, s.StepStarted, s.GateFailures, s.GateRetryAt = i, t.now, 0, time.Time{}
	s.Analysis.StepMeasurements = 0
	if i >= len(steps) {
		t.promoteNow()
		return
	}
	st := steps[i]
	s.State = Progressing
	s.Deadline = t.now.Add(st.wait() + s.Rollout.Limits.ProgressDeadline.D())
	switch {
	case st.Pause != nil && st.Pause.Duration == 0:
		s.Deadline = time.Time{} // until promoted or resumed
	case st.Mirror != nil:
		s.State = Mirroring
		t.setTraffic(s.Weights, &Mirror{Version: s.Rollout.Candidate, Percent: st.Mirror.Percent})
	case st.Gate != nil:
		t.fx = append(t.fx, CallGate{Gate: *st.Gate})
	}
	t.emit(Tick, from, "step "+strconv.Itoa(i)+": "+st.kind())
}

func (st Step) kind() string {
	switch {
	case st.SetWeight != nil:
		return "setWeight"
	case st.Pause != nil:
		return "pause"
	case st.Bake != nil:
		return "bake"
	case st.Analysis != nil:
		return "analysis"
	case st.Mirror != nil:
		return "mirror"
	}
	return "gate"
}

func (t *transition) promoteNow() {
	s := &t.s
	from := s.State
	s.State, s.PausedFrom, s.Recheck, s.Deadline = Promoting, "", false, time.Time{}
	if s.Weights[s.Rollout.Candidate] != 100 || s.Mirror != nil {
		t.setTraffic(t.weights(100), nil)
	}
	t.emit(Promote, from, "candidate "+s.Rollout.Candidate+" at 100%")
	s.State, s.StepStarted = FinalBake, t.now
	if s.Rollout.Strategy.FinalBake == 0 {
		t.succeed()
		return
	}
	t.emit(Tick, Promoting, "final bake")
}

func (t *transition) promote() {
	switch t.s.State {
	case Mirroring, Progressing, Paused:
		t.promoteNow()
	}
}

func (t *transition) pause(reason string) {
	s := &t.s
	switch s.State {
	case Mirroring, Progressing, FinalBake:
		from := s.State
		s.State, s.PausedFrom, s.Reason, s.Deadline, s.GateRetryAt = Paused, from, reason, time.Time{}, time.Time{}
		t.emit(Pause, from, reason)
	}
}

func (t *transition) resume() {
	s := &t.s
	switch {
	case s.State == Paused:
		if s.Analysis.Phase == PhaseInconclusive {
			s.Analysis.Phase, s.Analysis.Inconclusive = PhaseRunning, 0
		}
		s.Reason = ""
		if s.PausedFrom == FinalBake {
			s.State, s.StepStarted = FinalBake, t.now
			t.emit(Resume, Paused, "final bake")
			return
		}
		t.enterStep(s.Step)
	case s.State == Progressing && s.Rollout.Strategy.Steps[s.Step].Pause != nil && s.Rollout.Strategy.Steps[s.Step].wait() == 0:
		t.enterStep(s.Step + 1)
	}
}

func (t *transition) gate(e Event) {
	s := &t.s
	if s.State != Progressing || s.Rollout.Strategy.Steps[s.Step].Gate == nil {
		return
	}
	g := s.Rollout.Strategy.Steps[s.Step].Gate
	if e.Kind == GateOK {
		t.enterStep(s.Step + 1)
		return
	}
	s.GateFailures++
	if s.GateFailures > g.Retries {
		t.abort("gate failed" + suffix(e.Reason))
		return
	}
	s.GateRetryAt = t.now.Add(s.Rollout.Analysis.Interval.D())
}

// restart re-derives what the persisted status implies after the controller started
// again: the routing it recorded (never more), the load it was waiting for, and a fresh
// analysis before any timed advance.
func (t *transition) restart(e Event) {
	s := &t.s
	// Time the controller spent down is nobody's lack of progress.
	if pd := t.now.Add(s.Rollout.Limits.ProgressDeadline.D()); !s.Deadline.IsZero() && s.Deadline.Before(pd) {
		s.Deadline = pd
	}
	if s.State == Provisioning {
		s.CandidateReady = false
		t.fx = append(t.fx, LoadCandidate{Version: s.Rollout.Candidate})
		return
	}
	if !e.Ready {
		s.CandidateReady = false
		t.abort("candidate not ready after restart")
		return
	}
	t.setTraffic(s.Weights, s.Mirror)
	// A candidate without traffic had nothing to check, and nothing to check it with.
	s.Recheck = t.candidateExposed()
	t.emit(Restart, s.State, "resumed")
}

// AnalysisActive says whether the controller should measure the candidate now.
func (s Status) AnalysisActive() bool {
	switch s.State {
	case Mirroring, FinalBake:
		return true
	case Paused:
		return s.Weights[s.Rollout.Candidate] > 0 || s.Mirror != nil
	case Progressing:
		st := s.Rollout.Strategy.Steps[s.Step]
		return s.Recheck || st.Bake != nil || st.Analysis != nil
	}
	return false
}

// Wake is the next time a Tick may move s on by its clocks (zero: none).
func (s Status) Wake() time.Time {
	t := &transition{s: s}
	var at time.Time
	earliest := func(c time.Time) {
		if !c.IsZero() && (at.IsZero() || c.Before(at)) {
			at = c
		}
	}
	switch {
	case s.State == Aborting:
		earliest(s.StepStarted.Add(s.Rollout.Limits.AbortScaleDownDelay.D()))
	case s.State.Terminal() || s.State == Idle:
	default:
		earliest(s.Deadline)
		earliest(s.GateRetryAt)
		if end, ok := t.timerEnd(); ok && !s.Recheck {
			earliest(end)
		}
	}
	return at
}
