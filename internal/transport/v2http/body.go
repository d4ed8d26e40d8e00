package v2http

import (
	"compress/gzip"
	"compress/zlib"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/ferryml/ferry/internal/core"
)

// readBody reads the whole request body within limit bytes (0: no limit). A compressed
// body (Content-Encoding gzip or deflate, as Triton's clients send) is bounded both as
// sent and after decompression, so a small bomb cannot expand past the limit.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if limit > 0 && r.ContentLength > limit {
		return nil, core.TooLargef("request body of %d bytes exceeds the limit of %d bytes", r.ContentLength, limit)
	}
	var body io.Reader = r.Body
	if limit > 0 {
		body = http.MaxBytesReader(w, r.Body, limit)
	}
	enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding")))
	switch enc {
	case "", "identity":
		return readAll(body, r.ContentLength, limit)
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(body)
		if err != nil {
			return nil, bodyError(err, "gzip")
		}
		body = zr
	case "deflate":
		zr, err := zlib.NewReader(body)
		if err != nil {
			return nil, bodyError(err, "deflate")
		}
		body = zr
	default:
		return nil, core.Invalidf("unsupported Content-Encoding %q (gzip and deflate are supported)", enc)
	}
	if limit > 0 {
		body = io.LimitReader(body, limit+1)
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return nil, bodyError(err, enc)
	}
	if limit > 0 && int64(len(b)) > limit {
		return nil, core.TooLargef("decompressed request body exceeds the limit of %d bytes", limit)
	}
	return b, nil
}

// readAll reads an uncompressed body. With a Content-Length it reads into one exact
// buffer (io.ReadAll would grow it to as much as twice the size).
func readAll(body io.Reader, contentLength, limit int64) ([]byte, error) {
	if contentLength <= 0 || (limit <= 0 && contentLength > 1<<30) {
		b, err := io.ReadAll(body)
		if err != nil {
			return nil, bodyError(err, "")
		}
		return b, nil
	}
	b := make([]byte, contentLength)
	if _, err := io.ReadFull(body, b); err != nil {
		return nil, bodyError(err, "")
	}
	return b, nil
}

func bodyError(err error, encoding string) error {
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return core.TooLargef("request body exceeds the limit of %d bytes", tooBig.Limit)
	case encoding != "":
		return core.Invalidf("reading %s request body: %v", encoding, err)
	}
	return core.Invalidf("reading request body: %v", err)
}

// headerLength parses Inference-Header-Content-Length: -1 when absent.
func headerLength(r *http.Request) (int64, error) {
	v := r.Header.Get("Inference-Header-Content-Length")
	if v == "" {
		return -1, nil
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n < 0 {
		return 0, core.Invalidf("Inference-Header-Content-Length %q is not a non-negative integer", v)
	}
	return n, nil
}

// responseEncoding picks the compression for an infer response from Accept-Encoding:
// gzip or deflate when the client lists it with a non-zero quality, else none.
func responseEncoding(r *http.Request) string {
	best, bestQ := "", 0.0
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		name = strings.ToLower(strings.TrimSpace(name))
		if name != "gzip" && name != "deflate" {
			continue
		}
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				q = f
			}
		}
		if q > bestQ || (q == bestQ && name == "gzip") {
			best, bestQ = name, q
		}
	}
	return best
}
