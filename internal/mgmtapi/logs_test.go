package mgmtapi

import (
	"strings"
	"testing"
	"time"
)

func TestParseTimeOrAgo(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{"": {}, "15m": now.Add(-15 * time.Minute), "-1h": now.Add(-time.Hour),
		"2026-12-06T10:00:00Z": now.Add(-2 * time.Hour), "2026-12-06T10:00:00.5Z": now.Add(-2*time.Hour + 500*time.Millisecond)} {
		if got, err := ParseTimeOrAgo(in, now); err != nil || !got.Equal(want) {
			t.Errorf("%q: %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := ParseTimeOrAgo("yesterday", now); err == nil || !strings.Contains(err.Error(), "RFC 3339") {
		t.Errorf("yesterday: %v", err)
	}
}
