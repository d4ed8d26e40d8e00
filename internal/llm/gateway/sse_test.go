package gateway

import (
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func readAll(r io.Reader) ([]string, error) {
	sr := newSSEReader(r)
	var out []string
	for {
		d, err := sr.Next()
		if err != nil {
			return out, err
		}
		out = append(out, string(d))
	}
}

func TestSSEReader(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []string
		err      error
	}{
		{"OpenAI framing", "data: {\"a\":1}\n\ndata: {\"b\":2}\n\ndata: [DONE]\n\n", []string{`{"a":1}`, `{"b":2}`}, errDone},
		{"comments and other fields skipped", ": keep-alive\n\nevent: x\nid: 3\ndata: one\n\n:ping\n\ndata: [DONE]\n\n", []string{"one"}, errDone},
		{"CRLF and no space", "data:one\r\n\r\ndata: [DONE]\r\n\r\n", []string{"one"}, errDone},
		{"multi-line data joined", "data: a\ndata: b\n\ndata: [DONE]\n\n", []string{"a\nb"}, errDone},
		{"[DONE] without a blank line", "data: a\n\ndata: [DONE]", []string{"a"}, errDone},
		{"cut mid-event", "data: a\n\ndata: {\"par", []string{"a"}, errCut},
		{"empty stream", "", nil, errCut},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readAll(strings.NewReader(tc.in))
			if !errors.Is(err, tc.err) {
				t.Fatalf("readAll(%q) err = %v, want %v", tc.in, err, tc.err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Fatalf("readAll(%q) (-want +got):\n%s", tc.in, diff)
			}
		})
	}
}

func TestSSELineTooLong(t *testing.T) {
	_, err := readAll(strings.NewReader("data: " + strings.Repeat("x", maxSSELine+1)))
	if err == nil || !strings.Contains(err.Error(), "line longer than") {
		t.Fatalf("err = %v, want a clear too-long error", err)
	}
}

func FuzzSSEReader(f *testing.F) {
	f.Add([]byte("data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\ndata: [DONE]\n\n"))
	f.Add([]byte(": c\r\ndata:x\ndata: y\n\n\n"))
	f.Add([]byte("data: [DONE]"))
	f.Fuzz(func(t *testing.T, b []byte) {
		sr := newSSEReader(strings.NewReader(string(b)))
		for i := 0; ; i++ {
			d, err := sr.Next()
			if err != nil {
				return
			}
			if i > len(b) {
				t.Fatalf("%d events from %d bytes: the reader does not progress", i, len(b))
			}
			var c wireChunk // what the gateway does with each event must not panic either
			if jsonErr := json.Unmarshal(d, &c); jsonErr == nil {
				c.deltas(i%2 == 0)
			}
		}
	})
}
