package middleware

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/semaphore"
)

// RejectDotSegments answers 400 to a request whose path has a "." or ".." segment or an
// empty one ("//"), instead of letting the mux answer a 307 redirect to the cleaned
// path: a client that follows it would run a different request than it sent
// (/v2/repository/models/../x/load), and one that does not gets no error it can read.
// The path checked is the decoded one, so "%2e%2e" is a ".." too.
func RejectDotSegments(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if seg, bad := dotSegment(r.URL.Path); bad {
			WriteError(w, http.StatusBadRequest, fmt.Sprintf("request path %q has a %q segment; send the path without it", r.URL.Path, seg))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// dotSegment finds a ".", ".." or empty segment of p (a trailing slash is not one).
func dotSegment(p string) (string, bool) {
	segs := strings.Split(strings.TrimPrefix(p, "/"), "/")
	for i, s := range segs {
		if s == "." || s == ".." || (s == "" && i < len(segs)-1) {
			return s, true
		}
	}
	return "", false
}

// BodyBudget bounds the bytes of request bodies being read or held at once across all
// requests: a handler buffers its whole body, so many concurrent large bodies would
// otherwise take any amount of memory. A body of known length reserves its length
// before a byte is read, and a request that does not fit is answered 503 with
// Retry-After, unread; a body of unknown length (chunked) reserves as it is read and
// fails the read when the budget is spent. The reservation lasts until the handler
// returns, since the body's bytes live that long. total <= 0: no budget.
func BodyBudget(total int64, retryAfter time.Duration) Layer {
	return func(next http.Handler) http.Handler {
		if total <= 0 {
			return next
		}
		sem := semaphore.NewWeighted(total)
		retry := strconv.Itoa(max(1, int(retryAfter.Round(time.Second)/time.Second)))
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
				next.ServeHTTP(w, r)
				return
			}
			if n := r.ContentLength; n > 0 {
				if n > total || !sem.TryAcquire(n) {
					w.Header().Set("Retry-After", retry)
					WriteError(w, http.StatusServiceUnavailable, fmt.Sprintf(
						"server busy: request bodies being read already hold the in-flight body budget of %d bytes (this one has %d); retry later", total, n))
					return
				}
				defer sem.Release(n)
				next.ServeHTTP(w, r)
				return
			}
			b := &budgetedBody{ReadCloser: r.Body, sem: sem, total: total}
			defer b.release()
			r.Body = b
			next.ServeHTTP(w, r)
		})
	}
}

// ErrBodyBudget is the read error of a chunked body that would pass the in-flight
// body budget.
var ErrBodyBudget = errors.New("server busy: the in-flight request body budget is spent; retry later")

// budgetedBody reserves a chunked body's bytes as they are read, in steps.
type budgetedBody struct {
	io.ReadCloser
	sem      *semaphore.Weighted
	total    int64
	mu       sync.Mutex
	held     int64 // reserved
	consumed int64 // read
}

const budgetStep = 1 << 20

func (b *budgetedBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.consumed+int64(len(p)) > b.held {
		step := max(int64(budgetStep), int64(len(p)))
		if b.held+step > b.total || !b.sem.TryAcquire(step) {
			return 0, ErrBodyBudget
		}
		b.held += step
	}
	n, err := b.ReadCloser.Read(p)
	b.consumed += int64(n)
	return n, err
}

func (b *budgetedBody) release() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.held > 0 {
		b.sem.Release(b.held)
		b.held = 0
	}
}

// BodyRate is the slowest a request body may arrive: after Grace, at least MinRate
// bytes per second on average since the handler started reading it.
type BodyRate struct {
	Grace   time.Duration // time any body gets, however small (e.g. 10s)
	MinRate int64         // bytes per second (e.g. 64 KiB/s); 0: no rate deadline
}

// ReadDeadline times out slow request bodies (a client trickling a body holds a
// handler and its buffer forever otherwise). http.Server's ReadTimeout is one figure for
// every body, too short for a large tensor on a slow link or too long for a small one;
// here the deadline grows with the bytes received: before each read the connection's
// read deadline is set to start + Grace + (bytes so far + the read's size) / MinRate.
// It is cleared once the body is read, so the server's own wait for a closed connection
// never fires during inference. A read past the deadline fails with an error naming
// the rate.
func ReadDeadline(rate BodyRate) Layer {
	return func(next http.Handler) http.Handler {
		if rate.MinRate <= 0 {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Body == nil || r.Body == http.NoBody {
				next.ServeHTTP(w, r)
				return
			}
			r.Body = &deadlineBody{ReadCloser: r.Body, rc: http.NewResponseController(w), rate: rate, start: time.Now()}
			next.ServeHTTP(w, r)
		})
	}
}

type deadlineBody struct {
	io.ReadCloser
	rc    *http.ResponseController
	rate  BodyRate
	start time.Time
	read  int64
	done  bool
}

func (d *deadlineBody) Read(p []byte) (int, error) {
	if d.done {
		return d.ReadCloser.Read(p)
	}
	allowed := d.rate.Grace + time.Duration(float64(d.read+int64(len(p)))/float64(d.rate.MinRate)*float64(time.Second))
	_ = d.rc.SetReadDeadline(d.start.Add(allowed)) // not supported (HTTP/2 over some wrappers): no deadline
	n, err := d.ReadCloser.Read(p)
	d.read += int64(n)
	if err != nil {
		d.done = true
		if !isTimeout(err) {
			_ = d.rc.SetReadDeadline(time.Time{})
		} else {
			// The deadline stays: the server then gives up draining the rest of the body
			// after the answer (it would wait on the same slow client) and closes.
			return n, fmt.Errorf("request body arrived slower than the minimum of %d bytes/s after %s (%d bytes in %s)",
				d.rate.MinRate, d.rate.Grace, d.read, time.Since(d.start).Round(time.Millisecond))
		}
	}
	return n, err
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// DeadlineHeader sets an HTTP request's end-to-end deadline: the time the client will
// wait, in Go's duration syntax ("1.5s", "250ms"). It is the HTTP counterpart of gRPC's
// deadline (v2client sends it to REST upstreams).
const DeadlineHeader = "Ferry-Timeout"

// Deadline makes the DeadlineHeader of a request its context's deadline, so that the
// queue, the backend and remote upstreams stop when the client has stopped waiting.
// A value that is not a positive duration is answered 400.
func Deadline(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := r.Header.Get(DeadlineHeader)
		if v == "" {
			next.ServeHTTP(w, r)
			return
		}
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil || d <= 0 {
			WriteError(w, http.StatusBadRequest, fmt.Sprintf("%s %q: want a positive duration such as 1.5s or 250ms", DeadlineHeader, v))
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), d)
		defer cancel()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}
