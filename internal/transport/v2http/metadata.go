package v2http

import (
	"github.com/ferryml/ferry/internal/modelconfig"
	"net/http"

	"github.com/ferryml/ferry/internal/core"
)

// Wire shapes of the metadata endpoints, with the field names KServe and Triton use.
type (
	serverMetadataJSON struct {
		Name       string   `json:"name"`
		Version    string   `json:"version"`
		Extensions []string `json:"extensions"`
	}
	tensorMetadataJSON struct {
		Name     string  `json:"name"`
		DataType string  `json:"datatype"`
		Shape    []int64 `json:"shape"`
	}
	modelMetadataJSON struct {
		Name     string               `json:"name"`
		Versions []string             `json:"versions"`
		Platform string               `json:"platform"`
		Inputs   []tensorMetadataJSON `json:"inputs"`
		Outputs  []tensorMetadataJSON `json:"outputs"`
	}
	modelReadyJSON struct {
		Name  string `json:"name"`
		Ready bool   `json:"ready"`
	}
)

// live answers 200 {"live":true} or 503 {"live":false}; clients look at the status.
func (h *Handler) live(w http.ResponseWriter, r *http.Request) {
	ok := h.core.Live()
	h.writeJSON(w, r, healthStatus(ok), map[string]bool{"live": ok})
}

func (h *Handler) ready(w http.ResponseWriter, r *http.Request) {
	ok := h.core.Ready()
	h.writeJSON(w, r, healthStatus(ok), map[string]bool{"ready": ok})
}

func healthStatus(ok bool) int {
	if ok {
		return http.StatusOK
	}
	return http.StatusServiceUnavailable
}

func (h *Handler) serverMetadata(w http.ResponseWriter, r *http.Request) {
	md := h.core.Metadata()
	h.writeJSON(w, r, http.StatusOK, serverMetadataJSON{
		Name: md.Name, Version: md.Version, Extensions: nonNil(md.Extensions),
	})
}

func (h *Handler) modelMetadata(w http.ResponseWriter, r *http.Request) {
	model, version, err := modelPath(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	md, err := h.core.ModelMetadata(r.Context(), model, version)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	h.writeJSON(w, r, http.StatusOK, modelMetadataJSON{
		Name:     md.Name,
		Versions: nonNil(md.Versions),
		Platform: md.Platform,
		Inputs:   tensorsJSON(md.Inputs),
		Outputs:  tensorsJSON(md.Outputs),
	})
}

func tensorsJSON(ts []core.TensorMetadata) []tensorMetadataJSON {
	out := make([]tensorMetadataJSON, len(ts))
	for i, t := range ts {
		out[i] = tensorMetadataJSON{Name: t.Name, DataType: t.DataType, Shape: nonNil(t.Shape)}
	}
	return out
}

// modelReady answers 200 when ready and 503 when not, like the other health endpoints
// (DESIGN.md; Triton sends 400, and clients test for 200); an unknown model is 404.
func (h *Handler) modelReady(w http.ResponseWriter, r *http.Request) {
	model, version, err := modelPath(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	ok, err := h.core.ModelReady(r.Context(), model, version)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	h.writeJSON(w, r, healthStatus(ok), modelReadyJSON{Name: model, Ready: ok})
}

func (h *Handler) modelConfig(w http.ResponseWriter, r *http.Request) {
	model, version, err := modelPath(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	cfg, err := h.core.ModelConfig(r.Context(), model, version)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	body, err := modelconfig.MarshalJSON(cfg)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
