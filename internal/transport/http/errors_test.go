package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/ferryml/ferry/internal/core"
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
		{"max bytes reader", &http.MaxBytesError{Limit: 10}, http.StatusRequestEntityTooLarge},
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
