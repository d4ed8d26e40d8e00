package rawgrpc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	_ "google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// bytesCodec lets the test server handle messages as bytes.
type bytesCodec struct{}

func (bytesCodec) Name() string { return "proto" }

func (bytesCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(*v.(*[]byte))}, nil
}

func (bytesCodec) Unmarshal(d mem.BufferSlice, v any) error {
	*v.(*[]byte) = d.Materialize()
	return nil
}

// testServer is a grpc-go server on 127.0.0.1 whose methods (any service) are:
//
//	Echo: answers the request; Chat: answers each message of a stream;
//	Fail: answers the status the request names ("code message");
//	Block: waits for the call to end and reports it on cancelled;
//	Meta: answers the x-token metadata and whether the call has a deadline;
//	Big: answers as many bytes as the request's decimal number;
//	Reject: fails without reading the request; Slow: echoes after 300 ms.
type testServer struct {
	addr      string
	srv       *grpc.Server
	cancelled chan error
}

func startServer(t testing.TB, addr string, opts ...grpc.ServerOption) *testServer {
	t.Helper()
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{addr: lis.Addr().String(), cancelled: make(chan error, 16)}
	ts.srv = grpc.NewServer(append([]grpc.ServerOption{grpc.ForceServerCodecV2(bytesCodec{}), grpc.MaxRecvMsgSize(64 << 20),
		grpc.UnknownServiceHandler(ts.handle)}, opts...)...)
	go ts.srv.Serve(lis)
	t.Cleanup(ts.srv.Stop)
	return ts
}

func (ts *testServer) handle(_ any, st grpc.ServerStream) error {
	method, _ := grpc.MethodFromServerStream(st)
	method = method[strings.LastIndex(method, "/")+1:]
	if method == "Reject" {
		return status.Error(codes.PermissionDenied, "not reading that")
	}
	var req []byte
	if err := st.RecvMsg(&req); err != nil {
		return err
	}
	switch method {
	case "Echo":
		return st.SendMsg(&req)
	case "Chat":
		for {
			if err := st.SendMsg(&req); err != nil {
				return err
			}
			if err := st.RecvMsg(&req); err != nil {
				if err == io.EOF {
					return nil
				}
				return err
			}
		}
	case "Fail":
		code, msg, _ := strings.Cut(string(req), " ")
		n, _ := strconv.Atoi(code)
		return status.Error(codes.Code(n), msg)
	case "Block":
		<-st.Context().Done()
		ts.cancelled <- st.Context().Err()
		return st.Context().Err()
	case "Meta":
		md, _ := metadata.FromIncomingContext(st.Context())
		_, deadline := st.Context().Deadline()
		reply := fmt.Appendf(nil, "%s|%s|%v", strings.Join(md["x-token"], ","), strings.Join(md["x-key-bin"], ","), deadline)
		return st.SendMsg(&reply)
	case "Slow":
		time.Sleep(300 * time.Millisecond)
		return st.SendMsg(&req)
	case "Big":
		n, _ := strconv.Atoi(string(req))
		reply := bytes.Repeat([]byte{'b'}, n)
		return st.SendMsg(&reply)
	}
	return status.Errorf(codes.Unimplemented, "no method %s", method)
}

func newClient(t testing.TB, addr string, o Options) *Client {
	t.Helper()
	cl, err := NewClient(addr, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

func call(t *testing.T, cl *Client, method string, req []byte) ([]byte, error) {
	t.Helper()
	m, err := cl.Encode(req)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	return cl.Call(ctx, "/test.T/"+method, m)
}

func TestUnary(t *testing.T) {
	ts := startServer(t, "127.0.0.1:0")
	for _, comp := range []string{"", "gzip"} {
		cl := newClient(t, ts.addr, Options{Compression: comp, MaxRecvBytes: 8 << 20})
		// Past the server's 64 KiB windows and 16 KiB frames, and the empty message.
		for _, n := range []int{0, 1, 100, 16384, 100 << 10, 3 << 20} {
			req := bytes.Repeat([]byte(fmt.Sprintf("%07d", n)), n/7+1)[:n]
			got, err := call(t, cl, "Echo", req)
			if err != nil {
				t.Fatalf("compression %q, %d bytes: %v", comp, n, err)
			}
			if !bytes.Equal(got, req) {
				t.Fatalf("compression %q, %d bytes: echo differs (%d bytes back)", comp, n, len(got))
			}
		}
	}
}

func TestConcurrentCalls(t *testing.T) {
	ts := startServer(t, "127.0.0.1:0")
	cl := newClient(t, ts.addr, Options{Conns: 2})
	startEchoes(t, cl, "Echo", 64, 100, func(g, i int) []byte {
		return bytes.Repeat(fmt.Appendf(nil, "%d-%d;", g, i), 1+i*37%500)
	})()
}

// startEchoes starts clients goroutines, each making calls calls of method (one that
// echoes) with req(client, call) and checking it gets its own request back; the
// function it returns waits for them and reports each client's first failure.
func startEchoes(t *testing.T, cl *Client, method string, clients, calls int, req func(g, i int) []byte) (wait func()) {
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for g := range clients {
		wg.Go(func() {
			for i := range calls {
				r := req(g, i)
				if got, err := call(t, cl, method, r); err != nil || !bytes.Equal(got, r) {
					errs <- fmt.Errorf("client %d, call %d: %d bytes back, %v", g, i, len(got), err)
					return
				}
			}
		})
	}
	return func() {
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	}
}

// TestLargeBothWays keeps both directions of one connection full at once, several
// windows' worth each, so that flow control is exercised both ways while writers and
// the reader contend.
func TestLargeBothWays(t *testing.T) {
	ts := startServer(t, "127.0.0.1:0")
	cl := newClient(t, ts.addr, Options{MaxRecvBytes: 8 << 20})
	startEchoes(t, cl, "Echo", 8, 4, func(g, _ int) []byte { return bytes.Repeat([]byte{byte(g)}, 2<<20+g) })()
}

// TestStreamLimit: past the server's MAX_CONCURRENT_STREAMS, calls wait for a stream
// to end instead of failing.
func TestStreamLimit(t *testing.T) {
	ts := startServer(t, "127.0.0.1:0", grpc.MaxConcurrentStreams(2))
	cl := newClient(t, ts.addr, Options{})
	if _, err := call(t, cl, "Echo", nil); err != nil { // the server's SETTINGS are in
		t.Fatal(err)
	}
	startEchoes(t, cl, "Echo", 16, 20, func(g, i int) []byte { return fmt.Appendf(nil, "%d-%d", g, i) })()
	if n := cl.slots[0].Load().active.Load(); n != 0 {
		t.Errorf("%d streams still counted open", n)
	}
}

func TestStatus(t *testing.T) {
	ts := startServer(t, "127.0.0.1:0")
	cl := newClient(t, ts.addr, Options{})
	_, err := call(t, cl, "Fail", []byte("3 bad input: 100% wrong\nsecond line ü"))
	if s := status.Convert(err); s.Code() != codes.InvalidArgument || s.Message() != "bad input: 100% wrong\nsecond line ü" {
		t.Fatalf("got %v", err)
	}
	_, err = call(t, cl, "Nope", nil)
	if status.Code(err) != codes.Unimplemented {
		t.Fatalf("unknown method: %v", err)
	}
	// A response over the limit fails that call only.
	cl = newClient(t, ts.addr, Options{MaxRecvBytes: 1000})
	if _, err := call(t, cl, "Big", []byte("1001")); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("1001 bytes over a 1000-byte limit: %v", err)
	}
	if got, err := call(t, cl, "Big", []byte("1000")); err != nil || len(got) != 1000 {
		t.Fatalf("1000 bytes after: %d bytes, %v", len(got), err)
	}
}

// TestRejectedWhileSending: a call the server ends while the client waits for window
// to send the rest of its request ends with the server's status.
func TestRejectedWhileSending(t *testing.T) {
	ts := startServer(t, "127.0.0.1:0")
	cl := newClient(t, ts.addr, Options{})
	if _, err := call(t, cl, "Reject", make([]byte, 8<<20)); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("got %v", err)
	}
	if got, err := call(t, cl, "Echo", []byte("after")); err != nil || string(got) != "after" {
		t.Fatalf("a call after: %q, %v", got, err)
	}
}

func TestCancel(t *testing.T) {
	ts := startServer(t, "127.0.0.1:0")
	cl := newClient(t, ts.addr, Options{})
	m, _ := cl.Encode(nil)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if _, err := cl.Call(ctx, "/test.T/Block", m); status.Code(err) != codes.DeadlineExceeded || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want DeadlineExceeded", err)
	}
	select {
	case err := <-ts.cancelled:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("the server saw %v, want its call cancelled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the server's call did not end")
	}
	if got, err := call(t, cl, "Echo", []byte("after")); err != nil || string(got) != "after" {
		t.Fatalf("a call after: %q, %v", got, err)
	}
}

func TestMetadataAndTimeout(t *testing.T) {
	ts := startServer(t, "127.0.0.1:0")
	cl := newClient(t, ts.addr, Options{Metadata: map[string][]string{"X-Token": {"a", "b"}, "x-key-bin": {"\x00\xff"}}})
	if got, err := call(t, cl, "Meta", nil); err != nil || string(got) != "a,b|\x00\xff|false" {
		t.Fatalf("got %q, %v", got, err)
	}
	cl = newClient(t, ts.addr, Options{Timeout: time.Minute})
	if got, err := call(t, cl, "Meta", nil); err != nil || string(got) != "||true" {
		t.Fatalf("with a timeout: %q, %v", got, err)
	}
	if _, err := NewClient(ts.addr, Options{Metadata: map[string][]string{"grpc-timeout": {"1S"}}}); err == nil {
		t.Fatal("reserved metadata accepted")
	}
	if _, err := NewClient(ts.addr, Options{Compression: "lz5"}); err == nil {
		t.Fatal("unknown compressor accepted")
	}
}

func TestStream(t *testing.T) {
	ts := startServer(t, "127.0.0.1:0")
	cl := newClient(t, ts.addr, Options{})
	ctx := t.Context()
	s, err := cl.NewStream(ctx, "/test.T/Chat")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range 200 {
		req := bytes.Repeat(fmt.Appendf(nil, "%d,", i), i*50) // up to 40 KiB
		m, _ := cl.Encode(req)
		if err := s.Send(m); err != nil {
			t.Fatal(err)
		}
		got, err := s.Recv(ctx)
		if err != nil || !bytes.Equal(got, req) {
			t.Fatalf("message %d: %d bytes, %v", i, len(got), err)
		}
	}
	s.Close()
	if _, err := s.Recv(ctx); status.Code(err) != codes.Canceled {
		t.Fatalf("Recv after Close: %v", err)
	}
	// The server's error ends a stream.
	s, err = cl.NewStream(ctx, "/test.T/Fail")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := cl.Encode([]byte("9 not now"))
	if err := s.Send(m); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Recv(ctx); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("got %v", err)
	}
}

func TestServerGoesAway(t *testing.T) {
	ts := startServer(t, "127.0.0.1:0")
	cl := newClient(t, ts.addr, Options{})
	if _, err := call(t, cl, "Echo", []byte("x")); err != nil {
		t.Fatal(err)
	}
	ts.srv.GracefulStop()
	if _, err := call(t, cl, "Echo", []byte("x")); status.Code(err) != codes.Unavailable {
		t.Fatalf("with the server gone: %v", err)
	}
	startServer(t, ts.addr) // the client dials the new one
	if got, err := call(t, cl, "Echo", []byte("back")); err != nil || string(got) != "back" {
		t.Fatalf("after a new server started: %q, %v", got, err)
	}
}

// TestDrainingServer: calls in flight when the server starts a graceful stop (GOAWAY)
// finish on their connection; the next call dials again.
func TestDrainingServer(t *testing.T) {
	ts := startServer(t, "127.0.0.1:0")
	cl := newClient(t, ts.addr, Options{})
	if _, err := call(t, cl, "Echo", nil); err != nil {
		t.Fatal(err)
	}
	inFlight := startEchoes(t, cl, "Slow", 4, 1, func(g, _ int) []byte { return fmt.Appendf(nil, "slow %d", g) })
	time.Sleep(100 * time.Millisecond) // the four are in the server's handler
	stopped := make(chan struct{})
	go func() {
		ts.srv.GracefulStop()
		close(stopped)
	}()
	inFlight()
	<-stopped
	startServer(t, ts.addr) // the next call dials it
	if got, err := call(t, cl, "Echo", []byte("next")); err != nil || string(got) != "next" {
		t.Fatalf("after the drain: %q, %v", got, err)
	}
}

// TestNotGRPC answers from a plain HTTP/2 server what a gRPC server would not.
func TestNotGRPC(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Protocols: new(http.Protocols), Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		switch r.URL.Path {
		case "/t/404":
			http.NotFound(w, r)
		case "/t/html":
			w.Header().Set("Content-Type", "text/html")
			w.Write([]byte("<p>hi</p>"))
		case "/t/notrailers":
			w.Header().Set("Content-Type", "application/grpc")
			w.Write([]byte{0, 0, 0, 0, 1, 'x'})
		case "/t/cut":
			w.Header().Set("Content-Type", "application/grpc")
			w.Header().Set("Trailer", "Grpc-Status")
			w.Write([]byte{0, 0, 0, 0, 9, 'x'})
			w.Header().Set("Grpc-Status", "0")
		case "/t/flag":
			w.Header().Set("Content-Type", "application/grpc")
			w.Write([]byte{7, 0, 0, 0, 1, 'x'})
		}
	})}
	srv.Protocols.SetUnencryptedHTTP2(true)
	go srv.Serve(lis)
	defer srv.Close()
	cl := newClient(t, lis.Addr().String(), Options{})
	m, _ := cl.Encode([]byte("q"))
	for path, want := range map[string]string{
		"/t/404":        "code = Unimplemented desc = rawgrpc: HTTP status 404",
		"/t/html":       `content-type "text/html" is not gRPC`,
		"/t/notrailers": "stream ended without trailers",
		"/t/cut":        "call ended inside a message (6 bytes of it)",
		"/t/flag":       "message flag 7 is not 0 or 1",
	} {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		_, err := cl.Call(ctx, path, m)
		cancel()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", path, err, want)
		}
	}
}

func TestHeaderBlock(t *testing.T) {
	// A call's header block reads back as the fields it means.
	cl := &Client{addr: "h:1", meta: []hpack.HeaderField{{Name: "x-a", Value: "b"}}}
	var got []string
	dec := hpack.NewDecoder(4096, func(f hpack.HeaderField) { got = append(got, f.Name+"="+f.Value) })
	for range 2 { // and the same again: nothing is indexed
		got = got[:0]
		if _, err := dec.Write(cl.headers("/s.S/M")); err != nil {
			t.Fatal(err)
		}
		want := ":method=POST :scheme=http :path=/s.S/M :authority=h:1 content-type=application/grpc te=trailers user-agent=ferry-bench x-a=b"
		if strings.Join(got, " ") != want {
			t.Fatalf("header block reads\n%s, want\n%s", strings.Join(got, " "), want)
		}
	}
	for d, want := range map[time.Duration]string{time.Second: "1000000u", time.Minute: "60000000u",
		time.Hour: "3600000m", 100 * 24 * time.Hour: "8640000S", time.Nanosecond: "1n"} {
		if got := timeoutValue(d); got != want {
			t.Errorf("timeoutValue(%v) = %s, want %s", d, got, want)
		}
	}
}
