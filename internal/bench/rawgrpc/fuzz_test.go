package rawgrpc

import (
	"bytes"
	"testing"
)

// FuzzStreamData feeds a stream's receive side bytes as the server might send them, cut
// into DATA payloads at any points: whatever the cuts, it must deliver the same messages
// and fail the same way, and never panic.
func FuzzStreamData(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 2, 'h', 'i', 0, 0, 0, 0, 0}, uint8(3))
	f.Add([]byte{1, 0, 0, 0, 1, 'x'}, uint8(1))
	f.Add([]byte{0, 0, 1, 0, 0}, uint8(2))
	f.Add([]byte{2, 0, 0, 0, 0}, uint8(0))
	f.Fuzz(func(t *testing.T, b []byte, cut uint8) {
		whole, wholeErr := feed(b, len(b)+1)
		pieces, piecesErr := feed(b, int(cut)+1)
		if (wholeErr == nil) != (piecesErr == nil) {
			t.Fatalf("whole: %v; in pieces of %d: %v", wholeErr, cut+1, piecesErr)
		}
		if len(whole) != len(pieces) {
			t.Fatalf("whole: %d messages; in pieces of %d: %d", len(whole), cut+1, len(pieces))
		}
		var again []byte
		for i := range whole {
			if !bytes.Equal(whole[i], pieces[i]) {
				t.Fatalf("message %d differs", i)
			}
			m := make(Message, 5+len(whole[i]))
			putPrefix(m, 0, len(whole[i]))
			copy(m[5:], whole[i])
			again = append(again, m...)
		}
		// Messages come out as they went in (a compressed one fails: the stream has no
		// grpc-encoding).
		if !bytes.HasPrefix(b, again) {
			t.Fatalf("messages do not re-encode to the input's start")
		}
	})
}

// feed gives b to a stream n bytes at a time and returns its messages and error.
func feed(b []byte, n int) ([][]byte, error) {
	s := &Stream{c: &conn{c: &Client{maxRecv: 1 << 16}}, notify: make(chan struct{}, 1)}
	for len(b) > 0 {
		k := min(n, len(b))
		if err := s.data(b[:k]); err != nil {
			return s.msgs, err
		}
		b = b[k:]
	}
	return s.msgs, nil
}
