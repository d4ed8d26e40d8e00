package inferlog

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestHeaderAgreesWithTheFullDecode(t *testing.T) {
	r := record("m\"\\\u00e9\n", "v~1", "id \"quoted\"", time.Now())
	c := &capture{seq: 1}
	cp := capturer{maxBytes: 1 << 10}
	cp.fill(c, r)
	c.setRequestID(1)
	line := appendEntry(nil, c)
	h, ok := parseHeader(line)
	if !ok {
		t.Fatalf("parseHeader(%s) failed", line)
	}
	var e Entry
	if err := json.Unmarshal(line, &e); err != nil {
		t.Fatal(err)
	}
	if h.requestID != e.RequestID || h.clientID != e.ClientRequestID || h.model != e.Model || h.version != e.Version || !h.timestamp.Equal(e.Timestamp) {
		t.Fatalf("header %+v, entry %+v", h, e)
	}
}

// FuzzScanJSONL: any file content is read without a panic, and wherever the fast
// header parse succeeds on a valid entry, it agrees with the full decode.
func FuzzScanJSONL(f *testing.F) {
	c := &capture{seq: 1}
	cp := capturer{maxBytes: 64}
	cp.fill(c, record("m", "1", "x\\\"y", time.Unix(1, 0)))
	f.Add(appendEntry(nil, c))
	f.Add([]byte(`{"request_id":"a","timestamp":"2026-01-01T00:00:00Z","model":"m","version":"1",}` + "\n"))
	f.Add([]byte("{\"request_id\":\"\\u00e9\"\n\n{}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = scanJSONL(bytes.NewReader(data), "fuzz", newMatcher(Query{Model: "m"}), nil)
		for line := range bytes.Lines(data) {
			h, ok := parseHeader(line)
			var e Entry
			if !ok || json.Unmarshal(line, &e) != nil {
				continue
			}
			if h.requestID != e.RequestID || h.clientID != e.ClientRequestID || h.model != e.Model || h.version != e.Version {
				t.Fatalf("line %q: header %+v, entry %+v", line, h, e)
			}
		}
	})
}

// FuzzFileName: any name parses without a panic, and every model name survives the
// escaping into a file name.
func FuzzFileName(f *testing.F) {
	for _, s := range []string{"", "iris", "../etc", "a~b", ".x", "%2e", "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, model string) {
		_, _ = parseName(model)
		name := escapeModel(model) + "~" + time.Unix(5, 0).UTC().Format(nameTime) + ".jsonl"
		if strings.ContainsAny(name, "/\\") || strings.HasPrefix(name, ".") {
			t.Fatalf("model %q makes file name %q", model, name)
		}
		lf, ok := parseName(name)
		if !ok || lf.model != model || !lf.open {
			t.Fatalf("model %q: file %q parses as %+v, %v", model, name, lf, ok)
		}
	})
}
