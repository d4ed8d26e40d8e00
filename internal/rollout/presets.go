package rollout

import (
	"errors"
	"fmt"
)

// Canary sends each of Steps percent to the candidate in turn, with a bake of Interval
// after each (10, 50, 100: three bakes).
type Canary struct {
	Steps    []int    `json:"steps"`
	Interval Duration `json:"interval"`
}

// Linear raises the candidate by Step percent at a time up to 100, baking Interval after
// each raise.
type Linear struct {
	Step     int      `json:"step"`
	Interval Duration `json:"interval"`
}

// BlueGreen switches everything to the warmed candidate at once, bakes it for Bake, then
// keeps the old version loaded for RollbackWindow (the final bake) before succeeding;
// an abort in either sends everything back in one routing change.
type BlueGreen struct {
	Bake           Duration `json:"bake"`
	RollbackWindow Duration `json:"rollbackWindow"`
}

// ShadowThenCanary mirrors MirrorPercent of the requests to the candidate for
// MirrorDuration, then runs Canary.
type ShadowThenCanary struct {
	MirrorPercent  int      `json:"mirrorPercent"`
	MirrorDuration Duration `json:"mirrorDuration"`
	Canary         Canary   `json:"canary"`
}

// expand turns the preset (if any) into steps and a final bake.
func (s Strategy) expand() ([]Step, Duration, error) {
	switch {
	case s.Canary != nil:
		steps, err := s.Canary.steps("strategy.canary")
		return steps, s.FinalBake, err
	case s.Linear != nil:
		steps, err := s.Linear.steps()
		return steps, s.FinalBake, err
	case s.BlueGreen != nil:
		return s.BlueGreen.steps(), s.BlueGreen.RollbackWindow, nil
	case s.ShadowThenCanary != nil:
		steps, err := s.ShadowThenCanary.steps()
		return steps, s.FinalBake, err
	}
	return append([]Step(nil), s.Steps...), s.FinalBake, nil
}

func (c Canary) steps(field string) ([]Step, error) {
	if len(c.Steps) == 0 {
		return nil, fmt.Errorf("%s.steps: must not be empty", field)
	}
	if c.Interval <= 0 {
		return nil, fmt.Errorf("%s.interval: must be > 0, got %s", field, c.Interval.D())
	}
	var steps []Step
	prev := 0
	for i, w := range c.Steps {
		if w <= prev || w > 100 {
			return nil, fmt.Errorf("%s.steps[%d]: weights must rise within 1..100, got %d after %d", field, i, w, prev)
		}
		prev = w
		steps = append(steps, Step{SetWeight: &SetWeight{Percent: w}}, Step{Bake: &Bake{Duration: c.Interval}})
	}
	return steps, nil
}

func (l Linear) steps() ([]Step, error) {
	if l.Step <= 0 || l.Step > 100 {
		return nil, fmt.Errorf("strategy.linear.step: must be 1..100, got %d", l.Step)
	}
	var ws []int
	for w := l.Step; ; w += l.Step {
		ws = append(ws, min(w, 100))
		if w >= 100 {
			break
		}
	}
	return Canary{Steps: ws, Interval: l.Interval}.steps("strategy.linear")
}

func (b BlueGreen) steps() []Step {
	// The candidate is warm before any step runs (Provisioning waits for it), so the
	// switch is one routing change.
	steps := []Step{{SetWeight: &SetWeight{Percent: 100}}}
	if b.Bake > 0 {
		steps = append(steps, Step{Bake: &Bake{Duration: b.Bake}})
	}
	return steps
}

func (s ShadowThenCanary) steps() ([]Step, error) {
	if s.MirrorPercent <= 0 || s.MirrorPercent > 100 {
		return nil, fmt.Errorf("strategy.shadowThenCanary.mirrorPercent: must be 1..100, got %d", s.MirrorPercent)
	}
	if s.MirrorDuration <= 0 {
		return nil, errors.New("strategy.shadowThenCanary.mirrorDuration: must be > 0")
	}
	canary, err := s.Canary.steps("strategy.shadowThenCanary.canary")
	if err != nil {
		return nil, err
	}
	return append([]Step{{Mirror: &MirrorStep{Percent: s.MirrorPercent, Duration: s.MirrorDuration}}}, canary...), nil
}
