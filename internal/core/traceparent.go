package core

import "strings"

// TraceParent returns s when it is a W3C Trace Context traceparent
// ("00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>", lowercase, ids not all zero;
// a later version may append fields after a dash), else "": a malformed header is
// dropped rather than passed on to whatever records the request.
func TraceParent(s string) string {
	if len(s) < 55 || (len(s) > 55 && (s[:2] == "00" || s[55] != '-')) {
		return ""
	}
	parts := strings.SplitN(s[:55], "-", 4)
	if len(parts) != 4 || parts[0] == "ff" {
		return ""
	}
	for i, n := range []int{2, 32, 16, 2} {
		if len(parts[i]) != n || !lowerHex(parts[i]) {
			return ""
		}
	}
	if strings.Trim(parts[1], "0") == "" || strings.Trim(parts[2], "0") == "" {
		return ""
	}
	return s
}

func lowerHex(s string) bool {
	for i := range len(s) {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
