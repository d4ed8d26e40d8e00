package rollout

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"time"
)

// loop is Run's state: only Run's goroutine touches it.
type loop struct {
	c       *Controller
	ctx     context.Context //nolint:containedctx // Run's context, for the work the loop starts; the loop lives exactly as long
	results chan request
	rs      map[string]*live
}

func (l *loop) request(r request) error {
	lv := l.rs[r.endpoint]
	if r.start {
		if lv != nil && !lv.status.State.Terminal() && lv.status.State != Idle {
			return fmt.Errorf("rollout %s: %w (%s, candidate %s)", r.endpoint, ErrConflict, lv.status.State, lv.status.Rollout.Candidate)
		}
		if lv == nil {
			lv = &live{status: Status{State: Idle}}
			l.rs[r.endpoint] = lv
		}
		l.c.cfg.Meter.Watch(r.endpoint, r.ev.Rollout.Stable, r.ev.Rollout.Candidate)
	}
	if lv == nil {
		return fmt.Errorf("rollout %s: %w", r.endpoint, ErrNotFound)
	}
	return l.apply(r.endpoint, lv, r.ev)
}

// result is an outcome of background work; one about a candidate the endpoint has
// since replaced is dropped.
func (l *loop) result(r request) {
	lv := l.rs[r.endpoint]
	if lv == nil {
		return
	}
	if r.ev.Rollout != nil {
		if r.ev.Rollout.Candidate != lv.status.Rollout.Candidate {
			return
		}
		r.ev.Rollout = nil
	}
	if r.ev.Kind == Restart {
		lv.resuming = false
	}
	if err := l.apply(r.endpoint, lv, r.ev); err != nil {
		l.c.log.Error("rollout event not applied", "endpoint", r.endpoint, "event", r.ev.Kind, "err", err)
	}
}

// wake retries failed routing changes, fires due timers and takes due measurements.
func (l *loop) wake() {
	now := l.c.cfg.Now()
	for ep, lv := range l.rs {
		if lv.resuming {
			continue
		}
		if lv.pending != nil {
			l.setTraffic(ep, lv, *lv.pending)
		}
		// A measurement due with a timer is taken first: a bake as long as the interval
		// ends with its one measurement, not with a step that starts a new window.
		if lv.measuring && !now.Before(lv.lastMeasure.Add(lv.status.Rollout.Analysis.Interval.D())) {
			l.measure(ep, lv, now)
		}
		if w := lv.status.Wake(); !w.IsZero() && !now.Before(w) && !now.Before(lv.retryAt) {
			l.applyLogged(ep, lv, Event{Kind: Tick})
		}
	}
}

func (l *loop) applyLogged(ep string, lv *live, ev Event) {
	if err := l.apply(ep, lv, ev); err != nil {
		lv.retryAt = l.c.cfg.Now().Add(retryAfter)
		l.c.log.Error("rollout event not applied", "endpoint", ep, "event", ev.Kind, "err", err)
	}
}

// measure judges the interval that just ended, candidate against stable.
func (l *loop) measure(ep string, lv *live, now time.Time) {
	s := lv.status
	cand := l.c.cfg.Meter.Snapshot(ep, s.Rollout.Candidate)
	stable := l.c.cfg.Meter.Snapshot(ep, s.Rollout.Stable)
	lv.lastMeasure = now
	phase, msg := Measure(s.Rollout.Analysis, cand, stable, s.State == Mirroring)
	l.applyLogged(ep, lv, Event{Kind: MeasurementTaken, Phase: phase, Reason: msg})
}

// nextWake is how long the loop may sleep.
func (l *loop) nextWake() time.Duration {
	now := l.c.cfg.Now()
	var at time.Time
	earliest := func(t time.Time) {
		if !t.IsZero() && (at.IsZero() || t.Before(at)) {
			at = t
		}
	}
	for _, lv := range l.rs {
		if lv.resuming {
			continue
		}
		if w := lv.status.Wake(); !w.IsZero() {
			earliest(later(w, lv.retryAt))
		}
		if lv.measuring {
			earliest(lv.lastMeasure.Add(lv.status.Rollout.Analysis.Interval.D()))
		}
		if lv.pending != nil {
			earliest(now.Add(retryAfter))
		}
	}
	if at.IsZero() {
		return time.Hour
	}
	return max(at.Sub(now), 0)
}

// apply runs one event through Next, persists the result, then carries out its
// effects in order: the store holds a state before anyone is told it happened.
func (l *loop) apply(ep string, lv *live, ev Event) error {
	now := l.c.cfg.Now()
	prev := lv.status
	next, fx := Next(prev, ev, now)
	if reflect.DeepEqual(prev, next) && len(fx) == 0 {
		return nil
	}
	changes := changesOf(ep, next, fx, now)
	if err := l.save(ep, next, ev, changes, now); err != nil {
		if !mayApplyUnsaved(prev, next) {
			return fmt.Errorf("rollout %s: %s not persisted, so not applied: %w", ep, ev.Kind, err)
		}
		l.c.log.Error("rollout change not persisted; applied anyway, it only lowers the candidate's traffic",
			"endpoint", ep, "event", ev.Kind, "err", err)
	}
	lv.status = next
	for _, f := range fx {
		l.effect(ep, lv, f)
	}
	l.c.publish(ep, next, changes)
	for _, ch := range changes {
		if l.c.cfg.Observer != nil {
			l.c.cfg.Observer.RolloutChanged(ep, next, ch)
		}
		l.c.hook(ch)
	}
	l.track(ep, lv, prev, now)
	return nil
}

func (l *loop) save(ep string, s Status, ev Event, changes []Change, now time.Time) error {
	sb, err := json.Marshal(s)
	if err != nil {
		return err
	}
	eb, err := json.Marshal(record{Time: now, Event: ev, Changes: changes})
	if err != nil {
		return err
	}
	return l.c.cfg.Store.SaveRollout(l.ctx, ep, sb, eb)
}

func changesOf(ep string, s Status, fx []Effect, now time.Time) []Change {
	var out []Change
	for _, f := range fx {
		if e, ok := f.(Emit); ok {
			out = append(out, Change{Time: now, Endpoint: ep, Event: e.Event, From: e.From, To: e.To, Message: e.Message, Weights: s.Weights})
		}
	}
	return out
}

// track starts a fresh measurement interval when analysis becomes active or the
// traffic changes shape (a window must judge one split, and what came before is not
// the candidate's to answer for), and stops watching a finished rollout.
func (l *loop) track(ep string, lv *live, prev Status, now time.Time) {
	s := lv.status
	active := s.AnalysisActive()
	reshaped := !reflect.DeepEqual(prev.Weights, s.Weights) || !reflect.DeepEqual(prev.Mirror, s.Mirror)
	if active && (!lv.measuring || reshaped) {
		l.c.cfg.Meter.Snapshot(ep, s.Rollout.Candidate)
		l.c.cfg.Meter.Snapshot(ep, s.Rollout.Stable)
		lv.lastMeasure = now
	}
	lv.measuring = active
	if s.State.Terminal() {
		l.c.cfg.Meter.Unwatch(ep)
	}
}

func (l *loop) effect(ep string, lv *live, f Effect) {
	r := lv.status.Rollout
	switch f := f.(type) {
	case SetTraffic:
		l.setTraffic(ep, lv, f)
	case LoadCandidate:
		l.c.goLoad(l.ctx, l.results, r, func(err error) Event {
			if err != nil {
				return Event{Kind: CandidateLoadFailed, Reason: err.Error()}
			}
			return Event{Kind: CandidateReady}
		})
	case UnloadVersion:
		l.c.bg.Go(func() {
			t := time.NewTimer(f.After)
			defer t.Stop()
			select {
			case <-t.C:
				l.c.cfg.Models.Unload(ep, f.Version)
			case <-l.ctx.Done():
			}
		})
	case CallGate:
		s := lv.status
		l.c.bg.Go(func() {
			ev := l.c.callGate(l.ctx, f.Gate, s)
			ev.Rollout = &Rollout{Candidate: r.Candidate}
			l.c.post(l.ctx, l.results, request{endpoint: ep, ev: ev})
		})
	}
}

// setTraffic applies a routing change; one that fails is retried until it lands, and
// a newer change replaces it.
func (l *loop) setTraffic(ep string, lv *live, f SetTraffic) {
	if err := l.c.cfg.Traffic.SetTraffic(l.ctx, ep, f.Weights, f.Mirror); err != nil {
		l.c.log.Error("routing change failed; retrying", "endpoint", ep, "weights", f.Weights, "err", err)
		lv.pending = &f
		return
	}
	lv.pending = nil
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
