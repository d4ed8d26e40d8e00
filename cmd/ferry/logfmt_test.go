package main

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
)

func TestRoundDuration(t *testing.T) {
	for _, tc := range []struct {
		in   time.Duration
		want string
	}{
		{0, "0s"},
		{999 * time.Nanosecond, "999ns"},
		{19 * time.Millisecond, "19ms"},
		{19456789 * time.Nanosecond, "19.5ms"},
		{1234567890 * time.Nanosecond, "1.23s"},
		{-1234567890 * time.Nanosecond, "-1.23s"},
		{90*time.Minute + 1234*time.Millisecond, "1h30m0s"},
		{math.MaxInt64, "2561111h6m40s"}, // no overflow at the top
	} {
		if got := roundDuration(tc.in).String(); got != tc.want {
			t.Errorf("roundDuration(%d) = %s, want %s", int64(tc.in), got, tc.want)
		}
	}
}

// TestLogDurationsReadable: both log formats write a duration in units, also inside a
// group, and leave other values alone.
func TestLogDurationsReadable(t *testing.T) {
	for _, format := range []string{"json", "text"} {
		var buf bytes.Buffer
		log, _, err := newLogger(format, "info", &buf)
		if err != nil {
			t.Fatal(err)
		}
		log.Info("model version loaded", "took", 19*time.Millisecond+123*time.Microsecond, "version", int64(19000000))
		log.WithGroup("load").Info("waited", "wait", 1500*time.Millisecond)
		out := buf.String()
		switch format {
		case "json":
			lines := strings.Split(strings.TrimSpace(out), "\n")
			var first struct {
				Took    any `json:"took"`
				Version any `json:"version"`
			}
			var second struct {
				Load struct {
					Wait any `json:"wait"`
				} `json:"load"`
			}
			if len(lines) != 2 || json.Unmarshal([]byte(lines[0]), &first) != nil || json.Unmarshal([]byte(lines[1]), &second) != nil {
				t.Fatalf("json log: %s", out)
			}
			if first.Took != "19.1ms" || first.Version != float64(19000000) || second.Load.Wait != "1.5s" {
				t.Errorf("json log: took %v version %v wait %v, want 19.1ms 19000000 1.5s:\n%s", first.Took, first.Version, second.Load.Wait, out)
			}
		case "text":
			for _, want := range []string{"took=19.1ms", "version=19000000", "load.wait=1.5s"} {
				if !strings.Contains(out, want) {
					t.Errorf("text log lacks %s:\n%s", want, out)
				}
			}
		}
	}
}
