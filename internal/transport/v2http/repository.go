package v2http

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/ferryml/ferry/internal/core"
)

// Wire shapes of Triton's model repository extension.
type (
	indexRequestJSON struct {
		Ready bool `json:"ready"`
	}
	indexEntryJSON struct {
		Name    string `json:"name"`
		Version string `json:"version,omitempty"`
		State   string `json:"state"`
		Reason  string `json:"reason,omitempty"`
	}
	// repositoryRequestJSON is the load and unload body; parameter values stay raw so
	// each can be checked for the type its name needs.
	repositoryRequestJSON struct {
		Parameters map[string]json.RawMessage `json:"parameters"`
	}
)

// filePrefix marks a load parameter carrying a model file, base64-encoded.
const filePrefix = "file:"

func (h *Handler) repositoryIndex(w http.ResponseWriter, r *http.Request) {
	var req indexRequestJSON
	if err := h.readSmallJSON(w, r, &req); err != nil {
		h.writeError(w, r, err)
		return
	}
	entries, err := h.core.RepositoryIndex(r.Context(), req.Ready)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	out := make([]indexEntryJSON, len(entries))
	for i, e := range entries {
		out[i] = indexEntryJSON{Name: e.Name, Version: e.Version, State: e.State, Reason: e.Reason}
	}
	h.writeJSON(w, r, http.StatusOK, out)
}

// load serves POST /v2/repository/models/{m}/load. Success is 200 with an empty body,
// as in Triton.
func (h *Handler) load(w http.ResponseWriter, r *http.Request) {
	model, req, ok := h.repositoryRequest(w, r)
	if !ok {
		return
	}
	opts, err := loadOptions(req.Parameters)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	if err := h.core.LoadModel(r.Context(), model, opts); err != nil {
		h.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// loadOptions reads the load parameters: "config" (a JSON model configuration in a
// string) and "file:<path>" (base64 file contents).
func loadOptions(params map[string]json.RawMessage) (core.LoadOptions, error) {
	var opts core.LoadOptions
	for name, raw := range params {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return opts, core.Invalidf("load parameter %q must be a string", name)
		}
		switch {
		case name == "config":
			opts.Config = s
		case strings.HasPrefix(name, filePrefix):
			p := strings.TrimPrefix(name, filePrefix)
			if err := core.CheckLoadPath(p); err != nil {
				return opts, core.Invalidf("load parameter %q: %v", name, err)
			}
			data, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				return opts, core.Invalidf("load parameter %q: file contents must be base64: %v", name, err)
			}
			if opts.Files == nil {
				opts.Files = map[string][]byte{}
			}
			opts.Files[p] = data
		default:
			return opts, core.Invalidf("unknown load parameter %q (known: config, file:<path>)", name)
		}
	}
	return opts, nil
}

// repositoryRequest reads the model name and the JSON body of a load or unload; on a
// bad one it has answered with the error and ok is false.
func (h *Handler) repositoryRequest(w http.ResponseWriter, r *http.Request) (model string, req repositoryRequestJSON, ok bool) {
	model, _, err := modelPath(r)
	if err == nil {
		err = h.readSmallJSON(w, r, &req)
	}
	if err != nil {
		h.writeError(w, r, err)
		return "", req, false
	}
	return model, req, true
}

// unload serves POST /v2/repository/models/{m}/unload, with Triton's one parameter,
// unload_dependents.
func (h *Handler) unload(w http.ResponseWriter, r *http.Request) {
	model, req, ok := h.repositoryRequest(w, r)
	if !ok {
		return
	}
	dependents := false
	for name, raw := range req.Parameters {
		if name != "unload_dependents" || json.Unmarshal(raw, &dependents) != nil {
			h.writeError(w, r, core.Invalidf("unknown unload parameter %q (known: unload_dependents, a boolean)", name))
			return
		}
	}
	if err := h.core.UnloadModel(r.Context(), model, dependents); err != nil {
		h.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// readSmallJSON decodes an optional JSON body (empty means defaults) within the body
// limit. Unknown fields are ignored, as Triton ignores them.
func (h *Handler) readSmallJSON(w http.ResponseWriter, r *http.Request, v any) error {
	body, err := readBody(w, r, h.limits.MaxBodyBytes)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		return core.Invalidf("malformed JSON body: %v", err)
	}
	return nil
}
