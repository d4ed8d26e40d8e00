package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// httpDrain serves REST and takes it down on SIGTERM without dropping a request that a
// client wrote onto a keep-alive connection.
//
// http.Server.Shutdown alone closes the listener and, at once, every connection it counts
// as idle. A client that has just written its next request on such a connection gets EOF
// or a reset, and a POST is not retried. A connection accepted just before Shutdown whose
// first request arrives after it is dropped unanswered as well (conn.serve returns when it
// sees the server shutting down). HTTP/1.1 has no GOAWAY; what it has is Connection: close,
// after which the client opens a new connection instead of writing onto this one. So:
//
//  1. Every response from SIGTERM on carries Connection: close, so the server ends each
//     connection right after answering on it, which is clean for its client.
//  2. The listener keeps accepting for the grace period, for clients (and load balancers)
//     that have not yet seen readiness turn 503; their new connections are answered too.
//  3. The listener closes. Once Serve has returned (every accepted connection is then
//     known), drain waits until no connection is mid-request or just accepted.
//  4. Shutdown closes what is left: connections idle since before SIGTERM that the
//     client never used in the grace period (closing an idle connection is a race HTTP/1.1
//     clients are built for; IdleTimeout does it too).
//
// SetKeepAlivesEnabled(false) would do step 1 for us, but it also closes idle connections
// at once, the race this type exists to avoid.
type httpDrain struct {
	srv      *http.Server
	ln       net.Listener
	closing  atomic.Bool   // set by drain: responses carry Connection: close
	served   chan struct{} // closed when Serve has returned
	mu       sync.Mutex
	conns    map[net.Conn]connState // open connections; guarded by mu
	connHook func(net.Conn, http.ConnState)
}

// connState is where a connection is and since when.
type connState struct {
	state http.ConnState
	since time.Time
}

// newConnPatience is how long a just-accepted connection may take to send its first
// request before drain stops waiting for it; net/http's Shutdown counts it idle after 5s too.
const newConnPatience = 5 * time.Second

// newHTTPDrain takes over srv's handler and connection-state hook; srv must not be
// serving yet. Serve then serves ln until drain ends it.
func newHTTPDrain(srv *http.Server, ln net.Listener) *httpDrain {
	d := &httpDrain{srv: srv, ln: ln, served: make(chan struct{}), conns: map[net.Conn]connState{}, connHook: srv.ConnState}
	next := srv.Handler
	srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.closing.Load() && r.ProtoMajor == 1 {
			w.Header().Set("Connection", "close")
		}
		next.ServeHTTP(w, r)
	})
	srv.ConnState = d.track
	return d
}

// Serve serves until drain (or a failing listener) ends it; drain's ending is no error.
func (d *httpDrain) Serve() error {
	defer close(d.served)
	err := d.srv.Serve(d.ln)
	if errors.Is(err, http.ErrServerClosed) || d.closing.Load() && errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// drain takes REST down as the type comment says: answer with Connection: close for grace,
// stop accepting, let started requests finish, close the rest. It returns when every
// connection is closed, or when ctx ends, after force-closing what was still open.
func (d *httpDrain) drain(ctx context.Context, grace time.Duration) error {
	d.closing.Store(true)
	select {
	case <-d.served: // Serve failed: nothing is accepting, no reason to wait
	case <-ctx.Done():
	case <-time.After(grace):
	}
	d.ln.Close() // Serve returns; Shutdown later finds no listener of its own to close
	<-d.served
	err := d.settle(ctx)
	if err == nil {
		err = d.srv.Shutdown(ctx)
	}
	if err != nil {
		d.srv.Close() // as the gRPC side's Stop: no handler outlives Run
	}
	return err
}

// settle waits until no connection is mid-request or was accepted less than
// newConnPatience ago without sending yet. Connections close themselves after their
// answer (Connection: close), so it polls, as Shutdown does.
func (d *httpDrain) settle(ctx context.Context) error {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for d.busy(time.Now()) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	return nil
}

func (d *httpDrain) busy(now time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, c := range d.conns {
		if c.state == http.StateActive || c.state == http.StateNew && now.Sub(c.since) < newConnPatience {
			return true
		}
	}
	return false
}

// track is the server's ConnState hook. net/http calls it for StateNew before Serve
// accepts the next connection, so once Serve has returned every connection is here.
func (d *httpDrain) track(c net.Conn, st http.ConnState) {
	d.mu.Lock()
	switch st {
	case http.StateClosed, http.StateHijacked:
		delete(d.conns, c)
	default:
		d.conns[c] = connState{state: st, since: time.Now()}
	}
	d.mu.Unlock()
	if d.connHook != nil {
		d.connHook(c, st)
	}
}
