package redisstream_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/ferryml/ferry/internal/stream/redisstream"
)

// FuzzToEntry: whatever fields an entry carries, reading it never panics; an entry with
// the body field gives exactly that body, one without it names the missing field.
func FuzzToEntry(f *testing.F) {
	f.Add("body", "body", `{"id":1}`, "k", true)
	f.Add("payload", "body", `x`, "", false)
	f.Add("", "", "", "", true)
	f.Fuzz(func(t *testing.T, want, field, value, key string, withKey bool) {
		values := map[string]any{field: value}
		if withKey {
			values["key"] = key
		}
		got := redisstream.ToEntry(redis.XMessage{ID: "1-0", Values: values}, want)
		body, err := got.Body()
		if v, ok := values[want]; ok {
			if err != nil || string(body) != v {
				t.Fatalf("entry %v read for %q: %q, %v", values, want, body, err)
			}
		} else if err == nil || !strings.Contains(err.Error(), strconv.Quote(want)) {
			t.Fatalf("entry %v without %q: %q, %v", values, want, body, err)
		}
	})
}
