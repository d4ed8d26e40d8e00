package llmbench

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func readAll(t testing.TB, stream string) ([]string, error) {
	t.Helper()
	r := newSSEReader(strings.NewReader(stream))
	var got []string
	for {
		d, err := r.next()
		if err == io.EOF {
			return got, nil
		}
		if err != nil {
			return got, err
		}
		got = append(got, string(d))
	}
}

func TestSSEReader(t *testing.T) {
	for _, tc := range []struct {
		name, stream string
		want         []string
	}{
		{"OpenAI framing", "data: {\"a\":1}\n\ndata: [DONE]\n\n", []string{`{"a":1}`, "[DONE]"}},
		{"comments and other fields are skipped", ": keep-alive\n\nevent: x\nid: 7\nretry: 10\ndata: one\n\n: ping\n\n", []string{"one"}},
		{"no space after the colon", "data:x\n\n", []string{"x"}},
		{"several data lines join with newlines", "data: a\ndata: b\n\n", []string{"a\nb"}},
		{"CRLF and CR line ends", "data: a\r\n\r\ndata: b\r\rdata: c\n\n", []string{"a", "b", "c"}},
		{"an unterminated last event still counts", "data: a\n\ndata: tail", []string{"a", "tail"}},
		{"an event without data is nothing", "event: ping\n\n\n\n", nil},
		{"empty data is an event", "data:\n\n", []string{""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readAll(t, tc.stream)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("events of %q (-want +got):\n%s", tc.stream, diff)
			}
		})
	}
}

func TestSSEReaderBoundsEvents(t *testing.T) {
	long := "data: " + strings.Repeat("x", maxEventBytes+1) + "\n\n"
	if _, err := readAll(t, long); !errors.Is(err, errEventTooLong) {
		t.Errorf("a %d-byte line: err = %v, want %v", len(long), err, errEventTooLong)
	}
	many := strings.Repeat("data: "+strings.Repeat("y", 1<<20)+"\n", 5) + "\n"
	if _, err := readAll(t, many); !errors.Is(err, errEventTooLong) {
		t.Errorf("an event of five 1 MiB lines: err = %v, want %v", err, errEventTooLong)
	}
}

// FuzzSSEReader: any input ends in events or an error, never a panic or a hang; and
// payloads framed as a server frames them, with comments between, come back as sent.
func FuzzSSEReader(f *testing.F) {
	f.Add([]byte("data: {\"a\":1}\n\n: c\n\ndata: [DONE]\n\n"), "x\x00y")
	f.Add([]byte("data:\r\ndata: b\r\r\n"), "")
	f.Fuzz(func(t *testing.T, stream []byte, payload string) {
		r := newSSEReader(bytes.NewReader(stream))
		for range len(stream) + 1 { // each event consumes at least one byte
			if _, err := r.next(); err != nil {
				break
			}
		}
		if strings.ContainsAny(payload, "\r\n") {
			return
		}
		framed := ": hello\n\ndata: " + payload + "\n\n: bye\ndata: " + payload + "\r\n\r\n"
		got, err := readAll(t, framed)
		if err != nil || len(got) != 2 || got[0] != payload || got[1] != payload {
			t.Fatalf("framed %q: got %q, %v", payload, got, err)
		}
	})
}
