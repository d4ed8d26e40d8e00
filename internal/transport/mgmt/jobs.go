package mgmt

import (
	"net/http"

	"github.com/ferryml/ferry/internal/mgmtapi"
)

// Jobs is the server's batch jobs (jobs.Manager); set in Options.Jobs, nil answers its
// routes 404 naming --jobs-dir.
type Jobs interface {
	Submit(spec mgmtapi.JobSpec) (mgmtapi.Job, error)
	Get(id string) (mgmtapi.Job, error)
	List() []mgmtapi.Job
	Cancel(id string) (mgmtapi.Job, error)
}

func (h *Handler) jobs() error {
	if h.o.Jobs == nil {
		return notEnabled("batch jobs (start ferry serve with --jobs-dir)")
	}
	return nil
}

// submitJob answers 201 with the queued (or already running) job.
func (h *Handler) submitJob(w http.ResponseWriter, r *http.Request, _ params) error {
	if err := h.jobs(); err != nil {
		return err
	}
	b, err := readBody(w, r, "the job", h.o.MaxBodyBytes)
	if err != nil {
		return err
	}
	var spec mgmtapi.JobSpec
	if err := decodeStrict(b, &spec); err != nil {
		return err
	}
	j, err := h.o.Jobs.Submit(spec)
	if err != nil {
		return err
	}
	w.Header().Set("Location", mgmtapi.Prefix+"jobs/"+j.ID)
	writeJSON(w, http.StatusCreated, j)
	return nil
}

// listJobs answers every job, newest first; ?state= filters.
func (h *Handler) listJobs(w http.ResponseWriter, r *http.Request, _ params) error {
	if err := h.jobs(); err != nil {
		return err
	}
	state := r.URL.Query().Get("state")
	out := []mgmtapi.Job{}
	for _, j := range h.o.Jobs.List() {
		if state == "" || j.State == state {
			out = append(out, j)
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (h *Handler) getJob(w http.ResponseWriter, _ *http.Request, p params) error {
	if err := h.jobs(); err != nil {
		return err
	}
	j, err := h.o.Jobs.Get(p["id"])
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, j)
	return nil
}

func (h *Handler) cancelJob(w http.ResponseWriter, _ *http.Request, p params) error {
	if err := h.jobs(); err != nil {
		return err
	}
	j, err := h.o.Jobs.Cancel(p["id"])
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, j)
	return nil
}
