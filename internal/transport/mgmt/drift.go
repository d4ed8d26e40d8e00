package mgmt

import (
	"bytes"
	"net/http"
	"strings"

	"github.com/ferryml/ferry/internal/monitor/drift"
)

// Drift is the drift monitor's view (drift.Monitor); set in Options.Drift, nil answers
// its routes 404.
type Drift interface {
	SetBaseline(model string, p *drift.Profile) error
	Report(model string) (drift.Report, error)
	ReportCurrent(model string) (drift.Report, error)
	Reports() []drift.Report
}

// DefaultMaxBaselineBytes is Options.MaxBaselineBytes's default: a training sample of
// some hundred thousand rows as CSV.
const DefaultMaxBaselineBytes = 256 << 20

// listDrift answers every watched model's report of its last closed window.
func (h *Handler) listDrift(w http.ResponseWriter, r *http.Request, _ params) error {
	if h.o.Drift == nil {
		return notEnabled("drift monitoring")
	}
	writeJSON(w, http.StatusOK, h.o.Drift.Reports())
	return nil
}

// getDrift answers one model's report: of its last closed window, or with
// ?window=current of the window still filling.
func (h *Handler) getDrift(w http.ResponseWriter, r *http.Request, p params) error {
	if h.o.Drift == nil {
		return notEnabled("drift monitoring")
	}
	report := h.o.Drift.Report
	switch win := r.URL.Query().Get("window"); win {
	case "", "last":
	case "current":
		report = h.o.Drift.ReportCurrent
	default:
		return badRequest("window=%q: want last or current", win)
	}
	rep, err := report(p["model"])
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}

// putBaseline makes the body the model's baseline: a training sample as CSV, JSON lines
// or Parquet, or a profile (drift's JSON), told apart by Content-Type (text/csv,
// application/x-ndjson or application/jsonl, application/vnd.apache.parquet,
// application/json) or, without one, by the body itself.
func (h *Handler) putBaseline(w http.ResponseWriter, r *http.Request, p params) error {
	if h.o.Drift == nil {
		return notEnabled("drift monitoring")
	}
	b, err := readBody(w, r, "the baseline", h.o.MaxBaselineBytes)
	if err != nil {
		return err
	}
	prof, err := readBaseline(r.Header.Get("Content-Type"), b)
	if err != nil {
		return badRequest("baseline for %s: %v", p["model"], err)
	}
	if err := h.o.Drift.SetBaseline(p["model"], prof); err != nil {
		return err
	}
	rep, err := h.o.Drift.ReportCurrent(p["model"])
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}

func readBaseline(contentType string, b []byte) (*drift.Profile, error) {
	ct, _, _ := strings.Cut(strings.ToLower(contentType), ";")
	ct = strings.TrimSpace(ct)
	switch {
	case ct == "text/csv":
		return drift.ProfileFromCSV(bytes.NewReader(b), drift.ProfileOptions{})
	case ct == "application/x-ndjson" || ct == "application/jsonl" || ct == "application/x-jsonlines":
		return drift.ProfileFromJSONL(bytes.NewReader(b), drift.ProfileOptions{})
	case ct == "application/vnd.apache.parquet" || bytes.HasPrefix(b, []byte("PAR1")):
		return drift.ProfileFromParquet(bytes.NewReader(b), int64(len(b)), drift.ProfileOptions{})
	case ct == "application/json":
		return drift.ReadProfile(bytes.NewReader(b))
	}
	// No telling type: a profile is one JSON object, JSON lines are several, and
	// anything else is read as CSV.
	trimmed := bytes.TrimSpace(b)
	if bytes.HasPrefix(trimmed, []byte("{")) {
		if first, _, more := bytes.Cut(trimmed, []byte("\n")); more && bytes.HasSuffix(bytes.TrimSpace(first), []byte("}")) {
			return drift.ProfileFromJSONL(bytes.NewReader(b), drift.ProfileOptions{})
		}
		return drift.ReadProfile(bytes.NewReader(b))
	}
	return drift.ProfileFromCSV(bytes.NewReader(b), drift.ProfileOptions{})
}
