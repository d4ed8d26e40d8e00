package mgmt

import (
	"maps"
	"net/http"
	"slices"

	"github.com/ferryml/ferry/internal/mgmtapi"
	"github.com/ferryml/ferry/internal/router"
)

func (h *Handler) listAliases(w http.ResponseWriter, r *http.Request, p params) error {
	if _, err := h.svc.Store().Model(r.Context(), p["name"]); err != nil {
		return err
	}
	as, err := h.svc.Store().Aliases(r.Context(), p["name"])
	if err != nil {
		return err
	}
	if as == nil {
		as = map[string]int64{}
	}
	writeJSON(w, http.StatusOK, as)
	return nil
}

func (h *Handler) setAlias(w http.ResponseWriter, r *http.Request, p params) error {
	var req mgmtapi.AliasRequest
	if err := h.decodeBody(w, r, &req); err != nil {
		return err
	}
	if req.Version <= 0 {
		return badRequest("version %d: want a version number >= 1", req.Version)
	}
	if err := h.svc.SetAlias(r.Context(), p["name"], p["alias"], req.Version); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, mgmtapi.Alias{Model: p["name"], Alias: p["alias"], Version: req.Version})
	return nil
}

func (h *Handler) deleteAlias(w http.ResponseWriter, r *http.Request, p params) error {
	if err := h.svc.DeleteAlias(r.Context(), p["name"], p["alias"]); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// listEndpoints lists every endpoint with a policy, stored or live: the stored
// endpoints, and the models whose aliases or rollout give them a live one.
func (h *Handler) listEndpoints(w http.ResponseWriter, r *http.Request, _ params) error {
	stored, err := h.svc.Store().Endpoints(r.Context())
	if err != nil {
		return err
	}
	models, err := h.svc.Store().Models(r.Context())
	if err != nil {
		return err
	}
	names := map[string]bool{}
	for name := range stored {
		names[name] = true
	}
	for _, m := range models {
		names[m.Name] = true
	}
	out := []mgmtapi.Endpoint{}
	for _, name := range slices.Sorted(maps.Keys(names)) {
		if e := h.endpoint(name); e.Policy != nil || e.Live != nil {
			out = append(out, e)
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (h *Handler) endpoint(name string) mgmtapi.Endpoint {
	return mgmtapi.Endpoint{Name: name, Policy: h.svc.StoredPolicy(name), Live: h.svc.Policy(name)}
}

// getEndpoint answers for any registered model (its policies may both be null) and
// for any endpoint with a policy.
func (h *Handler) getEndpoint(w http.ResponseWriter, r *http.Request, p params) error {
	e := h.endpoint(p["name"])
	if e.Policy == nil && e.Live == nil {
		if _, err := h.svc.Store().Model(r.Context(), p["name"]); err != nil {
			return err
		}
	}
	writeJSON(w, http.StatusOK, e)
	return nil
}

// putEndpoint replaces an endpoint's policy; router.Parse refuses unknown fields and
// reports every invalid one (weights that do not sum to 100 name their sum).
func (h *Handler) putEndpoint(w http.ResponseWriter, r *http.Request, p params) error {
	b, err := readBody(w, r, "the request body", h.o.MaxBodyBytes)
	if err != nil {
		return err
	}
	pol, err := router.Parse(b)
	if err != nil {
		return badRequest("endpoint %q: %v", p["name"], err)
	}
	if err := h.svc.SetPolicy(r.Context(), p["name"], pol); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, h.endpoint(p["name"]))
	return nil
}
