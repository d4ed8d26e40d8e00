package llmbench

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
)

// maxEventBytes bounds one server-sent event, so a server that never ends a line
// cannot make the client hold its whole stream.
const maxEventBytes = 4 << 20

// errEventTooLong reports an event past maxEventBytes.
var errEventTooLong = fmt.Errorf("server-sent event longer than %d bytes", maxEventBytes)

// sseReader reads the data of server-sent events (the WHATWG event-stream format) as
// OpenAI-compatible servers stream them: "data: {json}" lines, each event ended by a
// blank line. Comment lines (starting with ":", keep-alives) and the other fields
// (event, id, retry) are skipped; several data lines of one event are joined with "\n".
type sseReader struct {
	r *bufio.Reader
}

func newSSEReader(r io.Reader) *sseReader { return &sseReader{r: bufio.NewReaderSize(r, 64<<10)} }

// next returns the data of the next event that has any, or io.EOF at the end of the
// stream. An event the stream ends without a blank line after still counts.
func (s *sseReader) next() ([]byte, error) {
	var data []byte
	has := false
	for {
		line, err := s.line()
		if err == io.EOF && len(line) == 0 {
			if has {
				return data, nil
			}
			return nil, io.EOF
		}
		if err != nil && err != io.EOF {
			return nil, err
		}
		if len(line) == 0 { // a blank line dispatches the event
			if has {
				return data, nil
			}
			continue
		}
		if line[0] == ':' {
			continue
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		if string(field) != "data" {
			continue
		}
		value = bytes.TrimPrefix(value, []byte(" "))
		if has {
			data = append(data, '\n')
		}
		if len(data)+len(value) > maxEventBytes {
			return nil, errEventTooLong
		}
		data, has = append(data, value...), true
		if err == io.EOF {
			return data, nil
		}
	}
}

// line returns the next line without its terminator (\n, \r\n or \r as the format
// allows), and io.EOF with the last unterminated line, if any.
func (s *sseReader) line() ([]byte, error) {
	var line []byte
	for {
		b, err := s.r.ReadByte()
		if err != nil {
			return line, err
		}
		switch b {
		case '\n':
			return line, nil
		case '\r':
			if nb, err := s.r.Peek(1); err == nil && nb[0] == '\n' {
				s.r.ReadByte()
			}
			return line, nil
		}
		if len(line) >= maxEventBytes {
			return nil, errEventTooLong
		}
		line = append(line, b)
	}
}

// isDone reports the stream's "[DONE]" sentinel.
func isDone(data []byte) bool { return bytes.Equal(bytes.TrimSpace(data), []byte("[DONE]")) }
