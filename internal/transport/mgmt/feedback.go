package mgmt

import (
	"context"
	"errors"

	"net/http"
	"time"

	"github.com/ferryml/ferry/internal/mgmtapi"
	"github.com/ferryml/ferry/internal/monitor/quality"
)

// Feedback is ground truth and the quality it measures (quality.Store); set in
// Options.Feedback, nil answers its routes 404.
type Feedback interface {
	Add(ctx context.Context, model string, labels []quality.Label) (accepted int, err error)
	Metrics(ctx context.Context, q quality.Query) ([]quality.Metrics, error)
}

// DefaultMaxFeedbackBytes is Options.MaxFeedbackBytes's default: room for a call of
// quality.MaxLabelsPerCall labels with long ids.
const DefaultMaxFeedbackBytes = 64 << 20

// errNotEnabled marks a route whose feature this server was started without.
var errNotEnabled = errors.New("not enabled")

func notEnabled(what string) error {
	return &namedError{msg: what + " is not enabled on this server", err: errNotEnabled}
}

// FeedbackRequest is POST /api/v1/feedback's body.
type FeedbackRequest struct {
	Model  string          `json:"model"`
	Labels []quality.Label `json:"labels"`
}

// FeedbackResponse is its answer.
type FeedbackResponse struct {
	Model    string `json:"model"`
	Accepted int    `json:"accepted"`
}

func (h *Handler) postFeedback(w http.ResponseWriter, r *http.Request, _ params) error {
	if h.o.Feedback == nil {
		return notEnabled("feedback (ground truth)")
	}
	b, err := readBody(w, r, "the feedback body", h.o.MaxFeedbackBytes)
	if err != nil {
		return err
	}
	var req FeedbackRequest
	if err := decodeStrict(b, &req); err != nil {
		return err
	}
	n, err := h.o.Feedback.Add(r.Context(), req.Model, req.Labels)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, FeedbackResponse{Model: req.Model, Accepted: n})
	return nil
}

// getQuality answers a model's quality per version: ?version= picks one, ?since= and
// ?until= bound the window (RFC 3339 times, or a duration back from now: since=1h).
func (h *Handler) getQuality(w http.ResponseWriter, r *http.Request, p params) error {
	if h.o.Feedback == nil {
		return notEnabled("quality (ground truth)")
	}
	q := quality.Query{Model: p["model"], Version: r.URL.Query().Get("version")}
	now := time.Now()
	var err error
	if q.Since, err = timeParam(r, "since", now); err != nil {
		return err
	}
	if q.Until, err = timeParam(r, "until", now); err != nil {
		return err
	}
	ms, err := h.o.Feedback.Metrics(r.Context(), q)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ms)
	return nil
}

// timeParam reads a query parameter as an RFC 3339 time or a duration before now;
// absent, the zero time.
func timeParam(r *http.Request, name string, now time.Time) (time.Time, error) {
	s := r.URL.Query().Get(name)
	t, err := mgmtapi.ParseTimeOrAgo(s, now)
	if err != nil {
		return t, badRequest("%s=%q: %v", name, s, err)
	}
	return t, nil
}
