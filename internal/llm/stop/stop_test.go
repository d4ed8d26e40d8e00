package stop

import (
	"strings"
	"testing"
)

// run pushes pieces in order and returns everything emitted (plus Flush when no stop
// matched) and whether a stop matched.
func run(stops, pieces []string) (string, bool) {
	m := NewMatcher(stops)
	var b strings.Builder
	for _, p := range pieces {
		out, stopped := m.Push(p)
		b.WriteString(out)
		if stopped {
			return b.String(), true
		}
	}
	b.WriteString(m.Flush())
	return b.String(), false
}

func TestMatcher(t *testing.T) {
	for _, tc := range []struct {
		name        string
		stops       []string
		pieces      []string
		want        string
		wantStopped bool
	}{
		{"no stops passes text on", nil, []string{"a", "b"}, "ab", false},
		{"empty stop strings are ignored", []string{""}, []string{"ab"}, "ab", false},
		{"stop inside one piece", []string{"END"}, []string{"helloENDworld"}, "hello", true},
		{"stop at the very start", []string{"x"}, []string{"xyz"}, "", true},
		{"stop split over many pushes", []string{"<|im_end|>"}, []string{"Hi", "<", "|", "im", "_", "end", "|>", "more"}, "Hi", true},
		{"a held prefix that does not complete is released", []string{"<|im_end|>"}, []string{"a<|im", " no"}, "a<|im no", false},
		{"prefix held at the end is flushed", []string{"STOP"}, []string{"abcST"}, "abcST", false},
		{"overlapping prefixes: aab after a", []string{"aab"}, []string{"a", "a", "a", "b", "c"}, "a", true},
		{"two stops, the one ending first wins", []string{"abcd", "bc"}, []string{"abcd"}, "a", true},
		{"same end, the longer stop wins", []string{"bc", "abc"}, []string{"xab", "c"}, "x", true},
		{"stop after multibyte text", []string{"。"}, []string{"你好", "。再见"}, "你好", true},
		{"newline stop", []string{"\n\nUser:"}, []string{"answer\n", "\nUs", "er: hi"}, "answer", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, stopped := run(tc.stops, tc.pieces)
			if got != tc.want || stopped != tc.wantStopped {
				t.Errorf("stops %q, pieces %q: got %q stopped=%v, want %q stopped=%v", tc.stops, tc.pieces, got, stopped, tc.want, tc.wantStopped)
			}
		})
	}
}

func TestPushAfterStop(t *testing.T) {
	m := NewMatcher([]string{"x"})
	if out, stopped := m.Push("ax"); out != "a" || !stopped {
		t.Fatalf("Push(ax) = %q, %v", out, stopped)
	}
	if out, stopped := m.Push("more"); out != "" || !stopped || !m.Stopped() {
		t.Fatalf("Push after stop = %q, %v, want \"\", true", out, stopped)
	}
	if got := m.Flush(); got != "" {
		t.Fatalf("Flush after stop = %q", got)
	}
}

func TestHoldsOnlyPossiblePrefixes(t *testing.T) {
	m := NewMatcher([]string{"STOP"})
	if out, _ := m.Push("abcS"); out != "abc" {
		t.Errorf("Push(abcS) = %q, want abc (S held)", out)
	}
	if out, _ := m.Push("x"); out != "Sx" {
		t.Errorf("Push(x) = %q, want Sx", out)
	}
}

// reference is the text up to the stop string that ends first in the whole stream
// (ties: the one that starts first), found by brute force.
func reference(stops []string, stream string) (string, bool) {
	for end := 0; end <= len(stream); end++ {
		best := -1
		for _, s := range stops {
			if s != "" && strings.HasSuffix(stream[:end], s) && (best < 0 || end-len(s) < best) {
				best = end - len(s)
			}
		}
		if best >= 0 {
			return stream[:best], true
		}
	}
	return stream, false
}

// FuzzMatcher checks that what is emitted plus what is held is what was pushed, up to
// the first stop string, however the text is split.
func FuzzMatcher(f *testing.F) {
	f.Add("ab", "b", "xaab", uint8(1))
	f.Add("<|im_end|>", "</s>", "hello <|im_e</s", uint8(3))
	f.Add("aa", "aaa", "aaaaaaa", uint8(2))
	f.Fuzz(func(t *testing.T, s1, s2, stream string, step uint8) {
		stops := []string{s1, s2}
		n := int(step%7) + 1
		var pieces []string
		for i := 0; i < len(stream); i += n {
			pieces = append(pieces, stream[i:min(i+n, len(stream))])
		}
		got, stopped := run(stops, pieces)
		want, wantStopped := reference(stops, stream)
		if got != want || stopped != wantStopped {
			t.Fatalf("stops %q, pieces %q: got %q %v, want %q %v", stops, pieces, got, stopped, want, wantStopped)
		}
	})
}
