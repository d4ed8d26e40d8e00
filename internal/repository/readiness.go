package repository

import (
	"errors"

	"github.com/ferryml/ferry/internal/core"
)

// A READY version can stop serving without being unloaded when its instances report
// readiness (scheduler.Readier: a remote model whose upstream is down, a Python model
// whose process is restarting). Such a version stays loaded, shows as UNAVAILABLE with
// the instances' reason, and is not picked for requests until they are ready again.
//
// The instances' reason may say more, through methods the Python backend's
// RestartingError has:
//   - Starting() true: a new process is being started now. Requests are still let in
//     and wait for it (the backend bounds the wait), while the version reports not
//     ready: a restart costs them its start time, not an error.
//   - Local() true: the cause is in this server. With strict readiness the server then
//     reports not ready (Healthy), since another replica can serve meanwhile. An
//     upstream outage does not: every replica shares it, so taking this server out of
//     its load balancer fixes nothing.

// A reload that fails (poll mode, or a load request) while versions loaded before still
// serve leaves them serving and READY, as Triton does: the failure is kept as stale
// (model.stale for the config, version.stale for a version's files), shown in the
// index as the READY version's reason and logged, and it does not make the server
// unready, since a readiness probe must not pull a pod whose models all serve. The
// next load of changed files clears it.

// serving reports whether v takes requests. Caller holds Repository.mu.
func (v *version) serving() bool {
	if v.state != core.StateReady {
		return false
	}
	err := v.instancesReady()
	var s interface{ Starting() bool }
	return err == nil || errors.As(err, &s) && s.Starting()
}

func (v *version) instancesReady() error {
	if v.sched == nil { // ensembles have no instances of their own
		return nil
	}
	return v.sched.Ready()
}

// downLocked reports whether a READY version of m has no instance that can serve, for a
// reason in this server. Caller holds Repository.mu.
func (m *model) downLocked() bool {
	for _, v := range m.versions {
		if v.state != core.StateReady {
			continue
		}
		var l interface{ Local() bool }
		if err := v.instancesReady(); errors.As(err, &l) && l.Local() {
			return true
		}
	}
	return false
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
