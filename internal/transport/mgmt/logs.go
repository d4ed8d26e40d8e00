package mgmt

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"

	"github.com/ferryml/ferry/internal/mgmtapi"
	"github.com/ferryml/ferry/internal/monitor/inferlog"
)

// LogReader reads the inference log; *inferlog.Logger and *inferlog.Reader are ones.
type LogReader interface {
	Query(ctx context.Context, q inferlog.Query) ([]inferlog.Entry, error)
}

// logs answers GET /api/v1/logs?model=&version=&since=&until=&id=&limit= with the
// selected entries as JSON lines (application/x-ndjson), oldest file first; at most
// mgmtapi.DefaultLogLimit without a limit.
func (h *Handler) logs(w http.ResponseWriter, r *http.Request, _ params) error {
	if h.o.Logs == nil {
		return notEnabled("the inference log")
	}
	q, err := mgmtapi.ParseLogQuery(r.URL.Query())
	if err != nil {
		return badRequest("%v", err)
	}
	if q.Limit == 0 {
		q.Limit = mgmtapi.DefaultLogLimit
	}
	es, err := h.o.Logs.Query(r.Context(), inferlog.Query{Model: q.Model, Version: q.Version, Since: q.Since, Until: q.Until, IDs: q.IDs, Limit: q.Limit})
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", mgmtapi.ContentJSONLines)
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	for i := range es {
		if err := enc.Encode(&es[i]); err != nil {
			return nil // the status is sent; the client sees a short answer
		}
	}
	_ = bw.Flush()
	return nil
}
