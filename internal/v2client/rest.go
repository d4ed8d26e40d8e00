package v2client

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// RESTOptions configure a REST client.
type RESTOptions struct {
	// URL is host:port, or http(s)://host:port with an optional path prefix.
	URL string
	// TLS configures https; nil with an https URL uses the system's roots.
	TLS *tls.Config
	// Timeout bounds each call, reading the answer included; 0: no bound but the
	// context's.
	Timeout time.Duration
	// DialTimeout bounds connecting; 0 is 5 seconds.
	DialTimeout time.Duration
	// MaxConns is how many idle connections stay open for reuse: at least the most
	// requests in flight, or connections churn (0 is 64).
	MaxConns int
	// Header goes on every request, e.g. an Authorization for a server behind a gateway.
	Header http.Header
	// DialControl, when set, is the dialer's Control: it sees every address connected
	// to, after DNS resolution and on redirects, and may refuse it (netguard).
	DialControl func(network, address string, c syscall.RawConn) error
	// CheckRedirect, when set, is the http.Client's.
	CheckRedirect func(req *http.Request, via []*http.Request) error
}

// DeadlineHeader carries a request's end-to-end deadline over HTTP, as the time left
// in Go's duration syntax ("1.5s", "250ms"); Ferry's V2 REST reads it.
const DeadlineHeader = "Ferry-Timeout"

// REST is a V2 REST client of one server. It is safe for concurrent use.
type REST struct {
	root string // scheme://host:port[/prefix]
	tr   *http.Transport
	hc   *http.Client
}

// NewREST checks the options and builds a client; it connects on first use.
func NewREST(o RESTOptions) (*REST, error) {
	raw := o.URL
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
		if o.TLS != nil {
			raw = "https://" + o.URL
		}
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("url %q: want host:port or http(s)://host:port", o.URL)
	}
	dial := o.DialTimeout
	if dial <= 0 {
		dial = 5 * time.Second
	}
	conns := o.MaxConns
	if conns <= 0 {
		conns = 64
	}
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: dial, KeepAlive: 30 * time.Second, Control: o.DialControl}).DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		TLSClientConfig:     o.TLS,
	}
	var rt http.RoundTripper = tr
	if len(o.Header) > 0 {
		rt = withHeader{tr, o.Header}
	}
	root := strings.TrimSuffix(u.Scheme+"://"+u.Host+u.Path, "/")
	return &REST{root: root, tr: tr, hc: &http.Client{Transport: rt, Timeout: o.Timeout, CheckRedirect: o.CheckRedirect}}, nil
}

// withHeader adds its header to every request that goes through it.
type withHeader struct {
	next http.RoundTripper
	h    http.Header
}

func (w withHeader) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context()) // a RoundTripper must not modify the caller's request
	for k, vs := range w.h {
		req.Header[k] = vs
	}
	return w.next.RoundTrip(req)
}

// Close closes the idle connections; calls still running keep theirs until done.
func (c *REST) Close() { c.tr.CloseIdleConnections() }

// Root is the server's base URL, scheme://host:port[/prefix].
func (c *REST) Root() string { return c.root }

// Model is a handle on one model; version "" lets the server choose (its version
// policy, or an endpoint's routing). Handles are cheap and safe for concurrent use.
func (c *REST) Model(name, version string) *RESTModel {
	base := c.root + "/v2/models/" + url.PathEscape(name)
	if version != "" {
		base += "/versions/" + url.PathEscape(version)
	}
	return &RESTModel{c: c, name: name, base: base, infer: base + "/infer"}
}

// ServerReady calls GET /v2/health/ready: nil when the server is ready.
func (c *REST) ServerReady(ctx context.Context) error {
	_, err := c.do(ctx, http.MethodGet, c.root+"/v2/health/ready", nil)
	return err
}

// RegisterSystemSharedMemory registers a POSIX shared memory region (key is its
// shm_open name) under name.
func (c *REST) RegisterSystemSharedMemory(ctx context.Context, name, key string, offset, size uint64) error {
	body, err := json.Marshal(map[string]any{"key": key, "offset": offset, "byte_size": size})
	if err != nil {
		return err
	}
	_, err = c.do(ctx, http.MethodPost, c.root+"/v2/systemsharedmemory/region/"+url.PathEscape(name)+"/register", body)
	return err
}

// UnregisterSystemSharedMemory unregisters the region called name.
func (c *REST) UnregisterSystemSharedMemory(ctx context.Context, name string) error {
	_, err := c.do(ctx, http.MethodPost, c.root+"/v2/systemsharedmemory/region/"+url.PathEscape(name)+"/unregister", nil)
	return err
}

// do sends a request other than an inference and returns the body of its 200 answer.
func (c *REST) do(ctx context.Context, method, u string, body []byte) ([]byte, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, r)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, unwrapURL(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, restError(resp.StatusCode, b)
	}
	return b, nil
}

// unwrapURL drops net/http's "Post \"http://...\": " wrapping, so an error reads as
// what went wrong; errors.Is and As still see the cause.
func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// restError turns a V2 error answer ({"error": "..."}) into an *Error.
func restError(code int, body []byte) *Error {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil || e.Error == "" {
		e.Error = string(bytes.TrimSpace(body[:min(len(body), 512)]))
	}
	return &Error{HTTPStatus: code, Msg: e.Error}
}

// RESTModel is a REST client's handle on one model (version).
type RESTModel struct {
	c           *REST
	name        string
	base, infer string // .../v2/models/{m}[/versions/{v}] and its /infer
}

// Metadata calls GET /v2/models/{m}[/versions/{v}].
func (m *RESTModel) Metadata(ctx context.Context) (Metadata, error) {
	b, err := m.c.do(ctx, http.MethodGet, m.base, nil)
	if err != nil {
		return Metadata{}, err
	}
	var md struct {
		Name     string       `json:"name"`
		Versions []string     `json:"versions"`
		Platform string       `json:"platform"`
		Inputs   []restTensor `json:"inputs"`
		Outputs  []restTensor `json:"outputs"`
	}
	if err := json.Unmarshal(b, &md); err != nil {
		return Metadata{}, fmt.Errorf("%w: model metadata: %w", ErrBadResponse, err)
	}
	out := Metadata{Name: md.Name, Versions: md.Versions, Platform: md.Platform}
	if out.Inputs, err = restMeta(md.Inputs); err != nil {
		return Metadata{}, fmt.Errorf("%w: model metadata: input %w", ErrBadResponse, err)
	}
	if out.Outputs, err = restMeta(md.Outputs); err != nil {
		return Metadata{}, fmt.Errorf("%w: model metadata: output %w", ErrBadResponse, err)
	}
	return out, nil
}

// Config calls GET .../config (Triton's and Ferry's model configuration).
func (m *RESTModel) Config(ctx context.Context) (Config, error) {
	b, err := m.c.do(ctx, http.MethodGet, m.base+"/config", nil)
	if err != nil {
		return Config{}, err
	}
	var cfg struct {
		MaxBatchSize     int32           `json:"max_batch_size"`
		SequenceBatching json.RawMessage `json:"sequence_batching"`
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return Config{}, fmt.Errorf("%w: model config: %w", ErrBadResponse, err)
	}
	seq := len(cfg.SequenceBatching) > 0 && string(cfg.SequenceBatching) != "null"
	return Config{MaxBatchSize: max(cfg.MaxBatchSize, 0), Sequence: seq}, nil
}

// Ready calls GET .../ready: nil when the model (version) is ready.
func (m *RESTModel) Ready(ctx context.Context) error {
	_, err := m.c.do(ctx, http.MethodGet, m.base+"/ready", nil)
	return err
}

// Stats calls GET .../stats: one entry per version the server reports.
func (m *RESTModel) Stats(ctx context.Context) ([]VersionStats, error) {
	b, err := m.c.do(ctx, http.MethodGet, m.base+"/stats", nil)
	if err != nil {
		return nil, err
	}
	type phase struct {
		Count uint64 `json:"count"`
		Ns    uint64 `json:"ns"`
	}
	var st struct {
		ModelStats []struct {
			Name           string `json:"name"`
			Version        string `json:"version"`
			InferenceCount uint64 `json:"inference_count"`
			ExecutionCount uint64 `json:"execution_count"`
			InferenceStats struct {
				Success, Fail, Queue phase
				ComputeInput         phase `json:"compute_input"`
				ComputeInfer         phase `json:"compute_infer"`
				ComputeOutput        phase `json:"compute_output"`
				CacheHit             phase `json:"cache_hit"`
				CacheMiss            phase `json:"cache_miss"`
			} `json:"inference_stats"`
		} `json:"model_stats"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("%w: model statistics: %w", ErrBadResponse, err)
	}
	ph := func(p phase) Phase { return Phase{Count: p.Count, Total: time.Duration(p.Ns)} }
	out := make([]VersionStats, len(st.ModelStats))
	for i, s := range st.ModelStats {
		is := s.InferenceStats
		out[i] = VersionStats{Name: s.Name, Version: s.Version, InferenceCount: s.InferenceCount, ExecutionCount: s.ExecutionCount,
			Success: ph(is.Success), Fail: ph(is.Fail), Queue: ph(is.Queue), ComputeInput: ph(is.ComputeInput),
			ComputeInfer: ph(is.ComputeInfer), ComputeOutput: ph(is.ComputeOutput), CacheHit: ph(is.CacheHit), Miss: ph(is.CacheMiss)}
	}
	return out, nil
}

// Infer encodes r, sends it and decodes the answer.
func (m *RESTModel) Infer(ctx context.Context, r *Request) (*Response, error) {
	b, err := EncodeREST(r)
	if err != nil {
		return nil, err
	}
	return m.Send(ctx, b)
}

// Send sends an encoded request and decodes the answer.
func (m *RESTModel) Send(ctx context.Context, b Body) (*Response, error) {
	resp, err := m.post(ctx, b)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("reading the response: %w", unwrapURL(err))
	}
	out, err := DecodeREST(resp.Header.Get(HeaderLength), data)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadResponse, err)
	}
	return out, nil
}

// SendDiscard sends an encoded request and reads the answer without decoding it, but
// for checking that a binary answer's header fits: a load generator's path, which
// spends its share of the machine on the wire, not on JSON.
func (m *RESTModel) SendDiscard(ctx context.Context, b Body) error {
	resp, err := m.post(ctx, b)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		return fmt.Errorf("reading the response: %w", unwrapURL(err))
	}
	if b.binary {
		// binary outputs were asked for, so the outputs come after a JSON header.
		h, err := strconv.ParseInt(resp.Header.Get(HeaderLength), 10, 64)
		if err != nil || h > n {
			return fmt.Errorf("%w: %s %q does not fit a %d-byte body", ErrBadResponse, HeaderLength, resp.Header.Get(HeaderLength), n)
		}
	}
	return nil
}

// post sends b to .../infer; an answer other than 200 is read and returned as an *Error.
func (m *RESTModel) post(ctx context.Context, b Body) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.infer, bytes.NewReader(b.data))
	if err != nil {
		return nil, err
	}
	if b.binary {
		req.Header.Set("Content-Type", "application/octet-stream")
		req.Header.Set(HeaderLength, b.hlen)
	} else {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range b.header {
		req.Header.Set(k, v)
	}
	injectHeader(ctx, req.Header) // trace.go
	if dl, ok := ctx.Deadline(); ok {
		// The time left, so that an upstream Ferry gives up when its caller has (gRPC
		// carries the deadline itself, as grpc-timeout).
		req.Header.Set(DeadlineHeader, time.Until(dl).Round(time.Millisecond).String())
	}
	resp, err := m.c.hc.Do(req)
	if err != nil {
		return nil, unwrapURL(err)
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		return nil, restError(resp.StatusCode, body)
	}
	return resp, nil
}
