package mgmt

import (
	"context"
	"fmt"
	"testing"
)

// TestStatusOfClientGone: a request whose client went away (its context cancelled, as
// net/http does when the connection reads EOF mid-request) is 499, never a 500 that
// alerts and rollout analysis would count as the server's failure.
func TestStatusOfClientGone(t *testing.T) {
	for _, err := range []error{context.Canceled, fmt.Errorf("list models: %w", context.Canceled)} {
		if got := statusOf(err); got != statusClientClosed {
			t.Errorf("statusOf(%v) = %d, want %d", err, got, statusClientClosed)
		}
	}
}
