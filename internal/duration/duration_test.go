package duration

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestDurationJSON(t *testing.T) {
	for in, want := range map[string]time.Duration{`"1m30s"`: 90 * time.Second, `90`: 90 * time.Second, `0.25`: 250 * time.Millisecond, `"0s"`: 0} {
		var d Duration
		if err := json.Unmarshal([]byte(in), &d); err != nil || d.D() != want {
			t.Errorf("%s: %v, %v; want %v", in, d, err, want)
		}
	}
	for in, msg := range map[string]string{`"-1s"`: "negative", `-3`: "negative", `"soon"`: "duration", `true`: "want"} {
		var d Duration
		if err := json.Unmarshal([]byte(in), &d); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%s: %v, want an error naming %q", in, err, msg)
		}
	}
	if b, _ := json.Marshal(Duration(90 * time.Second)); string(b) != `"1m30s"` {
		t.Errorf("marshal: %s", b)
	}
}
