package v2http

import (
	"bytes"
	"encoding/json"
	"net/http"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/settings"
)

// logging serves the logging extension, GET and POST /v2/logging. POST applies the
// body's settings (null leaves one as it is, as in Triton), then both answer every
// setting: log_file and log_format strings, log_info, log_warning and log_error
// booleans, log_verbose_level a number.
func (h *Handler) logging(w http.ResponseWriter, r *http.Request) {
	u, err := readSettings(h, w, r, decodeLogUpdate)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	st, err := h.core.LogSettings(r.Context(), u)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	out := map[string]any{}
	for _, v := range st.Report() {
		out[v.Name] = v.Value
	}
	h.writeJSON(w, r, http.StatusOK, out)
}

// decodeLogUpdate reads the settings of a logging request: booleans, strings and
// numbers, whose checking by name is settings' job; objects and lists are refused here.
func decodeLogUpdate(raw map[string]json.RawMessage) (settings.LogUpdate, error) {
	u := make(settings.LogUpdate, len(raw))
	for name, msg := range raw {
		d := json.NewDecoder(bytes.NewReader(msg))
		d.UseNumber()
		var v any
		if err := d.Decode(&v); err != nil {
			return nil, core.Invalidf("log setting %q: %v", name, err)
		}
		switch x := v.(type) {
		case nil, bool, string:
			u[name] = x
		case json.Number:
			u[name] = settings.Number(x)
		default:
			return nil, core.Invalidf("log setting %q: want a boolean, a number or a string, got %s", name, msg)
		}
	}
	return u, nil
}
