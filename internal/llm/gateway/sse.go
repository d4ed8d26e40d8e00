package gateway

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// maxSSELine bounds one line of an upstream's event stream, so a server that never
// sends a newline cannot make the gateway buffer without end.
const maxSSELine = 4 << 20

// errDone is returned by sseReader.Next at "data: [DONE]".
var errDone = errors.New("sse: [DONE]")

// errCut is a stream that ended before "data: [DONE]".
var errCut = errors.New("upstream stream ended before [DONE]")

// sseReader reads the data of server-sent events as OpenAI-compatible servers frame
// them: "data: <json>" lines, events separated by a blank line, ":" comments (keep-
// alives) skipped, other fields (event:, id:, retry:) ignored.
type sseReader struct {
	sc   *bufio.Scanner
	data []byte
}

func newSSEReader(r io.Reader) *sseReader {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxSSELine)
	return &sseReader{sc: sc}
}

// Next returns the next event's data (several data lines joined by "\n"); errDone at
// [DONE]; errCut when the stream ends without it; or the read error.
func (r *sseReader) Next() ([]byte, error) {
	r.data = r.data[:0]
	for r.sc.Scan() {
		line := r.sc.Bytes()
		switch {
		case len(line) == 0:
			if len(r.data) == 0 {
				continue // a blank line with no data dispatches nothing
			}
			if bytes.Equal(r.data, []byte("[DONE]")) {
				return nil, errDone
			}
			return r.data, nil
		case line[0] == ':':
			continue
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		if string(field) != "data" {
			continue
		}
		value = bytes.TrimPrefix(value, []byte(" "))
		if len(r.data) > 0 {
			r.data = append(r.data, '\n')
		}
		r.data = append(r.data, value...)
		if len(r.data) > maxSSELine {
			return nil, fmt.Errorf("sse: event longer than %d bytes", maxSSELine)
		}
	}
	if err := r.sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("sse: line longer than %d bytes", maxSSELine)
		}
		return nil, err
	}
	if bytes.Equal(r.data, []byte("[DONE]")) {
		return nil, errDone // [DONE] without the final blank line
	}
	return nil, errCut
}
