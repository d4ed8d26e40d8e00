package python

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// resultsPayload builds an execute-results payload as the runner writes it: one
// response with a single FP32 output of shape [1], then one error.
func resultsPayload() []byte {
	var b []byte
	b = binary.LittleEndian.AppendUint32(b, 2)
	b = append(b, 0)
	b = binary.LittleEndian.AppendUint32(b, 1)
	b = binary.LittleEndian.AppendUint16(b, 1)
	b = append(b, 'y', 4)
	b = append(b, "FP32"...)
	b = append(b, 1)
	b = binary.LittleEndian.AppendUint64(b, 1)
	b = binary.LittleEndian.AppendUint64(b, 4)
	b = append(b, 0, 0, 128, 63)
	b = append(b, 1, 8)
	b = append(b, "INTERNAL"...)
	b = binary.LittleEndian.AppendUint32(b, 4)
	return append(b, "boom"...)
}

// FuzzDecodeResults feeds the parent side of the protocol arbitrary payloads, as a
// broken or hostile model.py could make its runner send: refused with an error, never
// a crash of the server.
func FuzzDecodeResults(f *testing.F) {
	f.Add(resultsPayload())
	f.Add([]byte{1, 0, 0, 0, 2})
	f.Add([]byte{255, 255, 255, 255})
	f.Fuzz(func(t *testing.T, payload []byte) {
		res, err := decodeResults(payload)
		if err != nil {
			return
		}
		for _, r := range res {
			for _, o := range r.outputs {
				if o == nil {
					t.Fatal("a decoded response holds a nil output")
				}
			}
		}
	})
}

// FuzzReadFrame checks the framing: a frame is returned only when it was whole and
// within the limit, whatever the pipe held.
func FuzzReadFrame(f *testing.F) {
	ok := binary.LittleEndian.AppendUint64(nil, 3)
	f.Add(append(ok, 'O', 1, 2))
	f.Add(ok)
	f.Add(binary.LittleEndian.AppendUint64(nil, 1<<62))
	f.Fuzz(func(t *testing.T, pipe []byte) {
		const limit = 1 << 16
		fr, err := readFrame(bytes.NewReader(pipe), limit)
		if err != nil {
			return
		}
		if n := 1 + len(fr.payload); n > limit || n+8 > len(pipe) {
			t.Fatalf("a frame of %d bytes from %d bytes of pipe (limit %d)", n, len(pipe), limit)
		}
	})
}
