package mgmt

import (
	"net/http"
	"slices"
	"strconv"

	"github.com/ferryml/ferry/internal/mgmtapi"
	"github.com/ferryml/ferry/internal/rollout"
)

func (h *Handler) listRollouts(w http.ResponseWriter, _ *http.Request, _ params) error {
	rs := h.svc.Rollouts()
	if rs == nil {
		rs = []rollout.Status{}
	}
	writeJSON(w, http.StatusOK, rs)
	return nil
}

// placeholderStable stands in for a stable version the service will fill in, so the
// rest of a rollout is validated here and a bad one is a 400 naming its field.
const placeholderStable = "(current stable version)"

func (h *Handler) startRollout(w http.ResponseWriter, r *http.Request, _ params) error {
	var ro rollout.Rollout
	if err := h.decodeBody(w, r, &ro); err != nil {
		return err
	}
	check := ro
	if check.Stable == "" {
		check.Stable = placeholderStable
	}
	if _, err := check.Normalize(); err != nil {
		return badRequest("rollout %q: %v", ro.Endpoint, err)
	}
	if err := h.svc.StartRollout(r.Context(), ro); err != nil {
		return err
	}
	s, _, ok := h.svc.RolloutStatus(ro.Endpoint)
	if !ok {
		return rolloutNotFound(ro.Endpoint)
	}
	writeJSON(w, http.StatusCreated, s)
	return nil
}

func rolloutNotFound(endpoint string) error {
	return &namedError{msg: "rollout " + endpoint + ": " + rollout.ErrNotFound.Error(), err: rollout.ErrNotFound}
}

func (h *Handler) getRollout(w http.ResponseWriter, _ *http.Request, p params) error {
	s, hist, ok := h.svc.RolloutStatus(p["endpoint"])
	if !ok {
		return rolloutNotFound(p["endpoint"])
	}
	if hist == nil {
		hist = []rollout.Change{}
	}
	writeJSON(w, http.StatusOK, mgmtapi.RolloutDetail{Status: s, History: hist})
	return nil
}

// rolloutAction promotes, pauses, resumes or aborts; each is idempotent, and the
// answer is the status after it.
func (h *Handler) rolloutAction(w http.ResponseWriter, r *http.Request, p params) error {
	ep, action := p["endpoint"], p["action"]
	if !slices.Contains(mgmtapi.Actions, action) {
		return &namedError{msg: "no such rollout action " + strconv.Quote(action) + " (want promote, pause, resume or abort)", err: rollout.ErrNotFound}
	}
	if err := h.svc.RolloutAction(r.Context(), ep, action); err != nil {
		return err
	}
	s, _, ok := h.svc.RolloutStatus(ep)
	if !ok {
		return rolloutNotFound(ep)
	}
	writeJSON(w, http.StatusOK, s)
	return nil
}
