package mgmt

import (
	"net/http"

	"github.com/ferryml/ferry/internal/monitor/alert"
)

// Alerts is the alerting engine's view (alert.Engine); set in Options.Alerts, nil
// answers its route 404.
type Alerts interface {
	Alerts() []alert.State
}

// listAlerts answers every rule's alert; ?state= and ?model= filter.
func (h *Handler) listAlerts(w http.ResponseWriter, r *http.Request, _ params) error {
	if h.o.Alerts == nil {
		return notEnabled("alerting")
	}
	state, model := r.URL.Query().Get("state"), r.URL.Query().Get("model")
	out := []alert.State{}
	for _, a := range h.o.Alerts.Alerts() {
		if (state == "" || a.State == state) && (model == "" || a.Model == model) {
			out = append(out, a)
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
