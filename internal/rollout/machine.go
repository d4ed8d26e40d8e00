package rollout

import (
	"maps"
	"strconv"
	"time"
)

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
	// A bake or mirror ends by its clock only once a measurement in it succeeded: time
	// alone is no evidence (an endpoint without traffic would be promoted unjudged). With
	// none, the step waits; errors (no data) abort past consecutiveErrorLimit, and the
	// progress deadline bounds the wait.
	s.Recheck = st.Bake != nil || st.Mirror != nil
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
