package rawgrpc

import (
	"bytes"
	"context"
	"io"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/net/http2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/status"
)

// Stream is one call: a unary call's single request and response, or a streaming
// call's messages both ways. Its receive side is fed by the connection's reader.
type Stream struct {
	c       *conn
	id      uint32
	sendWin int64       // guarded by c.wmu
	stalled atomic.Bool // a Send waits for this stream's window

	// The reader's own state.
	gotHeaders bool
	encoding   string  // the responses' grpc-encoding
	prefix     [5]byte // the length prefix of the message coming in
	npre       int     // how much of prefix has come
	body       []byte  // what has come of the message; its capacity is the message's length
	unread     int64   // bytes received since the last window update

	mu     sync.Mutex
	msgs   [][]byte
	err    error // the call's end: nil until it ends, io.EOF for an OK status
	notify chan struct{}
	unary  bool // notify at the end only
}

// Send sends one message, which Encode made, on a streaming call.
func (s *Stream) Send(m Message) error {
	s.c.lockWrite()
	err := s.c.send(s, m, false)
	s.c.unlockWrite()
	return err
}

// Recv returns the next message of a streaming call, io.EOF when the server ended
// the call with an OK status, or the call's error. ctx ends the wait (and not the call).
func (s *Stream) Recv(ctx context.Context) ([]byte, error) {
	for {
		s.mu.Lock()
		if len(s.msgs) > 0 {
			m := s.msgs[0]
			s.msgs[0] = nil
			s.msgs = s.msgs[1:]
			s.mu.Unlock()
			return m, nil
		}
		err := s.err
		s.mu.Unlock()
		if err != nil {
			return nil, err
		}
		select {
		case <-s.notify:
		case <-ctx.Done():
			return nil, contextError(ctx)
		}
	}
}

// Close ends the call from the client's side: the server sees it cancelled unless it
// had already ended.
func (s *Stream) Close() {
	s.c.reset(s)
	s.finish(errClosed)
}

// ended is the call's end, if it ended.
func (s *Stream) ended() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == io.EOF {
		return status.Error(codes.Internal, "rawgrpc: send on a call the server ended")
	}
	return s.err
}

// finish ends the call with err unless it had ended.
func (s *Stream) finish(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.mu.Unlock()
	s.wake()
	if s.stalled.Load() {
		s.c.signal()
	}
}

func (s *Stream) wake() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// received counts n bytes of DATA and returns the stream window update due, if any.
func (s *Stream) received(n int64) uint32 {
	s.unread += n
	if s.unread < recvThreshold {
		return 0
	}
	inc := uint32(s.unread)
	s.unread = 0
	return inc
}

// headers takes the response headers, or the trailers that end the call.
func (s *Stream) headers(f *http2.MetaHeadersFrame) {
	if !s.gotHeaders {
		s.gotHeaders = true
		if err := responseHeaders(f); err != nil {
			if s.c.forget(s.id) {
				s.finish(err)
				s.c.control(func() error { return s.c.fr.WriteRSTStream(s.id, http2.ErrCodeCancel) })
			}
			return
		}
		s.encoding, _ = field(f, "grpc-encoding")
		if !f.StreamEnded() {
			return
		}
		// A trailers-only response: the status is in these headers.
	}
	if !f.StreamEnded() {
		return // trailers must end the stream; HTTP/2 reports any other as a stream error
	}
	err := trailerStatus(f)
	if err == io.EOF && s.npre > 0 {
		err = status.Errorf(codes.Internal, "rawgrpc: call ended inside a message (%d bytes of it)", s.npre+len(s.body))
	}
	if s.c.forget(s.id) {
		s.finish(err)
	}
}

// responseHeaders checks what makes a response a gRPC one.
func responseHeaders(f *http2.MetaHeadersFrame) error {
	if st := f.PseudoValue("status"); st != "200" {
		// As grpc-go does, a non-gRPC answer maps its HTTP status to a code.
		return status.Errorf(httpCode(st), "rawgrpc: HTTP status %s", st)
	}
	if ct, _ := field(f, "content-type"); !strings.HasPrefix(ct, "application/grpc") {
		return status.Errorf(codes.Internal, "rawgrpc: content-type %q is not gRPC", ct)
	}
	return nil
}

// httpCode is grpc-go's (and the gRPC spec's) code for an HTTP status other than 200.
func httpCode(st string) codes.Code {
	switch st {
	case "400":
		return codes.Internal
	case "401":
		return codes.Unauthenticated
	case "403":
		return codes.PermissionDenied
	case "404":
		return codes.Unimplemented
	case "429", "502", "503", "504":
		return codes.Unavailable
	}
	return codes.Unknown
}

// trailerStatus is io.EOF for an OK grpc-status, else the error it and grpc-message
// (percent-encoded) say.
func trailerStatus(f *http2.MetaHeadersFrame) error {
	raw, ok := field(f, "grpc-status")
	if !ok {
		return status.Error(codes.Internal, "rawgrpc: call ended without a grpc-status")
	}
	code, err := strconv.ParseUint(raw, 10, 32)
	if err != nil {
		return status.Errorf(codes.Internal, "rawgrpc: grpc-status %q is not a code", raw)
	}
	if code == 0 {
		return io.EOF
	}
	msg, _ := field(f, "grpc-message")
	if m, err := url.PathUnescape(msg); err == nil {
		msg = m
	}
	return status.Error(codes.Code(code), msg)
}

// field is the first value of the header field name (lower case, as HTTP/2 sends it).
func field(f *http2.MetaHeadersFrame, name string) (string, bool) {
	for _, hf := range f.Fields {
		if hf.Name == name {
			return hf.Value, true
		}
	}
	return "", false
}

// data adds a DATA payload to the stream, delivering the messages it completes. Once
// a message's prefix has come and its length is checked against MaxRecvBytes, its
// buffer is made whole, as grpc-go does: appended to a growing buffer frame by frame
// and cloned at the end, a 16 MiB response was copied some 5 times over, most of a
// large call's CPU.
func (s *Stream) data(p []byte) error {
	for len(p) > 0 {
		if s.npre < len(s.prefix) {
			k := copy(s.prefix[s.npre:], p)
			s.npre += k
			p = p[k:]
			if s.npre < len(s.prefix) {
				return nil
			}
			n, err := messageLen(s.prefix, s.c.c.maxRecv)
			if err != nil {
				return err
			}
			s.body = make([]byte, 0, n)
		}
		k := min(cap(s.body)-len(s.body), len(p))
		s.body = append(s.body, p[:k]...)
		p = p[k:]
		if len(s.body) < cap(s.body) {
			return nil
		}
		msg, err := s.decode(s.prefix[0] == 1, s.body)
		s.npre, s.body = 0, nil
		if err != nil {
			return err
		}
		s.mu.Lock()
		s.msgs = append(s.msgs, msg)
		s.mu.Unlock()
		if !s.unary {
			s.wake()
		}
	}
	return nil
}

// messageLen is the length a message's prefix gives, if the flag is valid and the
// length allowed.
func messageLen(prefix [5]byte, maxRecv int) (int, error) {
	if prefix[0] > 1 {
		return 0, status.Errorf(codes.Internal, "rawgrpc: message flag %d is not 0 or 1", prefix[0])
	}
	n := uint64(prefix[1])<<24 | uint64(prefix[2])<<16 | uint64(prefix[3])<<8 | uint64(prefix[4])
	if n > uint64(maxRecv) {
		return 0, status.Errorf(codes.ResourceExhausted, "rawgrpc: message of %d bytes, more than the %d allowed", n, maxRecv)
	}
	return int(n), nil
}

// decode is a message's bytes, decompressed if they were compressed; an uncompressed
// one is body itself, which the stream gives up.
func (s *Stream) decode(compressed bool, body []byte) ([]byte, error) {
	if !compressed {
		return body, nil
	}
	comp := encoding.GetCompressor(s.encoding)
	if comp == nil {
		return nil, status.Errorf(codes.Internal, "rawgrpc: compressed message, grpc-encoding %q unknown", s.encoding)
	}
	r, err := comp.Decompress(bytes.NewReader(body))
	if err != nil {
		return nil, status.Errorf(codes.Internal, "rawgrpc: decompress (%s): %v", s.encoding, err)
	}
	var out bytes.Buffer
	if _, err := out.ReadFrom(io.LimitReader(r, int64(s.c.c.maxRecv)+1)); err != nil {
		return nil, status.Errorf(codes.Internal, "rawgrpc: decompress (%s): %v", s.encoding, err)
	}
	if out.Len() > s.c.c.maxRecv {
		return nil, status.Errorf(codes.ResourceExhausted, "rawgrpc: message larger than %d bytes once decompressed", s.c.c.maxRecv)
	}
	return out.Bytes(), nil
}
