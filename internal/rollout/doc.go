// Package rollout moves an endpoint's traffic from a stable model version to a
// candidate step by step, watches the candidate against the stable version while it
// does, and sends everything back to the stable version when the candidate misbehaves:
// the rollout controller of DESIGN.md (issue 16, point 4; the spec is
// shared/research/monitoring.md §3).
//
// Where things go: spec.go holds the Rollout a user writes (JSON and YAML friendly,
// Argo's camelCase names) and its validation; presets.go expands the canary, linear,
// blue/green and shadow-then-canary presets into plain steps; status.go names the
// states, events, effects and the persisted Status; machine.go is the pure
// state machine (Next: status + event -> status + effects) that the property tests in
// machine_test.go hold to the §3.6 invariants; analysis.go turns one interval's
// measurements into a phase and counts phases the way Argo Rollouts does; meter.go is
// the request tap (core.Tap) that measures what the analysis reads. controller.go
// declares the small interfaces the controller works through (Store, Traffic, Models,
// Observer) — the registry, the router and core implement them elsewhere, so this
// package imports none of them — and its API (Start, Promote, Pause, Resume, Abort,
// Alarm, Status, List, Run); loop.go is Run's one goroutine, which alone calls Next,
// persists each change through Store before it acts, and carries the effects out.
// hooks.go holds the gate and event webhooks.
//
// The controller's methods hand requests to Run's goroutine, so they wait for Run to
// be running (or for their context to end).
package rollout
