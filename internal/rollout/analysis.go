package rollout

import (
	"fmt"
	"math"
	"strings"
)

// Phase is the outcome of a measurement or of an analysis run, as Argo Rollouts names
// them.
type Phase string

// Phases, best first (Argo's analysisStatusOrder; a run's phase is its worst metric's).
const (
	PhaseSuccessful   Phase = "Successful"
	PhaseRunning      Phase = "Running"
	PhaseInconclusive Phase = "Inconclusive"
	PhaseError        Phase = "Error"
	PhaseFailed       Phase = "Failed"
)

func (p Phase) rank() int {
	return map[Phase]int{PhaseSuccessful: 0, PhaseRunning: 1, PhaseInconclusive: 3, PhaseError: 4, PhaseFailed: 5}[p]
}

// AnalysisStatus counts the measurements of the current candidate.
type AnalysisStatus struct {
	Phase             Phase  `json:"phase"`
	Measurements      int    `json:"measurements"`
	Successful        int    `json:"successful"`
	Failed            int    `json:"failed"`
	Inconclusive      int    `json:"inconclusive"`
	Errors            int    `json:"errors"`
	ConsecutiveErrors int    `json:"consecutiveErrors"`
	StepMeasurements  int    `json:"stepMeasurements"` // since the current step began
	Message           string `json:"message,omitempty"`
}

func (a *AnalysisStatus) count(p Phase) {
	a.Measurements++
	a.StepMeasurements++
	switch p {
	case PhaseSuccessful:
		a.Successful++
	case PhaseFailed:
		a.Failed++
	case PhaseInconclusive:
		a.Inconclusive++
	case PhaseError:
		a.Errors++
		a.ConsecutiveErrors++
		return
	}
	a.ConsecutiveErrors = 0
}

// assess is Argo's assessMetricStatus over the counts: failure first, then
// inconclusive, then consecutive errors; Successful once Count measurements passed.
func (a AnalysisStatus) assess(spec Analysis) Phase {
	errLimit := DefaultConsecutiveErrorLimit
	if spec.ConsecutiveErrorLimit != nil {
		errLimit = *spec.ConsecutiveErrorLimit
	}
	switch {
	case spec.FailureLimit >= 0 && a.Failed > spec.FailureLimit:
		return PhaseFailed
	case a.Inconclusive > spec.InconclusiveLimit:
		return PhaseInconclusive
	case a.ConsecutiveErrors > errLimit:
		return PhaseError
	case spec.Count > 0 && a.Measurements >= spec.Count:
		return PhaseSuccessful
	}
	return PhaseRunning
}

// measured counts one interval's verdict and acts on the run's phase.
func (t *transition) measured(e Event) {
	s := &t.s
	if !s.AnalysisActive() || s.Analysis.Phase == PhaseFailed {
		return
	}
	s.Analysis.count(e.Phase)
	s.Analysis.Message = e.Reason
	s.Analysis.Phase = s.Analysis.assess(s.Rollout.Analysis)
	if e.Phase == PhaseSuccessful {
		s.Recheck = false
	}
	count := max(s.Rollout.Analysis.Count, 1)
	t.verdict(s.Analysis.StepMeasurements >= count, e.Reason)
}

// analysisDone takes a whole run's phase from outside (e.g. a future external analysis).
func (t *transition) analysisDone(e Event) {
	s := &t.s
	if s.State == Provisioning || s.Analysis.Phase == PhaseFailed {
		return
	}
	s.Analysis.Phase, s.Analysis.Message = e.Phase, e.Reason
	if e.Phase == PhaseSuccessful {
		s.Recheck = false
	}
	t.verdict(true, e.Reason)
}

// verdict is Argo's effect on the rollout: Failed or Error abort, Inconclusive pauses,
// and a passing analysis step ends once its run is complete.
func (t *transition) verdict(runComplete bool, msg string) {
	s := &t.s
	switch s.Analysis.Phase {
	case PhaseFailed, PhaseError:
		t.abort("analysis " + strings.ToLower(string(s.Analysis.Phase)) + suffix(msg))
	case PhaseInconclusive:
		t.pause(ReasonInconclusive)
	default:
		if s.State == Progressing && s.Rollout.Strategy.Steps[s.Step].Analysis != nil && runComplete && !s.Recheck {
			t.enterStep(s.Step + 1)
		}
	}
}

// Measure judges one interval: each metric of a on the candidate's window, against the
// stable version's window of the same interval when the metric is relative. While
// mirroring, the candidate's window is its shadow comparisons (error_rate and
// shadow_diff apply); otherwise shadow_diff does not apply. No applicable metric is
// Successful (Argo's rule for a measurement without conditions). The message names each
// metric's value, dry-run ones too.
func Measure(a Analysis, candidate, stable Window, mirroring bool) (Phase, string) {
	phase := PhaseSuccessful
	var notes []string
	for _, m := range a.Metrics {
		p, note, ok := measureMetric(a, m, candidate, stable, mirroring)
		if !ok {
			continue
		}
		if m.DryRun {
			note += " (dry run)"
		} else if p.rank() > phase.rank() {
			phase = p
		}
		notes = append(notes, note)
	}
	return phase, strings.Join(notes, "; ")
}

func measureMetric(a Analysis, m Metric, cand, stable Window, mirroring bool) (Phase, string, bool) {
	v, n, ok := cand.value(m.Name, mirroring)
	if !ok {
		return "", "", false
	}
	switch {
	case n == 0 && a.MinSamples == 0:
		return PhaseError, m.Name + ": no data returned", true
	case n < uint64(a.MinSamples):
		return PhaseInconclusive, fmt.Sprintf("%s: %d samples < minSamples %d", m.Name, n, a.MinSamples), true
	case math.IsNaN(v):
		return PhaseError, m.Name + ": no value", true
	}
	lo, hi, ref := bounds(m, 1)
	if m.Relative {
		sv, sn, _ := stable.value(m.Name, false) // the stable version serves, it is never mirrored
		if sn == 0 {
			return "", "", false // nothing to compare to: the candidate has all the traffic
		}
		if sn < uint64(a.MinSamples) {
			return PhaseInconclusive, fmt.Sprintf("%s: stable has %d samples, too few to compare", m.Name, sn), true
		}
		lo, hi, ref = bounds(m, sv)
	}
	note := fmt.Sprintf("%s=%.4g", m.Name, v)
	if m.Relative {
		note += fmt.Sprintf(" (stable %.4g)", ref)
	}
	if v > hi || v < lo {
		return PhaseFailed, note + " out of bounds", true
	}
	return PhaseSuccessful, note, true
}

// bounds are the metric's limits scaled by ref (1 for absolute limits).
func bounds(m Metric, ref float64) (lo, hi, r float64) {
	lo, hi = math.Inf(-1), math.Inf(1)
	if m.Min != nil {
		lo = *m.Min * ref
	}
	if m.Max != nil {
		hi = *m.Max * ref
	}
	return lo, hi, ref
}
