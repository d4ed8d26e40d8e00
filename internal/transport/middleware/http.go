package middleware

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
)

// Layer wraps a handler with behaviour every request through it shares.
type Layer func(http.Handler) http.Handler

// Chain wraps h in layers, the first outermost: Chain(h, a, b) serves a(b(h)).
func Chain(h http.Handler, layers ...Layer) http.Handler {
	for i := len(layers) - 1; i >= 0; i-- {
		h = layers[i](h)
	}
	return h
}

// LogRequests logs each request at debug level, as Triton logs "HTTP request: ..." at
// log_verbose_level 1, so the logging extension can turn the trail on and off. When
// debug is off it costs one level check.
func LogRequests(log *slog.Logger) Layer {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if log.Enabled(r.Context(), slog.LevelDebug) {
				log.DebugContext(r.Context(), "http request", "method", r.Method, "path", r.URL.Path)
			}
			next.ServeHTTP(w, r)
		})
	}
}

// Recover turns a panic in a handler into a logged 500 answer naming it, instead of a
// dropped connection. http.ErrAbortHandler is net/http's way to abort a response on
// purpose, so it goes on up.
func Recover(log *slog.Logger) Layer {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer func() {
				if v := recover(); v != nil {
					if v == http.ErrAbortHandler {
						panic(v)
					}
					err := fmt.Errorf("internal error: %v", v)
					log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "status", http.StatusInternalServerError, "err", err)
					// The handler may have announced an encoding, or the V2 binary
					// extension's header length, for a body it never wrote.
					w.Header().Del("Content-Encoding")
					w.Header().Del("Inference-Header-Content-Length")
					WriteError(w, http.StatusInternalServerError, err.Error())
				}
			}()
			next.ServeHTTP(w, r)
		})
	}
}

// LimitBody bounds every request body to limit bytes (0: no bound): reading past it
// fails with an *http.MaxBytesError and the connection closes after the answer. A
// handler that knows its body's encoding may refuse earlier, with its own wording.
func LimitBody(limit int64) Layer {
	return func(next http.Handler) http.Handler {
		if limit <= 0 {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Body != nil && r.Body != http.NoBody { // nothing to bound, nothing to allocate
				r.Body = http.MaxBytesReader(w, r.Body, limit)
			}
			next.ServeHTTP(w, r)
		})
	}
}

// JSONErrors serves mux, answering a request no route matches with a JSON 404 or 405
// ({"error": ...}) like every other failure, instead of the mux's plain text.
func JSONErrors(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Handler only looks the route up; ServeHTTP also sets the path values.
		if _, pattern := mux.Handler(r); pattern == "" {
			mux.ServeHTTP(&jsonStatusWriter{ResponseWriter: w}, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// jsonStatusWriter turns the mux's plain-text 404 and 405 answers into {"error": ...}.
type jsonStatusWriter struct {
	http.ResponseWriter
	replaced bool
}

func (w *jsonStatusWriter) WriteHeader(code int) {
	w.replaced = true
	w.Header().Del("X-Content-Type-Options")
	w.Header().Del("Content-Length")
	msg := "no such endpoint"
	if code == http.StatusMethodNotAllowed {
		msg = "method not allowed; allowed: " + w.Header().Get("Allow")
	}
	WriteError(w.ResponseWriter, code, msg)
}

func (w *jsonStatusWriter) Write(b []byte) (int, error) {
	if w.replaced {
		return len(b), nil // the mux's text body; ours was written instead
	}
	return w.ResponseWriter.Write(b)
}

// WriteError answers with status and the body {"error": msg}, the form of the V2
// protocol's errors, which the layers use for the failures they answer themselves.
func WriteError(w http.ResponseWriter, status int, msg string) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // read by programs: "<path>" reads better than "\u003cpath\u003e"
	_ = enc.Encode(struct {
		Error string `json:"error"`
	}{msg}) // a struct of one string always encodes
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(bytes.TrimSuffix(b.Bytes(), []byte("\n")))
}

// MarshalJSON is json.Marshal without HTML escaping: the transports' bodies are read
// by programs, and "<path>" or generated text with "&" read better unescaped than as
// "\u003cpath\u003e".
func MarshalJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
