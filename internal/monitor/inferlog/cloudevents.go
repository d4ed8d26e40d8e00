package inferlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferryml/ferry/internal/v2json"
)

// CloudEvents types of KServe's inference logger.
const (
	CETypeRequest  = "org.kubeflow.serving.inference.request"
	CETypeResponse = "org.kubeflow.serving.inference.response"
)

// httpSink posts each entry as CloudEvents in binary mode, as KServe's logger does: a
// request event (body: the V2 JSON request) and, for a successful request, a response
// event (body: the V2 JSON response), sharing ce-id (the request id).
type httpSink struct {
	cfg  HTTPConfig
	hc   *http.Client
	bufs sync.Pool
}

func newHTTPSink(cfg HTTPConfig) *httpSink {
	return &httpSink{cfg: cfg, hc: &http.Client{Timeout: cfg.Timeout.D()},
		bufs: sync.Pool{New: func() any { return new(bytes.Buffer) }}}
}

func (h *httpSink) name() string { return "http" }

// write posts the batch's entries, Concurrency at a time; an entry is delivered when
// all its events were accepted.
func (h *httpSink) write(ctx context.Context, batch []*capture) (int, error) {
	var delivered atomic.Int64
	var mu sync.Mutex
	var first error
	sem := make(chan struct{}, h.cfg.Concurrency)
	var wg sync.WaitGroup
	for _, c := range batch {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := h.post(ctx, c); err != nil {
				mu.Lock()
				first = cmpErr(first, err)
				mu.Unlock()
				return
			}
			delivered.Add(1)
		})
	}
	wg.Wait()
	return int(delivered.Load()), first
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

func (h *httpSink) post(ctx context.Context, c *capture) error {
	b := h.bufs.Get().(*bytes.Buffer)
	defer h.bufs.Put(b)
	b.Reset()
	b.Write(appendV2Request(b.AvailableBuffer(), c))
	if err := h.send(ctx, c, CETypeRequest, c.start, b.Bytes()); err != nil {
		return err
	}
	if c.failed { // KServe logs responses only for answers that succeeded
		return nil
	}
	b.Reset()
	b.Write(appendV2Response(b.AvailableBuffer(), c))
	return h.send(ctx, c, CETypeResponse, c.start.Add(c.latency), b.Bytes())
}

// send posts one event, retrying network errors, 429 and 5xx with a doubling backoff.
func (h *httpSink) send(ctx context.Context, c *capture, typ string, at time.Time, body []byte) error {
	backoff := 50 * time.Millisecond
	var err error
	for attempt := 0; attempt <= max(h.cfg.Retries, 0); attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return errors.Join(err, ctx.Err())
			case <-time.After(backoff):
			}
			backoff *= 2
		}
		var retry bool
		retry, err = h.attempt(ctx, c, typ, at, body)
		if err == nil || !retry {
			return err
		}
	}
	return err
}

func (h *httpSink) attempt(ctx context.Context, c *capture, typ string, at time.Time, body []byte) (retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return false, fmt.Errorf("http sink: %w", err)
	}
	hd := req.Header
	hd["Content-Type"] = []string{"application/json"}
	hd["Ce-Specversion"] = []string{"1.0"}
	hd["Ce-Id"] = []string{string(c.reqID[:])}
	hd["Ce-Type"] = []string{typ}
	hd["Ce-Source"] = []string{h.cfg.Source}
	hd["Ce-Time"] = []string{at.UTC().Format(time.RFC3339Nano)}
	hd["Ce-Inferenceservicename"] = []string{c.model}
	hd["Ce-Modelversion"] = []string{c.version}
	hd["Ce-Endpoint"] = []string{endpoint(c.route)}
	if c.traceID != "" {
		hd["Ce-Traceid"] = []string{c.traceID}
	}
	resp, err := h.hc.Do(req)
	if err != nil {
		return ctx.Err() == nil, fmt.Errorf("http sink: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // reuse the connection
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		retryable := resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500
		return retryable, fmt.Errorf("http sink: %s answered %s", h.cfg.URL, resp.Status)
	}
	return false, nil
}

// endpoint is KServe's ce-endpoint: "default" for the version the request reached
// unrouted, else the route ("shadow", "weight", ...).
func endpoint(route string) string {
	if route == "" {
		return "default"
	}
	return route
}

// appendV2Request is the V2 JSON request body: {"id":...,"inputs":[...]}.
func appendV2Request(b []byte, c *capture) []byte {
	b = append(b, '{')
	if c.clientID != "" {
		b = append(b, `"id":`...)
		b = v2json.AppendString(b, c.clientID)
		b = append(b, ',')
	}
	b = append(b, `"inputs":`...)
	b = appendTensors(b, c, c.inputs, false)
	return append(b, '}')
}

// appendV2Response is the V2 JSON response body.
func appendV2Response(b []byte, c *capture) []byte {
	b = append(b, `{"model_name":`...)
	b = v2json.AppendString(b, c.model)
	b = append(b, `,"model_version":`...)
	b = v2json.AppendString(b, c.version)
	if c.clientID != "" {
		b = append(b, `,"id":`...)
		b = v2json.AppendString(b, c.clientID)
	}
	b = append(b, `,"outputs":`...)
	b = appendTensors(b, c, c.outputs, false)
	return append(b, '}')
}

func (h *httpSink) tick(time.Time) {}

func (h *httpSink) close(context.Context) error {
	h.hc.CloseIdleConnections()
	return nil
}
