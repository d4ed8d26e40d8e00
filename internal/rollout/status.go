package rollout

import "time"

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
	// restart so time that passed unobserved never raises traffic, and at the start of
	// each bake and mirror step, so that time alone never ends one.
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
