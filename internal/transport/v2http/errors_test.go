package v2http

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/shm"
)

func TestStatusOf(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want int
	}{
		{"input error", &core.InputError{Input: "x", Reason: "bad"}, http.StatusBadRequest},
		{"wrapped input error", fmt.Errorf("model m: %w", &core.InputError{Input: "x"}), http.StatusBadRequest},
		{"invalid", core.Invalidf("malformed"), http.StatusBadRequest},
		{"invalid sentinel", fmt.Errorf("x: %w", core.ErrInvalid), http.StatusBadRequest},
		{"unknown model", &core.NotFoundError{Model: "m"}, http.StatusNotFound},
		{"wrapped not found", fmt.Errorf("infer: %w", core.ErrNotFound), http.StatusNotFound},
		{"unavailable", core.Unavailablef("queue full"), http.StatusServiceUnavailable},
		{"too large", core.TooLargef("body"), http.StatusRequestEntityTooLarge},
		{"rate limited", fmt.Errorf("tenant t: %w", core.ErrRateLimited), http.StatusTooManyRequests},
		{"max bytes reader", &http.MaxBytesError{Limit: 10}, http.StatusRequestEntityTooLarge},
		{"client gone while its model loads", fmt.Errorf("model 'm' is loading: %w", context.Canceled), statusClientClosed},
		{"client gone while queued", fmt.Errorf("request ended before it ran: %w: %w", core.ErrUnavailable, context.Canceled), statusClientClosed},
		{"bad shared memory request", shm.ErrCUDAUnsupported, http.StatusBadRequest},
		{"shared memory region exists", fmt.Errorf("register: %w", shm.ErrExists), http.StatusBadRequest},
		{"no such shared memory region", shm.CUDARegionNotFound("r"), http.StatusNotFound},
		{"anything else", errors.New("backend crashed"), http.StatusInternalServerError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := statusOf(tc.err); got != tc.want {
				t.Errorf("statusOf(%v) = %d, want %d", tc.err, got, tc.want)
			}
		})
	}
}

func TestCheckName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"resnet50", true}, {"my-model_v2.onnx", true}, {"", false}, {"..", false},
		{"a..b", false}, {"a/b", false}, {`a\b`, false}, {".", false}, {"a\x00b", false}, {"tab\there", false},
	} {
		if err := core.CheckName("model", tc.name); (err == nil) != tc.ok {
			t.Errorf("core.CheckName(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

// A request its client cancelled is logged at info, not as a server error.
func TestWriteErrorLogsAClientCancelAtInfo(t *testing.T) {
	for _, tc := range []struct {
		err       error
		wantLevel string
	}{
		{fmt.Errorf("model 'm' is loading: %w", context.Canceled), "level=INFO"},
		{errors.New("backend crashed"), "level=ERROR"},
	} {
		var logs bytes.Buffer
		h := &Handler{log: slog.New(slog.NewTextHandler(&logs, nil))}
		w := httptest.NewRecorder()
		h.writeError(w, httptest.NewRequest(http.MethodPost, "/v2/models/m/infer", nil), tc.err)
		if !strings.Contains(logs.String(), tc.wantLevel) {
			t.Errorf("writeError(%v) logged %q, want %s", tc.err, logs.String(), tc.wantLevel)
		}
	}
}

// refusal is an admission refusal as core sees it: its kind, and when to retry.
type refusal struct {
	kind  error
	retry time.Duration
}

func (r refusal) Error() string          { return "refused" }
func (r refusal) Unwrap() error          { return r.kind }
func (r refusal) RetryIn() time.Duration { return r.retry }

// Refusals carry Retry-After in whole seconds, rounded up; other errors none.
func TestWriteErrorSendsRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		err        error
		wantStatus int
		wantRetry  string
	}{
		{refusal{core.ErrRateLimited, 1500 * time.Millisecond}, http.StatusTooManyRequests, "2"},
		{refusal{core.ErrUnavailable, time.Second}, http.StatusServiceUnavailable, "1"},
		{refusal{core.ErrRateLimited, 0}, http.StatusTooManyRequests, ""},
		{core.Unavailablef("queue full"), http.StatusServiceUnavailable, ""},
	} {
		h := &Handler{log: slog.New(slog.DiscardHandler)}
		w := httptest.NewRecorder()
		h.writeError(w, httptest.NewRequest(http.MethodPost, "/v2/models/m/infer", nil), fmt.Errorf("model m: %w", tc.err))
		if w.Code != tc.wantStatus || w.Header().Get("Retry-After") != tc.wantRetry {
			t.Errorf("writeError(%v): %d Retry-After %q, want %d %q", tc.err, w.Code, w.Header().Get("Retry-After"), tc.wantStatus, tc.wantRetry)
		}
	}
}
