package rollout

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

func ptr[T any](v T) *T { return &v }

// specs are the rollouts the property tests draw from: every kind of step and preset.
func specs(t testing.TB) []Rollout {
	an := Analysis{Interval: Duration(10 * time.Second), MinSamples: 5,
		Metrics: []Metric{{Name: ErrorRate, Max: ptr(0.05)}, {Name: LatencyP99, Max: ptr(1.5), Relative: true}}}
	raw := []Rollout{
		{Strategy: Strategy{Canary: &Canary{Steps: []int{10, 50, 100}, Interval: Duration(time.Minute)}}, Analysis: an},
		{Strategy: Strategy{Linear: &Linear{Step: 30, Interval: Duration(30 * time.Second)}, FinalBake: Duration(time.Minute)}, Analysis: an},
		{Strategy: Strategy{BlueGreen: &BlueGreen{Bake: Duration(time.Minute), RollbackWindow: Duration(5 * time.Minute)}}, Analysis: an},
		{Strategy: Strategy{ShadowThenCanary: &ShadowThenCanary{MirrorPercent: 20, MirrorDuration: Duration(time.Minute),
			Canary: Canary{Steps: []int{25, 100}, Interval: Duration(time.Minute)}}}, Analysis: an},
		{Strategy: Strategy{Steps: []Step{
			{Gate: &Gate{URL: "http://gate", Retries: 2}},
			{SetWeight: &SetWeight{Percent: 20}},
			{Pause: &PauseStep{}},
			{Analysis: &AnalysisStep{}},
			{SetWeight: &SetWeight{Percent: 60}},
			{Pause: &PauseStep{Duration: Duration(time.Minute)}},
			{Mirror: &MirrorStep{Percent: 10, Duration: Duration(time.Minute)}},
		}, FinalBake: Duration(2 * time.Minute)}, Analysis: Analysis{Count: 2, FailureLimit: 1, InconclusiveLimit: 1}},
	}
	out := make([]Rollout, len(raw))
	for i, r := range raw {
		r.Endpoint, r.Stable, r.Candidate = "mlp", "1", "2"
		n, err := r.Normalize()
		if err != nil {
			t.Fatalf("spec %d: %v", i, err)
		}
		out[i] = n
	}
	return out
}

// Common events keep runs going; disruptive ones (aborts, failures, supersedes) are
// rarer so most runs get deep into the machine before they end.
var (
	common     = []EventKind{CandidateReady, Tick, Tick, Tick, Tick, MeasurementTaken, MeasurementTaken, GateOK, Pause, Resume, Resume, Promote, Restart}
	disruptive = []EventKind{CandidateLoadFailed, AnalysisDone, AlarmFired, GateFail, Abort, DeadlineExceeded, NewCandidate}
	phases     = []Phase{PhaseSuccessful, PhaseSuccessful, PhaseSuccessful, PhaseSuccessful, PhaseFailed, PhaseInconclusive, PhaseError}
)

func randomEvent(rng *rand.Rand, rollouts []Rollout, s Status) Event {
	k := common[rng.IntN(len(common))]
	if rng.IntN(12) == 0 {
		k = disruptive[rng.IntN(len(disruptive))]
	}
	if (s.State.Terminal() || s.State == Idle) && rng.IntN(3) == 0 {
		k = NewCandidate
	}
	e := Event{Kind: k, Phase: phases[rng.IntN(len(phases))], Ready: rng.IntN(8) != 0}
	if k == NewCandidate {
		r := rollouts[rng.IntN(len(rollouts))]
		if s.State == Succeeded { // the promoted candidate is the new stable
			r.Stable, r.Candidate = s.Rollout.Candidate, s.Rollout.Candidate+"x"
		}
		e.Rollout = &r
	}
	return e
}

// check holds one transition to the §3.6 invariants.
func check(prev Status, e Event, next Status, fx []Effect) error {
	cand := next.Rollout.Candidate
	if next.State != Idle {
		if err := weightsOK(next.Weights, next.Rollout, next.Rollout); err != nil {
			return fmt.Errorf("status weights: %w", err)
		}
		if (next.Weights[cand] > 0 || next.Mirror != nil) && !next.CandidateReady && next.State != Succeeded {
			return fmt.Errorf("candidate has traffic %v mirror %v but is not ready", next.Weights, next.Mirror)
		}
	}
	for _, f := range fx {
		switch f := f.(type) {
		case SetTraffic:
			if err := weightsOK(f.Weights, prev.Rollout, next.Rollout); err != nil { // a supersede aborts prev first
				return fmt.Errorf("SetTraffic: %w", err)
			}
			// Judge the effect by the rollout it belongs to (a supersede sets prev's
			// abort traffic, then next's start).
			for _, r := range []Status{prev, next} {
				same := r.Rollout.Stable == next.Rollout.Stable && r.Rollout.Candidate == next.Rollout.Candidate &&
					r.Rollout.Stable == prev.Rollout.Stable && r.Rollout.Candidate == prev.Rollout.Candidate
				ready := r.CandidateReady || (same && (prev.CandidateReady || next.CandidateReady))
				if weightsOK(f.Weights, r.Rollout, r.Rollout) == nil && (f.Weights[r.Rollout.Candidate] > 0 || f.Mirror != nil) && !ready {
					return fmt.Errorf("SetTraffic %v gives traffic to candidate %s, not ready", f.Weights, r.Rollout.Candidate)
				}
			}
		case UnloadVersion:
			if (f.Version == prev.Rollout.Stable || f.Version == next.Rollout.Stable) && next.State != Succeeded {
				return fmt.Errorf("unloads stable %s in %s", f.Version, next.State)
			}
		}
	}
	if prev.State != Aborting && (next.State == Aborting || (e.Kind == NewCandidate && !prev.State.Terminal() && prev.State != Idle)) {
		st, ok := fx[0].(SetTraffic)
		if !ok || st.Weights[prev.Rollout.Candidate] != 0 || st.Weights[prev.Rollout.Stable] != 100 || st.Mirror != nil {
			return fmt.Errorf("aborting: first effect %#v, want stable 100 candidate 0", fx[0])
		}
	}
	if prev.State.Terminal() && e.Kind != NewCandidate && (!reflect.DeepEqual(prev, next) || len(fx) > 0) {
		return fmt.Errorf("terminal %s moved on %s", prev.State, e.Kind)
	}
	if prev.Analysis.Phase == PhaseFailed && e.Kind != NewCandidate && next.Analysis.Phase != PhaseFailed {
		return fmt.Errorf("analysis left Failed for %s", next.Analysis.Phase)
	}
	if e.Kind == Restart {
		if next.Weights[cand] > prev.Weights[cand] {
			return fmt.Errorf("restart raised the candidate from %d to %d", prev.Weights[cand], next.Weights[cand])
		}
		for _, f := range fx {
			if st, ok := f.(SetTraffic); ok && st.Weights[cand] > prev.Weights[cand] {
				return fmt.Errorf("restart set the candidate to %d, above the persisted %d", st.Weights[cand], prev.Weights[cand])
			}
		}
	}
	return nil
}

func weightsOK(w map[string]int, r, r2 Rollout) error {
	sum := 0
	for v, p := range w {
		if p < 0 || p > 100 || (v != r.Stable && v != r.Candidate && v != r2.Stable && v != r2.Candidate) {
			return fmt.Errorf("bad weight %s=%d in %v", v, p, w)
		}
		sum += p
	}
	if sum != 100 {
		return fmt.Errorf("weights %v sum to %d", w, sum)
	}
	return nil
}

// TestInvariantsUnderRandomEvents runs thousands of seeded random event sequences
// through Next and checks every §3.6 invariant after every event, plus idempotence of
// Promote and Abort at every point.
func TestInvariantsUnderRandomEvents(t *testing.T) {
	rollouts := specs(t)
	states := map[State]int{}
	runs := uint64(2000)
	if testing.Short() {
		runs = 200
	}
	for seed := range runs {
		rng := rand.New(rand.NewPCG(seed, 16))
		s := Status{State: Idle}
		now := t0
		for i := range 200 {
			e := randomEvent(rng, rollouts, s)
			now = now.Add(time.Duration(rng.IntN(40)) * time.Second)
			next, fx := Next(s, e, now)
			if err := check(s, e, next, fx); err != nil {
				t.Fatalf("seed %d event %d: %s in %s (step %d) -> %s: %v", seed, i, e.Kind, s.State, s.Step, next.State, err)
			}
			for _, k := range []EventKind{Promote, Abort} {
				once, _ := Next(next, Event{Kind: k}, now)
				twice, fx2 := Next(once, Event{Kind: k}, now)
				if !reflect.DeepEqual(once, twice) || len(fx2) > 0 {
					t.Fatalf("seed %d event %d: %s twice != once in %s: %+v", seed, i, k, next.State, fx2)
				}
			}
			s = next
			states[s.State]++
		}
	}
	for _, st := range []State{Provisioning, Mirroring, Progressing, Paused, FinalBake, Succeeded, Aborting, Aborted} {
		if states[st] == 0 {
			t.Errorf("no run reached %s; the generator misses part of the machine", st)
		}
	}
	t.Logf("states visited: %v", states)
}

func start(t *testing.T, r Rollout) Status {
	t.Helper()
	s, _ := Next(Status{}, Event{Kind: NewCandidate, Rollout: &r}, t0)
	s, _ = Next(s, Event{Kind: CandidateReady}, t0)
	return s
}

func TestCanaryWalksItsStepsAndPromotes(t *testing.T) {
	r := specs(t)[0] // canary 10, 50, 100 with a one-minute bake after each
	s := start(t, r)
	now := t0
	var seen []int
	for s.State == Progressing {
		seen = append(seen, s.Weights["2"])
		var fx []Effect
		s, _ = Next(s, Event{Kind: MeasurementTaken, Phase: PhaseSuccessful}, now)
		now = now.Add(time.Minute)
		s, fx = Next(s, Event{Kind: Tick}, now)
		if s.State == Succeeded && !reflect.DeepEqual(fx[len(fx)-2], UnloadVersion{Version: "1", After: DefaultScaleDownDelay}) {
			t.Errorf("success effects %#v, want the old stable unloaded after the scale-down delay", fx)
		}
	}
	if want := []int{10, 50, 100}; !reflect.DeepEqual(seen, want) || s.State != Succeeded {
		t.Fatalf("weights %v, state %s; want %v then Succeeded", seen, s.State, want)
	}
}

func TestFailedMeasurementAbortsStableFirst(t *testing.T) {
	s := start(t, specs(t)[0])
	s, fx := Next(s, Event{Kind: MeasurementTaken, Phase: PhaseFailed, Reason: "error_rate=0.5"}, t0.Add(10*time.Second))
	if s.State != Aborting || s.Analysis.Phase != PhaseFailed {
		t.Fatalf("state %s analysis %s, want Aborting/Failed", s.State, s.Analysis.Phase)
	}
	if want := (SetTraffic{Weights: map[string]int{"1": 100, "2": 0}}); !reflect.DeepEqual(fx[0], want) {
		t.Fatalf("first effect %#v, want %#v", fx[0], want)
	}
	s, fx = Next(s, Event{Kind: Tick}, t0.Add(10*time.Second+DefaultScaleDownDelay))
	if s.State != Aborted || !reflect.DeepEqual(fx[0], UnloadVersion{Version: "2"}) {
		t.Fatalf("after the abort delay: %s %#v, want Aborted and the candidate unloaded", s.State, fx)
	}
}

// TestAnalysisLimits pins Argo's counting: failureLimit 1 aborts on the second failure,
// inconclusiveLimit 1 pauses on the second inconclusive, consecutiveErrorLimit 4 errs
// on the fifth error in a row (a success in between resets it).
func TestAnalysisLimits(t *testing.T) {
	r := specs(t)[0]
	r.Analysis.FailureLimit, r.Analysis.InconclusiveLimit = 1, 1
	for _, tc := range []struct {
		phases []Phase
		want   State
	}{
		{[]Phase{PhaseFailed}, Progressing},
		{[]Phase{PhaseFailed, PhaseSuccessful, PhaseFailed}, Aborting},
		{[]Phase{PhaseInconclusive}, Progressing},
		{[]Phase{PhaseInconclusive, PhaseInconclusive}, Paused},
		{[]Phase{PhaseError, PhaseError, PhaseError, PhaseError}, Progressing},
		{[]Phase{PhaseError, PhaseError, PhaseError, PhaseError, PhaseError}, Aborting},
		{[]Phase{PhaseError, PhaseError, PhaseError, PhaseSuccessful, PhaseError, PhaseError}, Progressing},
	} {
		s := start(t, r)
		for _, p := range tc.phases {
			s, _ = Next(s, Event{Kind: MeasurementTaken, Phase: p}, t0)
		}
		if s.State != tc.want {
			t.Errorf("%v: state %s, want %s", tc.phases, s.State, tc.want)
		}
	}
}

func TestRestartKeepsPersistedWeightsAndRechecks(t *testing.T) {
	s := start(t, specs(t)[0])
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var back Status
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, s) {
		t.Fatalf("status does not survive JSON:\n%+v\n%+v", back, s)
	}
	// The bake ran out while the controller was down: no advance before a fresh check.
	later := t0.Add(time.Hour)
	s, fx := Next(back, Event{Kind: Restart, Ready: true}, later)
	if !reflect.DeepEqual(fx[0], SetTraffic{Weights: map[string]int{"1": 90, "2": 10}}) || !s.Recheck {
		t.Fatalf("restart: %#v recheck %v; want the persisted weights re-applied and a recheck", fx, s.Recheck)
	}
	if s2, _ := Next(s, Event{Kind: Tick}, later); s2.Weights["2"] != 10 {
		t.Fatalf("a tick after restart raised the candidate to %d without analysis", s2.Weights["2"])
	}
	s, _ = Next(s, Event{Kind: MeasurementTaken, Phase: PhaseSuccessful}, later)
	if s, _ = Next(s, Event{Kind: Tick}, later); s.Weights["2"] != 50 {
		t.Fatalf("after a fresh successful measurement the candidate is at %d, want 50", s.Weights["2"])
	}
	if s, _ := Next(back, Event{Kind: Restart, Ready: false}, later); s.State != Aborting {
		t.Fatalf("restart with the candidate not loadable: %s, want Aborting", s.State)
	}
}

func TestMirrorThenCanary(t *testing.T) {
	s := start(t, specs(t)[3])
	if s.State != Mirroring || s.Mirror == nil || s.Mirror.Percent != 20 || s.Weights["1"] != 100 {
		t.Fatalf("got %s mirror %+v weights %v, want Mirroring 20%% beside stable 100", s.State, s.Mirror, s.Weights)
	}
	if held, _ := Next(s, Event{Kind: Tick}, t0.Add(time.Minute)); held.State != Mirroring {
		t.Fatalf("the mirror ended by its clock alone, with no measurement: %s", held.State)
	}
	s, _ = Next(s, Event{Kind: MeasurementTaken, Phase: PhaseSuccessful}, t0.Add(30*time.Second))
	s, fx := Next(s, Event{Kind: Tick}, t0.Add(time.Minute))
	if s.State != Progressing || s.Mirror != nil || s.Weights["2"] != 25 {
		t.Fatalf("after the mirror: %s mirror %+v weights %v", s.State, s.Mirror, s.Weights)
	}
	if !reflect.DeepEqual(fx[0], SetTraffic{Weights: map[string]int{"1": 100, "2": 0}}) {
		t.Fatalf("the mirror is not removed first: %#v", fx)
	}
}

// A bake ends by its clock only after a successful measurement in it: with no traffic
// (errors: no data) it holds the weights until consecutive errors abort.
func TestBakeNeedsEvidence(t *testing.T) {
	r := Rollout{Endpoint: "m", Stable: "1", Candidate: "2",
		Strategy: Strategy{Canary: &Canary{Steps: []int{10, 100}, Interval: Duration(time.Second)}},
		Analysis: Analysis{Interval: Duration(time.Second), Metrics: []Metric{{Name: ErrorRate, Max: ptr(0.01)}}}}
	r, err := r.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	s, _ := Next(start(t, r), Event{Kind: Tick}, t0)
	now := t0
	for i := range DefaultConsecutiveErrorLimit + 1 {
		now = now.Add(time.Second)
		s, _ = Next(s, Event{Kind: MeasurementTaken, Phase: PhaseError, Reason: "no data"}, now)
		if s, _ = Next(s, Event{Kind: Tick}, now); i < DefaultConsecutiveErrorLimit && (s.State != Progressing || s.Weights["2"] != 10) {
			t.Fatalf("after %d intervals without data: %s with %v, want the bake held at 10", i+1, s.State, s.Weights)
		}
	}
	if s.State != Aborting || s.Weights["2"] != 0 {
		t.Fatalf("after %d intervals without data: %s with %v, want aborted", DefaultConsecutiveErrorLimit+1, s.State, s.Weights)
	}
}

func TestGateRetriesThenAborts(t *testing.T) {
	r := specs(t)[4] // gate with 2 retries first
	s := start(t, r)
	if _, ok := s.Rollout.Strategy.Steps[s.Step].Gate, true; s.Step != 0 || !ok {
		t.Fatalf("not waiting at the gate: step %d", s.Step)
	}
	now := t0
	for i := range 2 {
		s, _ = Next(s, Event{Kind: GateFail}, now)
		now = s.GateRetryAt
		var fx []Effect
		s, fx = Next(s, Event{Kind: Tick}, now)
		if len(fx) != 1 || fx[0] != (CallGate{Gate: *r.Strategy.Steps[0].Gate}) {
			t.Fatalf("retry %d: effects %#v, want the gate called again", i, fx)
		}
	}
	if s, _ = Next(s, Event{Kind: GateFail}, now); s.State != Aborting {
		t.Fatalf("third failure with 2 retries: %s, want Aborting", s.State)
	}
}
