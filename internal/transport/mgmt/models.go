package mgmt

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/ferryml/ferry/internal/mgmtapi"
	"github.com/ferryml/ferry/internal/registry"
)

func (h *Handler) listModels(w http.ResponseWriter, r *http.Request, _ params) error {
	ms, err := h.svc.Store().Models(r.Context())
	if err != nil {
		return err
	}
	out := make([]mgmtapi.Model, 0, len(ms))
	for _, m := range ms {
		full, err := h.model(r.Context(), m)
		if err != nil {
			return err
		}
		out = append(out, full)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// model adds m's versions and aliases; empty lists are [] and {} rather than null.
func (h *Handler) model(ctx context.Context, m registry.RegisteredModel) (mgmtapi.Model, error) {
	vs, err := h.svc.Store().Versions(ctx, m.Name)
	if err != nil {
		return mgmtapi.Model{}, err
	}
	as, err := h.svc.Store().Aliases(ctx, m.Name)
	if err != nil {
		return mgmtapi.Model{}, err
	}
	if vs == nil {
		vs = []registry.ModelVersion{}
	}
	if as == nil {
		as = map[string]int64{}
	}
	return mgmtapi.Model{RegisteredModel: m, Versions: vs, Aliases: as}, nil
}

func (h *Handler) createModel(w http.ResponseWriter, r *http.Request, _ params) error {
	var req mgmtapi.NewModel
	if err := h.decodeBody(w, r, &req); err != nil {
		return err
	}
	m, err := h.svc.Store().CreateModel(r.Context(), registry.RegisteredModel{Name: req.Name, Description: req.Description, Tags: req.Tags})
	return h.writeModel(w, r, http.StatusCreated, m, err)
}

// writeModel answers with m, its versions and aliases, unless err.
func (h *Handler) writeModel(w http.ResponseWriter, r *http.Request, code int, m registry.RegisteredModel, err error) error {
	if err != nil {
		return err
	}
	full, err := h.model(r.Context(), m)
	if err != nil {
		return err
	}
	writeJSON(w, code, full)
	return nil
}

func (h *Handler) getModel(w http.ResponseWriter, r *http.Request, p params) error {
	m, err := h.svc.Store().Model(r.Context(), p["name"])
	return h.writeModel(w, r, http.StatusOK, m, err)
}

func (h *Handler) patchModel(w http.ResponseWriter, r *http.Request, p params) error {
	var req mgmtapi.ModelPatch
	if err := h.decodeBody(w, r, &req); err != nil {
		return err
	}
	m, err := h.svc.Store().Model(r.Context(), p["name"])
	if err != nil {
		return err
	}
	if req.Description != nil {
		m.Description = *req.Description
	}
	if req.Tags != nil {
		m.Tags = *req.Tags
	}
	m, err = h.svc.Store().UpdateModel(r.Context(), m)
	return h.writeModel(w, r, http.StatusOK, m, err)
}

func (h *Handler) deleteModel(w http.ResponseWriter, r *http.Request, p params) error {
	if err := h.svc.Store().DeleteModel(r.Context(), p["name"]); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// audit serves GET /api/v1/audit?object=&actor=&action=&since=RFC3339&limit=N.
func (h *Handler) audit(w http.ResponseWriter, r *http.Request, _ params) error {
	q := r.URL.Query()
	f := registry.AuditFilter{Object: q.Get("object"), Actor: q.Get("actor"), Action: q.Get("action")}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return badRequest("limit %q: want a number >= 0", s)
		}
		f.Limit = n
	}
	if s := q.Get("since"); s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return badRequest("since %q: want an RFC 3339 time", s)
		}
		f.Since = t
	}
	es, err := h.svc.Store().Audit(r.Context(), f)
	if err != nil {
		return err
	}
	out := make([]mgmtapi.AuditEntry, 0, len(es))
	for _, e := range es {
		out = append(out, mgmtapi.NewAuditEntry(e))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
