package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ferryml/ferry/internal/tensor"
	"github.com/ferryml/ferry/internal/v2json"
)

// headerLength is the binary tensor data extension's header: the size of the JSON part
// of a body whose tensors follow as raw bytes.
const headerLength = "Inference-Header-Content-Length"

// HTTPOptions configure an HTTPClient.
type HTTPOptions struct {
	URL     string // host:port, or a URL with http:// or https://
	Model   string
	Version string // "" lets the server pick
	// Binary sends inputs and asks for outputs in the binary tensor data extension
	// instead of JSON arrays.
	Binary bool
	// MaxConns is how many connections stay open for reuse; at least the largest number
	// of requests in flight, or connections churn and the client measures itself.
	MaxConns int
	Timeout  time.Duration // per request, and per metadata or statistics call; 0 is defaultTimeout
	// Header goes on every request (perf_analyzer's -H), e.g. an Authorization for a
	// server behind a gateway.
	Header http.Header
	// SharedMemory, when set, sends the tensors through system shared memory instead
	// (JSON requests whose tensors name regions); Binary is then ignored.
	SharedMemory *SharedMemory
}

// defaultTimeout bounds a request when the options set no timeout: a hung server
// fails the run instead of stalling it.
const defaultTimeout = time.Minute

// HTTPClient speaks the V2 REST protocol to one model.
type HTTPClient struct {
	root   string // scheme://host:port[/path]
	base   string // root/v2/models/{m}[/versions/{v}]
	o      HTTPOptions
	tr     *http.Transport
	client *http.Client
	shm    *shmPool // set by Prepare with SharedMemory
}

var _ Client = (*HTTPClient)(nil)

// NewHTTP checks the options and builds a client; it connects on first use.
func NewHTTP(o HTTPOptions) (*HTTPClient, error) {
	raw := o.URL
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("url %q: want host:port or http(s)://host:port", o.URL)
	}
	if o.Model == "" {
		return nil, errors.New("no model name")
	}
	root := strings.TrimSuffix(u.Scheme+"://"+u.Host+u.Path, "/")
	base := root + "/v2/models/" + url.PathEscape(o.Model)
	if o.Version != "" {
		base += "/versions/" + url.PathEscape(o.Version)
	}
	if o.Timeout <= 0 {
		o.Timeout = defaultTimeout
	}
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        max(o.MaxConns, 2),
		MaxIdleConnsPerHost: max(o.MaxConns, 2),
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	var rt http.RoundTripper = tr
	if len(o.Header) > 0 {
		rt = withHeader{tr, o.Header}
	}
	return &HTTPClient{root: root, base: base, o: o, tr: tr, client: &http.Client{Transport: rt, Timeout: o.Timeout}}, nil
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

// Close releases the shared memory regions, if any, and closes the idle connections;
// requests still running keep theirs until done.
func (c *HTTPClient) Close() error {
	var err error
	if c.shm != nil {
		err = c.shm.close()
	}
	c.tr.CloseIdleConnections()
	return err
}

type tensorMetaJSON struct {
	Name     string  `json:"name"`
	DataType string  `json:"datatype"`
	Shape    []int64 `json:"shape"`
}

// Model reads GET /v2/models/{m} for the inputs and .../config for max_batch_size.
func (c *HTTPClient) Model(ctx context.Context) (Model, error) {
	var md struct {
		Inputs  []tensorMetaJSON `json:"inputs"`
		Outputs []tensorMetaJSON `json:"outputs"`
	}
	if err := c.getJSON(ctx, c.base, &md); err != nil {
		return Model{}, fmt.Errorf("model metadata: %w", err)
	}
	var cfg struct {
		MaxBatchSize     int             `json:"max_batch_size"`
		SequenceBatching json.RawMessage `json:"sequence_batching"`
	}
	if err := c.getJSON(ctx, c.base+"/config", &cfg); err != nil {
		return Model{}, fmt.Errorf("model config: %w", err)
	}
	m := Model{Name: c.o.Model, Version: c.o.Version, MaxBatchSize: cfg.MaxBatchSize,
		Sequence: len(cfg.SequenceBatching) > 0 && string(cfg.SequenceBatching) != "null"}
	for _, in := range md.Inputs {
		dt, err := tensor.ParseDType(in.DataType)
		if err != nil {
			return Model{}, fmt.Errorf("model metadata: input %q: %w", in.Name, err)
		}
		m.Inputs = append(m.Inputs, Input{Name: in.Name, DType: dt, Shape: in.Shape})
	}
	for _, out := range md.Outputs {
		m.Outputs = append(m.Outputs, out.Name)
	}
	return m, nil
}

// Stats reads GET /v2/models/{m}/stats, summed over the versions it lists.
func (c *HTTPClient) Stats(ctx context.Context) (Stats, error) {
	type phase struct {
		Count uint64 `json:"count"`
		Ns    uint64 `json:"ns"`
	}
	var st struct {
		ModelStats []struct {
			InferenceCount uint64 `json:"inference_count"`
			ExecutionCount uint64 `json:"execution_count"`
			InferenceStats struct {
				Queue         phase `json:"queue"`
				ComputeInput  phase `json:"compute_input"`
				ComputeInfer  phase `json:"compute_infer"`
				ComputeOutput phase `json:"compute_output"`
			} `json:"inference_stats"`
		} `json:"model_stats"`
	}
	ph := func(p phase) Phase { return Phase{Count: p.Count, Total: time.Duration(p.Ns)} }
	if err := c.getJSON(ctx, c.base+"/stats", &st); err != nil {
		return Stats{}, fmt.Errorf("model statistics: %w", err)
	}
	var s Stats
	for _, m := range st.ModelStats {
		s.InferenceCount += m.InferenceCount
		s.ExecutionCount += m.ExecutionCount
		is := m.InferenceStats
		s.Queue.add(ph(is.Queue))
		s.ComputeInput.add(ph(is.ComputeInput))
		s.ComputeInfer.add(ph(is.ComputeInfer))
		s.ComputeOutput.add(ph(is.ComputeOutput))
	}
	return s, nil
}

func (c *HTTPClient) getJSON(ctx context.Context, u string, v any) error {
	body, err := c.control(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	return nil
}

// control sends a request other than an inference (metadata, statistics, shared
// memory) and returns the body of its 200 answer.
func (c *HTTPClient) control(ctx context.Context, method, u string, body []byte) ([]byte, error) {
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
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, statusError(resp.StatusCode, b)
	}
	return b, nil
}

// statusError turns a V2 error response ({"error": "..."}) into an error.
func statusError(code int, body []byte) error {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return fmt.Errorf("HTTP %d: %s", code, e.Error)
	}
	return fmt.Errorf("HTTP %d: %.200s", code, body)
}

// httpBody is one encoded infer request. Every body opens with the request's
// parameters, `{"parameters":{`, so that a sequence's can be added there.
type httpBody struct {
	body      []byte
	binary    bool // the binary tensor data extension: tensors follow the JSON part
	headerLen int  // the JSON part's length in a binary request
}

const bodyOpening = `{"parameters":{`

// inSequence is b as step seq of a sequence: a copy with the sequence parameters. The
// zero Step returns b itself.
func (b httpBody) inSequence(seq Step) httpBody {
	if seq == (Step{}) {
		return b
	}
	params := fmt.Appendf(nil, `"sequence_id":%d,"sequence_start":%t,"sequence_end":%t`, seq.ID, seq.Start, seq.End)
	at := len(bodyOpening)
	if b.body[at] != '}' {
		params = append(params, ',')
	}
	out := make([]byte, 0, len(b.body)+len(params))
	out = append(append(append(out, b.body[:at]...), params...), b.body[at:]...)
	return httpBody{body: out, binary: b.binary, headerLen: b.headerLen + len(params)}
}

// Prepare encodes each sample's request body once (with SharedMemory, once per set of
// regions, as each set is made).
func (c *HTTPClient) Prepare(m Model, samples [][]*tensor.Tensor) (Sender, error) {
	if len(samples) == 0 {
		return nil, errors.New("no request to prepare")
	}
	if c.o.SharedMemory != nil {
		return c.prepareShm(m, samples)
	}
	bodies := make([]httpBody, len(samples))
	for i, s := range samples {
		if c.o.Binary {
			bodies[i] = binaryBody(s)
			continue
		}
		var err error
		if bodies[i], err = jsonBody(s); err != nil {
			return nil, err
		}
	}
	return c.sender(bodies), nil
}

// sender sends request i as bodies[i modulo their number].
func (c *HTTPClient) sender(bodies []httpBody) Sender {
	return func(ctx context.Context, i int, seq Step) error {
		return c.infer(ctx, bodies[i%len(bodies)].inSequence(seq))
	}
}

func (c *HTTPClient) infer(ctx context.Context, b httpBody) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/infer", bytes.NewReader(b.body))
	if err != nil {
		return err
	}
	if b.binary {
		req.Header.Set("Content-Type", "application/octet-stream")
		req.Header.Set(headerLength, strconv.Itoa(b.headerLen))
	} else {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return statusError(resp.StatusCode, body)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		return fmt.Errorf("reading the response: %w", err)
	}
	if b.binary {
		// binary_data_output was asked for, so the outputs come after a JSON header.
		h, err := strconv.ParseInt(resp.Header.Get(headerLength), 10, 64)
		if err != nil || h > n {
			return fmt.Errorf("binary response: %s %q does not fit a %d-byte body", headerLength, resp.Header.Get(headerLength), n)
		}
	}
	return nil
}

func jsonBody(inputs []*tensor.Tensor) (httpBody, error) {
	b := []byte(bodyOpening + `},"inputs":[`)
	for i, t := range inputs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendInputHeader(b, t)
		b = append(b, `,"data":`...)
		var err error
		if b, err = v2json.AppendData(b, t); err != nil {
			return httpBody{}, fmt.Errorf("input %q: %w", t.Name, err)
		}
		b = append(b, '}')
	}
	return httpBody{body: append(b, "]}"...)}, nil
}

func binaryBody(inputs []*tensor.Tensor) httpBody {
	b := []byte(bodyOpening + `"binary_data_output":true},"inputs":[`)
	for i, t := range inputs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendInputHeader(b, t)
		b = append(b, `,"parameters":{"binary_data_size":`...)
		b = strconv.AppendInt(b, int64(len(t.Data)), 10)
		b = append(b, "}}"...)
	}
	b = append(b, "]}"...)
	h := len(b)
	for _, t := range inputs {
		b = append(b, t.Data...)
	}
	return httpBody{body: b, binary: true, headerLen: h}
}

// appendInputHeader appends an input's opening: name, shape and datatype.
func appendInputHeader(b []byte, t *tensor.Tensor) []byte {
	name, _ := json.Marshal(t.Name) // a string always marshals
	b = append(b, `{"name":`...)
	b = append(b, name...)
	b = append(b, `,"shape":[`...)
	for i, d := range t.Shape {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, d, 10)
	}
	b = append(b, `],"datatype":"`...)
	b = append(b, t.DType.String()...)
	return append(b, '"')
}
