package duration

import (
	"encoding/json"
	"fmt"
	"time"
)

// Duration is a time.Duration that reads "10s" or a number of seconds and writes "10s".
// A negative duration is refused: no setting means one.
type Duration time.Duration

// D is d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String is d as time.Duration writes it.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes d as "1m30s".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads "1m30s" or 90 (seconds).
func (d *Duration) UnmarshalJSON(b []byte) error {
	var v time.Duration
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var secs float64
		if err := json.Unmarshal(b, &secs); err != nil {
			return fmt.Errorf("duration: want \"10s\" or seconds, got %.40s", b)
		}
		v = time.Duration(secs * float64(time.Second))
	} else if v, err = time.ParseDuration(s); err != nil {
		return fmt.Errorf("duration: %w", err)
	}
	if v < 0 {
		return fmt.Errorf("duration %s is negative", b)
	}
	*d = Duration(v)
	return nil
}
