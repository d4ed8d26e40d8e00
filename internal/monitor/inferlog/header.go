package inferlog

import (
	"bytes"
	"encoding/json"
	"time"
)

// lineHeader is the leading fields of a JSON line, the ones a query filters on. The
// encoder writes them first, so a query decodes a whole entry (its payloads) only
// when the header matches.
type lineHeader struct {
	requestID, clientID, model, version string
	timestamp                           time.Time
}

// parseHeader reads the leading `"key":"string"` pairs up to "version"; ok is false
// for a line in any other shape, which the caller then decodes in full.
func parseHeader(line []byte) (h lineHeader, ok bool) {
	b, ok := bytes.CutPrefix(line, []byte("{"))
	for ok {
		var key, val string
		if key, b, ok = jsonString(b); !ok || len(b) == 0 || b[0] != ':' {
			return h, false
		}
		if val, b, ok = jsonString(b[1:]); !ok || len(b) == 0 || b[0] != ',' {
			return h, false
		}
		b = b[1:]
		switch key {
		case "request_id":
			h.requestID = val
		case "client_request_id":
			h.clientID = val
		case "timestamp":
			t, err := time.Parse(time.RFC3339Nano, val)
			if err != nil {
				return h, false
			}
			h.timestamp = t
		case "model":
			h.model = val
		case "version":
			h.version = val
			return h, h.requestID != "" && !h.timestamp.IsZero()
		}
	}
	return h, false
}

// jsonString reads the JSON string b starts with and returns the rest after it.
func jsonString(b []byte) (s string, rest []byte, ok bool) {
	if len(b) == 0 || b[0] != '"' {
		return "", b, false
	}
	escaped := false
	for i := 1; i < len(b); i++ {
		switch c := b[i]; {
		case c == '\\':
			escaped = true
			i++ // skip the escaped byte
		case c == '"':
			if !escaped {
				return string(b[1:i]), b[i+1:], true
			}
			err := json.Unmarshal(b[:i+1], &s)
			return s, b[i+1:], err == nil
		}
	}
	return "", b, false
}

// matchHeader is matcher.match on a header.
func (m *matcher) matchHeader(h *lineHeader) bool {
	return m.match(&Entry{RequestID: h.requestID, ClientRequestID: h.clientID, Model: h.model, Version: h.version, Timestamp: h.timestamp})
}
