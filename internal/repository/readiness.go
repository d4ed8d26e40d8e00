package repository

import "github.com/ferryml/ferry/internal/core"

// A READY version can stop serving without being unloaded when its instances report
// readiness (scheduler.Readier: a remote model whose upstream is down). Such a version
// stays loaded, shows as UNAVAILABLE with the instances' reason, and is not picked for
// requests until they are ready again. Server readiness (Healthy) does not consult it:
// an upstream outage is not fixed by taking this server out of its load balancer.

// serving reports whether v takes requests. Caller holds Repository.mu.
func (v *version) serving() bool {
	return v.state == core.StateReady && v.instancesReady() == nil
}

func (v *version) instancesReady() error {
	if v.sched == nil { // ensembles have no instances of their own
		return nil
	}
	return v.sched.Ready()
}

// shown is the state and reason the index and error messages give for v.
func (v *version) shown() (state, reason string) {
	if v.state == core.StateReady {
		if err := v.instancesReady(); err != nil {
			return core.StateUnavailable, err.Error()
		}
	}
	return v.state, v.reason
}
