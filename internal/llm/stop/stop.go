package stop

import "strings"

// Matcher watches one choice's text for stop strings. It is not safe for concurrent
// use: a sequence owns one.
type Matcher struct {
	stops   []string
	held    string // the end of what was pushed that may begin a stop string
	stopped bool
}

// NewMatcher returns a Matcher for stops. Empty strings are ignored (they would
// match before any text); with no stop strings every Push passes text straight on.
func NewMatcher(stops []string) *Matcher {
	m := &Matcher{}
	for _, s := range stops {
		if s != "" {
			m.stops = append(m.stops, s)
		}
	}
	return m
}

// Push adds the next piece of text. out is what may be emitted now; stopped reports
// that a stop string completed, in which case out ends where that stop string
// begins and every later Push returns ("", true). When two stop strings occur, the
// one that ends first wins (ties: the longer one), which is the one a token-by-token
// check would see first, so the result does not depend on how text is split.
func (m *Matcher) Push(text string) (out string, stopped bool) {
	if m.stopped {
		return "", true
	}
	if len(m.stops) == 0 {
		return text, false
	}
	buf := m.held + text
	if start := m.firstStop(buf); start >= 0 {
		m.stopped, m.held = true, ""
		return buf[:start], true
	}
	keep := m.holdLen(buf)
	m.held = buf[len(buf)-keep:]
	return buf[:len(buf)-keep], false
}

// Flush returns what is held back, for the end of the stream (no stop string came).
func (m *Matcher) Flush() string {
	out := m.held
	m.held = ""
	return out
}

// Stopped reports whether a stop string has matched.
func (m *Matcher) Stopped() bool { return m.stopped }

// firstStop is where the stop string that ends first in buf begins, or -1.
func (m *Matcher) firstStop(buf string) int {
	start, end := -1, 0
	for _, s := range m.stops {
		i := strings.Index(buf, s)
		if i < 0 {
			continue
		}
		if e := i + len(s); start < 0 || e < end || (e == end && i < start) {
			start, end = i, e
		}
	}
	return start
}

// holdLen is the length of the longest suffix of buf that is a proper prefix of a
// stop string: text that a later piece could turn into a match. buf holds no whole
// stop string, and a stop string begins with a UTF-8 lead byte, so the suffix begins
// on a character boundary.
func (m *Matcher) holdLen(buf string) int {
	best := 0
	for _, s := range m.stops {
		for n := min(len(s)-1, len(buf)); n > best; n-- {
			if strings.HasSuffix(buf, s[:n]) {
				best = n
				break
			}
		}
	}
	return best
}
