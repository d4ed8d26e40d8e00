package v2http

import (
	"encoding/json"
	"net/http"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/settings"
)

// traceSetting serves the trace extension: GET and POST /v2/trace/setting (global) and
// /v2/models/{model}/trace/setting. POST applies the body's settings, then both answer
// every setting as it now is: trace_level a list of strings, the others a string.
func (h *Handler) traceSetting(w http.ResponseWriter, r *http.Request) {
	model := r.PathValue("model")
	if model != "" {
		if err := core.CheckModelName(model); err != nil {
			h.writeError(w, r, err)
			return
		}
	}
	u, err := readSettings(h, w, r, decodeTraceUpdate)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	st, err := h.core.TraceSettings(r.Context(), model, u)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	out := map[string]any{}
	for _, v := range st.Report() {
		if v.List {
			out[v.Name] = v.Values
		} else {
			out[v.Name] = v.Values[0]
		}
	}
	h.writeJSON(w, r, http.StatusOK, out)
}

// readSettings decodes the settings a POST body holds (a JSON object of them) with
// decode; a GET and an empty body change nothing.
func readSettings[U any](h *Handler, w http.ResponseWriter, r *http.Request, decode func(map[string]json.RawMessage) (U, error)) (U, error) {
	var raw map[string]json.RawMessage
	if r.Method == http.MethodPost {
		if err := h.readSmallJSON(w, r, &raw); err != nil {
			var none U
			return none, err
		}
	}
	return decode(raw)
}

// decodeTraceUpdate reads the settings of a trace request: each a string, a list of
// strings (trace_level), or null, which clears it. Triton takes numbers as strings
// ("trace_rate": "1000"), so a JSON number is refused, naming the setting.
func decodeTraceUpdate(raw map[string]json.RawMessage) (settings.TraceUpdate, error) {
	u := make(settings.TraceUpdate, len(raw))
	for name, msg := range raw {
		var v any
		if err := json.Unmarshal(msg, &v); err != nil {
			return nil, core.Invalidf("trace setting %q: %v", name, err)
		}
		switch x := v.(type) {
		case nil:
			u[name] = nil
		case string:
			u[name] = []string{x}
		case []any:
			vals := make([]string, 0, len(x))
			for _, e := range x {
				s, ok := e.(string)
				if !ok {
					return nil, core.Invalidf("trace setting %q: want a string or a list of strings, got %s", name, msg)
				}
				vals = append(vals, s)
			}
			u[name] = vals
		default:
			return nil, core.Invalidf("trace setting %q: want a string (numbers too, as \"1000\") or a list of strings, got %s", name, msg)
		}
	}
	return u, nil
}
