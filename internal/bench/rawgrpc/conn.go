package rawgrpc

import (
	"bufio"
	"context"
	"errors"
	"io"
	"math"
	"net"
	"sync"
	"sync/atomic"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Windows this client advertises: large, so that the server never waits for a window
// update on a load generator's responses, with an update sent per half consumed.
const (
	recvWindow    = 1 << 30
	recvThreshold = recvWindow / 2
	// defaultWindow is HTTP/2's initial window, the server's until its SETTINGS arrive.
	defaultWindow = 65535
	// lastStreamID is the largest client stream id; a connection that reaches it is
	// replaced.
	lastStreamID = math.MaxInt32
)

// errClosed ends calls on a connection that was closed by its client.
var errClosed = status.Error(codes.Canceled, "rawgrpc: connection closed")

// conn is one HTTP/2 connection. Writers hold wmu while they frame, and the last
// writer in line flushes, so concurrent calls share a write syscall. The reader goroutine
// owns the receive side of every stream and never waits for a writer: one may hold wmu
// through a write that blocks until the server reads, and the server may be waiting to
// write to us. So the flow-control state has a lock of its own, and the reader's frames
// (acknowledgements, window updates, resets) go out at once only when wmu is free, else
// through a control goroutine.
type conn struct {
	nc net.Conn
	c  *Client

	wmu     sync.Mutex
	waiting atomic.Int32 // writers queued for wmu
	bw      *bufio.Writer
	fr      *http2.Framer
	nextID  uint32
	werr    error // a write failed: the writer that releases wmu ends the connection

	fmu     sync.Mutex
	fcond   *sync.Cond // on fmu: a window grew, a stream slot freed, a stalled call or the connection ended
	connWin int64      // the connection's send window
	initWin int64      // the server's initial stream window
	// maxFrame is the largest DATA payload the server takes.
	maxFrame int64
	// maxStreams is the server's limit on open streams; active counts ours.
	maxStreams atomic.Int64
	active     atomic.Int64

	mu      sync.Mutex // guards streams and err
	streams map[uint32]*Stream
	err     error       // why the connection takes no new stream
	dead    atomic.Bool // err is set: the client dials another connection

	ctlMu   sync.Mutex
	ctl     []func() error // the reader's frames, for the control goroutine to write
	ctlKick chan struct{}

	recvd int64 // connection bytes received since the last window update (reader only)
	done  chan struct{}
}

// dial opens a connection and starts its reader and control goroutines.
func dial(ctx context.Context, cl *Client) (*conn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", cl.addr)
	if err != nil {
		return nil, err
	}
	c := &conn{nc: nc, c: cl, bw: bufio.NewWriterSize(nc, 64<<10), nextID: 1,
		connWin: defaultWindow, initWin: defaultWindow, maxFrame: 16384,
		streams: map[uint32]*Stream{}, ctlKick: make(chan struct{}, 1), done: make(chan struct{})}
	c.maxStreams.Store(math.MaxInt64)
	c.fcond = sync.NewCond(&c.fmu)
	c.fr = http2.NewFramer(c.bw, bufio.NewReaderSize(nc, 64<<10))
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	c.fr.MaxHeaderListSize = 1 << 20
	c.fr.SetReuseFrames()

	_, err = c.bw.WriteString(http2.ClientPreface)
	if err == nil {
		err = c.fr.WriteSettings(http2.Setting{ID: http2.SettingEnablePush, Val: 0},
			http2.Setting{ID: http2.SettingInitialWindowSize, Val: recvWindow})
	}
	if err == nil {
		err = c.fr.WriteWindowUpdate(0, recvWindow-defaultWindow)
	}
	if err == nil {
		err = c.bw.Flush()
	}
	if err != nil {
		nc.Close()
		return nil, err
	}
	go c.readLoop()
	go c.controlLoop()
	return c, nil
}

// lockWrite takes the write side, noting that this writer is in line until it has it.
func (c *conn) lockWrite() {
	c.waiting.Add(1)
	c.wmu.Lock()
	c.waiting.Add(-1)
}

// unlockWrite flushes unless another writer is in line (it will flush both), then
// releases the write side. A failed write or flush ends the connection.
func (c *conn) unlockWrite() {
	err := c.werr
	if err == nil && c.waiting.Load() == 0 {
		err = c.bw.Flush()
		c.werr = err
	}
	c.wmu.Unlock()
	if err != nil {
		c.fail(status.Errorf(codes.Unavailable, "rawgrpc: write: %v", err))
	}
}

// flush writes out what is buffered, with wmu held, before a writer waits: whoever
// buffered it may be in line behind this writer.
func (c *conn) flush() error {
	if c.werr == nil {
		c.werr = c.bw.Flush()
	}
	return c.werr
}

// fail ends the connection for err: every open stream ends with it, and waiting
// writers wake. It must not be called with wmu or fmu held.
func (c *conn) fail(err error) {
	c.mu.Lock()
	if c.streams == nil {
		c.mu.Unlock()
		return
	}
	if c.err == nil {
		c.err = err
		c.dead.Store(true)
	}
	streams := c.streams
	c.streams = nil
	c.mu.Unlock()
	c.nc.Close()
	for _, s := range streams {
		s.finish(err)
	}
	c.signal()
}

// signal wakes the writers waiting on fcond.
func (c *conn) signal() {
	c.fmu.Lock()
	c.fcond.Broadcast()
	c.fmu.Unlock()
}

// broken reports why the connection takes no new stream, if it does not.
func (c *conn) broken() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// retire stops new streams for err (a GOAWAY, stream ids used up) and lets those
// open finish; the connection closes when the last one does.
func (c *conn) retire(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
		c.dead.Store(true)
	}
	c.mu.Unlock()
	if c.active.Load() == 0 {
		c.nc.Close()
	}
	c.signal()
}

// open starts a stream: its HEADERS are framed (not yet flushed) with the write side
// held, which the caller releases with unlockWrite, error or not.
func (c *conn) open(method string, unary bool) (*Stream, error) {
	c.lockWrite()
	c.fmu.Lock()
	for c.active.Load() >= c.maxStreams.Load() && c.broken() == nil {
		c.fmu.Unlock()
		if err := c.flush(); err != nil { // the calls that would free a slot may be buffered
			return nil, err
		}
		c.fmu.Lock()
		if c.active.Load() >= c.maxStreams.Load() && c.broken() == nil {
			c.fcond.Wait()
		}
	}
	s := &Stream{c: c, id: c.nextID, sendWin: c.initWin, notify: make(chan struct{}, 1), unary: unary}
	c.mu.Lock()
	err := c.err
	if err == nil {
		c.streams[s.id] = s
		c.active.Add(1)
	}
	c.mu.Unlock()
	c.fmu.Unlock()
	if err != nil {
		return nil, err
	}
	if c.nextID += 2; c.nextID > lastStreamID {
		c.retire(status.Error(codes.Unavailable, "rawgrpc: stream ids used up"))
	}
	if err := c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: s.id, BlockFragment: c.c.headers(method),
		EndHeaders: true}); err != nil {
		c.werr = err
		return nil, err
	}
	return s, nil
}

// send frames msg as DATA on s with the write side held, splitting it to the windows
// and the frame size, and waiting for windows when they are spent.
func (c *conn) send(s *Stream, msg []byte, end bool) error {
	for {
		if err := s.ended(); err != nil { // a failed connection ends every call
			return err
		}
		n, err := c.reserve(s, int64(len(msg)))
		if err != nil {
			return err
		}
		if n == 0 && len(msg) > 0 {
			continue
		}
		last := int(n) == len(msg)
		if err := c.fr.WriteData(s.id, end && last, msg[:n]); err != nil {
			c.werr = err
			return err
		}
		msg = msg[n:]
		if last {
			return nil
		}
	}
}

// reserve takes up to want bytes of s's and the connection's send windows, at most a
// frame's worth. With none to take it flushes, then waits for a window update, the
// call's end or the connection's, and returns 0.
func (c *conn) reserve(s *Stream, want int64) (int64, error) {
	c.fmu.Lock()
	if n := min(want, c.connWin, s.sendWin, c.maxFrame); n > 0 || want == 0 {
		c.connWin -= n
		s.sendWin -= n
		c.fmu.Unlock()
		return max(n, 0), nil
	}
	c.fmu.Unlock()
	if err := c.flush(); err != nil {
		return 0, err
	}
	// finish wakes a stalled stream: the flag goes up before the last look.
	s.stalled.Store(true)
	defer s.stalled.Store(false)
	c.fmu.Lock()
	defer c.fmu.Unlock()
	// A failed connection finishes every call, s too.
	if min(c.connWin, s.sendWin) <= 0 && s.ended() == nil {
		c.fcond.Wait()
	}
	return 0, nil
}

// reset tells the server the client gave up on s.
func (c *conn) reset(s *Stream) {
	if c.forget(s.id) {
		c.control(func() error { return c.fr.WriteRSTStream(s.id, http2.ErrCodeCancel) })
	}
}

// forget removes stream id, reporting whether it was open, and frees its slot.
func (c *conn) forget(id uint32) bool {
	c.mu.Lock()
	_, ok := c.streams[id]
	delete(c.streams, id)
	c.mu.Unlock()
	if !ok {
		return false
	}
	left := c.active.Add(-1)
	if left == 0 && c.dead.Load() {
		c.nc.Close() // retired and now idle
	}
	// Writers wait for a slot only at the server's limit: wake them on the way below it.
	if left == c.maxStreams.Load()-1 {
		c.signal()
	}
	return true
}

// stream is the open stream id, or nil.
func (c *conn) stream(id uint32) *Stream {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.streams[id]
}

// readLoop reads frames until the connection fails.
func (c *conn) readLoop() {
	defer close(c.done)
	for {
		f, err := c.fr.ReadFrame()
		if err == nil {
			err = c.handle(f)
		}
		if err != nil {
			var se http2.StreamError
			if errors.As(err, &se) {
				// A malformed frame of one stream ends that stream only.
				if s := c.stream(se.StreamID); s != nil && c.forget(se.StreamID) {
					s.finish(status.Errorf(codes.Internal, "rawgrpc: %v", se))
					c.control(func() error { return c.fr.WriteRSTStream(se.StreamID, se.Code) })
				}
				continue
			}
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			c.fail(status.Errorf(codes.Unavailable, "rawgrpc: connection: %v", err))
			return
		}
	}
}

// control writes a frame of the reader's: at once when no writer holds the write side
// (a ping's acknowledgement then costs no goroutine switch), else through the control
// goroutine, so that the reader never waits.
func (c *conn) control(write func() error) {
	c.ctlMu.Lock()
	c.ctl = append(c.ctl, write)
	c.ctlMu.Unlock()
	if c.wmu.TryLock() {
		c.writeControl()
		c.unlockWrite()
		return
	}
	select {
	case c.ctlKick <- struct{}{}:
	default:
	}
}

// writeControl writes the reader's pending frames, with the write side held.
func (c *conn) writeControl() {
	c.ctlMu.Lock()
	frames := c.ctl
	c.ctl = nil
	c.ctlMu.Unlock()
	for _, write := range frames {
		if c.werr == nil {
			c.werr = write()
		}
	}
}

// controlLoop writes the reader's frames until the connection ends.
func (c *conn) controlLoop() {
	for {
		select {
		case <-c.ctlKick:
		case <-c.done:
			return
		}
		c.lockWrite()
		c.writeControl()
		c.unlockWrite()
	}
}

// handle acts on one frame.
func (c *conn) handle(f http2.Frame) error {
	switch f := f.(type) {
	case *http2.DataFrame:
		return c.data(f)
	case *http2.MetaHeadersFrame:
		if s := c.stream(f.StreamID); s != nil {
			s.headers(f)
		}
	case *http2.RSTStreamFrame:
		if s := c.stream(f.StreamID); s != nil && c.forget(f.StreamID) {
			s.finish(resetError(f.ErrCode))
		}
	case *http2.SettingsFrame:
		if f.IsAck() {
			return nil
		}
		c.settings(f)
	case *http2.PingFrame:
		if !f.IsAck() {
			data := f.Data
			c.control(func() error { return c.fr.WritePing(true, data) })
		}
	case *http2.WindowUpdateFrame:
		c.fmu.Lock()
		if f.StreamID == 0 {
			c.connWin += int64(f.Increment)
		} else if s := c.stream(f.StreamID); s != nil {
			s.sendWin += int64(f.Increment)
		}
		c.fcond.Broadcast()
		c.fmu.Unlock()
	case *http2.GoAwayFrame:
		c.goAway(f)
	case *http2.PushPromiseFrame:
		return errors.New("push promise, though push is disabled")
	}
	return nil
}

// settings applies the server's settings and acknowledges them.
func (c *conn) settings(f *http2.SettingsFrame) {
	c.fmu.Lock()
	_ = f.ForeachSetting(func(s http2.Setting) error {
		switch s.ID {
		case http2.SettingInitialWindowSize:
			// A change applies to every open stream's window (RFC 9113, 6.9.2).
			delta := int64(s.Val) - c.initWin
			c.initWin = int64(s.Val)
			c.mu.Lock()
			for _, st := range c.streams {
				st.sendWin += delta
			}
			c.mu.Unlock()
		case http2.SettingMaxFrameSize:
			c.maxFrame = int64(s.Val)
		case http2.SettingMaxConcurrentStreams:
			c.maxStreams.Store(int64(s.Val))
		}
		return nil
	})
	c.fcond.Broadcast()
	c.fmu.Unlock()
	c.control(c.fr.WriteSettingsAck)
}

// goAway ends the streams the server will not process and retires the connection.
func (c *conn) goAway(f *http2.GoAwayFrame) {
	err := status.Errorf(codes.Unavailable, "rawgrpc: server sent GOAWAY (%v)", f.ErrCode)
	c.mu.Lock()
	var gone []*Stream
	for id, s := range c.streams {
		if id > f.LastStreamID {
			gone = append(gone, s)
		}
	}
	c.mu.Unlock()
	for _, s := range gone {
		if c.forget(s.id) {
			s.finish(err)
		}
	}
	c.retire(err)
}

// data passes a DATA frame to its stream and returns the window it used.
func (c *conn) data(f *http2.DataFrame) error {
	if n := int64(f.Length); n > 0 {
		c.recvd += n
		if c.recvd >= recvThreshold {
			inc := uint32(c.recvd)
			c.recvd = 0
			c.control(func() error { return c.fr.WriteWindowUpdate(0, inc) })
		}
	}
	s := c.stream(f.StreamID)
	if s == nil {
		return nil // a stream the client reset
	}
	if inc := s.received(int64(f.Length)); inc > 0 {
		c.control(func() error { return c.fr.WriteWindowUpdate(s.id, inc) })
	}
	if err := s.data(f.Data()); err != nil {
		if c.forget(s.id) {
			s.finish(err)
			c.control(func() error { return c.fr.WriteRSTStream(s.id, http2.ErrCodeCancel) })
		}
		return nil
	}
	if f.StreamEnded() {
		// gRPC ends a call with trailers; DATA that ends it leaves no status.
		if c.forget(s.id) {
			s.finish(status.Error(codes.Internal, "rawgrpc: stream ended without trailers"))
		}
	}
	return nil
}

// resetError is the status of a stream the server reset, as grpc-go maps the codes.
func resetError(code http2.ErrCode) error {
	c := codes.Internal
	switch code {
	case http2.ErrCodeRefusedStream:
		c = codes.Unavailable
	case http2.ErrCodeCancel:
		c = codes.Canceled
	case http2.ErrCodeEnhanceYourCalm:
		c = codes.ResourceExhausted
	case http2.ErrCodeInadequateSecurity:
		c = codes.PermissionDenied
	}
	return status.Errorf(c, "rawgrpc: stream reset by the server: %v", code)
}
