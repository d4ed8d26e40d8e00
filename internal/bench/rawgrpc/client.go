package rawgrpc

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/status"
)

// Options configure a Client.
type Options struct {
	// Metadata goes with every call. Names are sent in lower case; the values of names
	// ending in "-bin" are base64-encoded, as gRPC carries binary metadata.
	Metadata map[string][]string
	// Compression is the grpc-encoding of every request: "" sends them uncompressed, else
	// the name of a compressor registered with grpc-go's encoding package.
	Compression string
	// Timeout goes with every call as its grpc-timeout (the server's deadline); 0 sends
	// none. The caller's context bounds the wait on this side.
	Timeout time.Duration
	// MaxRecvBytes bounds a received message, decompressed; 0 is grpc-go's 4 MiB.
	MaxRecvBytes int
	// Conns is how many connections calls take turns on; 0 is one.
	Conns int
}

// Client calls the methods of one server. Its connections are dialed on first use and
// again after they fail or the server sends GOAWAY.
type Client struct {
	addr    string
	o       Options
	maxRecv int
	comp    encoding.Compressor
	meta    []hpack.HeaderField // metadata and options, in every call's headers
	blocks  sync.Map            // method -> its calls' header block
	slots   []atomic.Pointer[conn]
	turn    atomic.Uint64
	dialMu  sync.Mutex
	all     []*conn // guarded by dialMu: those in slots and those replaced but not done
	closed  atomic.Bool
}

// Message is a request as it goes on the wire: the gRPC length prefix and the
// message, compressed if the client compresses. Encode makes one; it may be sent any
// number of times.
type Message []byte

// NewClient returns a client of the server at addr (host:port, plain HTTP/2).
func NewClient(addr string, o Options) (*Client, error) {
	if addr == "" {
		return nil, errors.New("rawgrpc: no address")
	}
	cl := &Client{addr: addr, o: o, maxRecv: o.MaxRecvBytes, slots: make([]atomic.Pointer[conn], max(o.Conns, 1))}
	if cl.maxRecv <= 0 {
		cl.maxRecv = 4 << 20
	}
	if o.Compression != "" {
		if cl.comp = encoding.GetCompressor(o.Compression); cl.comp == nil {
			return nil, fmt.Errorf("rawgrpc: no compressor %q is registered", o.Compression)
		}
		cl.meta = append(cl.meta, hpack.HeaderField{Name: "grpc-encoding", Value: o.Compression},
			hpack.HeaderField{Name: "grpc-accept-encoding", Value: o.Compression})
	}
	if o.Timeout > 0 {
		cl.meta = append(cl.meta, hpack.HeaderField{Name: "grpc-timeout", Value: timeoutValue(o.Timeout)})
	}
	for name, values := range o.Metadata {
		name = strings.ToLower(name)
		if name == "" || name[0] == ':' || name == "content-type" || name == "te" || strings.HasPrefix(name, "grpc-") {
			return nil, fmt.Errorf("rawgrpc: metadata %q is reserved", name)
		}
		for _, v := range values {
			if strings.HasSuffix(name, "-bin") {
				v = base64.RawStdEncoding.EncodeToString([]byte(v))
			}
			cl.meta = append(cl.meta, hpack.HeaderField{Name: name, Value: v})
		}
	}
	return cl, nil
}

// Encode frames msg for the wire, compressing it if the client compresses.
func (cl *Client) Encode(msg []byte) (Message, error) {
	if cl.comp == nil {
		m := make(Message, 5+len(msg))
		putPrefix(m, 0, len(msg))
		copy(m[5:], msg)
		return m, nil
	}
	var b bytes.Buffer
	b.Write(make([]byte, 5)) // the prefix, filled in below
	w, err := cl.comp.Compress(&b)
	if err == nil {
		_, err = w.Write(msg)
	}
	if err == nil {
		err = w.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("rawgrpc: compress (%s): %w", cl.o.Compression, err)
	}
	m := Message(b.Bytes())
	putPrefix(m, 1, len(m)-5)
	return m, nil
}

func putPrefix(m Message, flag byte, n int) {
	m[0], m[1], m[2], m[3], m[4] = flag, byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
}

// Call makes a unary call of method ("/package.Service/Method") and returns the
// response message. ctx ends the wait, cancelling the call on the server.
func (cl *Client) Call(ctx context.Context, method string, req Message) ([]byte, error) {
	s, err := cl.start(ctx, method, true)
	if err != nil {
		return nil, err
	}
	err = s.c.send(s, req, true)
	s.c.unlockWrite()
	if err != nil {
		s.Close()
		return nil, err
	}
	select {
	case <-s.notify:
	case <-ctx.Done():
		s.Close()
		return nil, contextError(ctx)
	}
	s.mu.Lock()
	err, msgs := s.err, s.msgs
	s.mu.Unlock()
	if err != io.EOF {
		return nil, err
	}
	if len(msgs) != 1 {
		return nil, status.Errorf(codes.Internal, "rawgrpc: unary call answered with %d messages", len(msgs))
	}
	return msgs[0], nil
}

// NewStream starts a streaming call of method. The caller sends and receives on it and
// must Close it (after an error too) unless Recv has returned io.EOF.
func (cl *Client) NewStream(ctx context.Context, method string) (*Stream, error) {
	s, err := cl.start(ctx, method, false)
	if err != nil {
		return nil, err
	}
	s.c.unlockWrite()
	return s, nil
}

// start opens a stream on the next connection in turn, its headers framed and the
// connection's write side held.
func (cl *Client) start(ctx context.Context, method string, unary bool) (*Stream, error) {
	c, err := cl.conn(ctx)
	if err != nil {
		return nil, err
	}
	s, err := c.open(method, unary)
	if err != nil {
		c.unlockWrite()
		return nil, err
	}
	return s, nil
}

// conn is the next connection in turn, dialed if it is not open.
func (cl *Client) conn(ctx context.Context) (*conn, error) {
	slot := &cl.slots[int(cl.turn.Add(1)%uint64(len(cl.slots)))]
	if c := slot.Load(); c != nil && !c.dead.Load() {
		return c, nil
	}
	cl.dialMu.Lock()
	defer cl.dialMu.Unlock()
	if cl.closed.Load() {
		return nil, errClosed
	}
	if c := slot.Load(); c != nil && !c.dead.Load() {
		return c, nil
	}
	c, err := dial(ctx, cl)
	if ctx.Err() != nil {
		if c != nil {
			c.fail(errClosed)
		}
		return nil, contextError(ctx)
	}
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "rawgrpc: dial %s: %v", cl.addr, err)
	}
	slot.Store(c)
	cl.all = slices.DeleteFunc(cl.all, func(c *conn) bool {
		select {
		case <-c.done:
			return true
		default:
			return false
		}
	})
	cl.all = append(cl.all, c)
	return c, nil
}

// ctxErr is a call's end by its context: a status for gRPC's codes that wraps the
// context's error, so that errors.Is finds context.Canceled in it.
type ctxErr struct{ cause error }

func contextError(ctx context.Context) error { return ctxErr{context.Cause(ctx)} }

func (e ctxErr) Error() string              { return e.GRPCStatus().Err().Error() }
func (e ctxErr) Unwrap() error              { return e.cause }
func (e ctxErr) GRPCStatus() *status.Status { return status.FromContextError(e.cause) }

// Close closes the connections, ending their calls.
func (cl *Client) Close() error {
	cl.dialMu.Lock()
	cl.closed.Store(true)
	all := cl.all
	cl.dialMu.Unlock()
	for _, c := range all {
		c.fail(errClosed)
		<-c.done
	}
	return nil
}

// headers is the header block of method's calls. Every field goes as a literal the
// server must not index (hpack's Sensitive), so the encoder's table stays empty and the
// block is the same for every call on every connection.
func (cl *Client) headers(method string) []byte {
	if b, ok := cl.blocks.Load(method); ok {
		return b.([]byte)
	}
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	fields := append([]hpack.HeaderField{
		{Name: ":method", Value: "POST"}, {Name: ":scheme", Value: "http"}, {Name: ":path", Value: method},
		{Name: ":authority", Value: cl.addr}, {Name: "content-type", Value: "application/grpc"},
		{Name: "te", Value: "trailers"}, {Name: "user-agent", Value: "ferry-bench"},
	}, cl.meta...)
	for _, f := range fields {
		f.Sensitive = true
		enc.WriteField(f) // a bytes.Buffer takes every write
	}
	cl.blocks.Store(method, buf.Bytes())
	return buf.Bytes()
}

// timeoutValue is d as a grpc-timeout: at most 8 digits, in the finest unit that fits,
// rounded up.
func timeoutValue(d time.Duration) string {
	for _, u := range []struct {
		d    time.Duration
		unit string
	}{{time.Nanosecond, "n"}, {time.Microsecond, "u"}, {time.Millisecond, "m"}, {time.Second, "S"}, {time.Minute, "M"}, {time.Hour, "H"}} {
		if v := (d + u.d - 1) / u.d; v <= 99999999 {
			return strconv.FormatInt(int64(v), 10) + u.unit
		}
	}
	return "99999999H"
}
