package remote

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
	"time"

	"github.com/ferryml/ferry/internal/modelconfig"
	"github.com/ferryml/ferry/internal/tensor"
)

const headerLength = "Inference-Header-Content-Length"

// restClient speaks V2 REST with the binary tensor data extension: inputs go as raw bytes
// after a JSON header, and outputs are asked for the same way.
type restClient struct {
	o    Options
	base string // http(s)://host:port/v2/models/{model}[/versions/{version}]
	hc   *http.Client
}

func newREST(o Options) *restClient {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: o.Timeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 256, // hedges and instances keep several connections busy
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		TLSClientConfig:     o.TLS,
	}
	scheme := "http://"
	if o.TLS != nil {
		scheme = "https://"
	}
	base := scheme + o.Addr + "/v2/models/" + url.PathEscape(o.Model)
	if o.Version != "" {
		base += "/versions/" + o.Version
	}
	return &restClient{o: o, base: base, hc: &http.Client{Transport: tr, Timeout: o.Timeout}}
}

func (c *restClient) close() { c.hc.CloseIdleConnections() }

type restTensor struct {
	Name       string          `json:"name"`
	Shape      []int64         `json:"shape"`
	Datatype   string          `json:"datatype,omitempty"`
	Parameters map[string]any  `json:"parameters,omitempty"`
	Data       json.RawMessage `json:"data,omitempty"`
}

type restRequested struct {
	Name       string         `json:"name"`
	Parameters map[string]any `json:"parameters"`
}

type restRequest struct {
	Inputs     []restTensor    `json:"inputs"`
	Outputs    []restRequested `json:"outputs,omitempty"`
	Parameters map[string]any  `json:"parameters,omitempty"`
}

type restResponse struct {
	Outputs []restTensor `json:"outputs"`
	Error   string       `json:"error"`
}

// prepare encodes the request body once; every try resends the same bytes.
func (c *restClient) prepare(in []*tensor.Tensor, want []string) (sender, error) {
	req := restRequest{Inputs: make([]restTensor, len(in))}
	size := 0
	for i, t := range in {
		req.Inputs[i] = restTensor{Name: t.Name, Shape: append([]int64{}, t.Shape...), Datatype: t.DType.String(),
			Parameters: map[string]any{"binary_data_size": len(t.Data)}}
		size += len(t.Data)
	}
	if want == nil {
		req.Parameters = map[string]any{"binary_data_output": true}
	}
	for _, name := range want {
		req.Outputs = append(req.Outputs, restRequested{Name: name, Parameters: map[string]any{"binary_data": true}})
	}
	header, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	body := make([]byte, 0, len(header)+size)
	body = append(body, header...)
	for _, t := range in {
		body = append(body, t.Data...)
	}
	hlen := strconv.Itoa(len(header))
	return func(ctx context.Context) ([]*tensor.Tensor, error) {
		r, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/infer", bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		r.Header.Set("Content-Type", "application/octet-stream")
		r.Header.Set(headerLength, hlen)
		resp, b, err := c.do(r)
		if err != nil {
			return nil, err
		}
		outs, err := decodeREST(resp.Header.Get(headerLength), b)
		if err != nil {
			return nil, c.fail(failure, "HTTP 200", "unreadable response: "+err.Error())
		}
		return selectOutputs(outs, want)
	}, nil
}

// do sends r and reads the whole answer; a non-200 answer is an *Error.
func (c *restClient) do(r *http.Request) (*http.Response, []byte, error) {
	resp, err := c.hc.Do(r)
	if err != nil {
		return nil, nil, c.transportError(r.Context(), err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, c.transportError(r.Context(), err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, nil, c.statusError(resp.StatusCode, b)
	}
	return resp, b, nil
}

func (c *restClient) transportError(ctx context.Context, err error) error {
	switch {
	case errors.Is(ctx.Err(), context.Canceled):
		return c.fail(abandoned, "", "try cancelled")
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		e := c.fail(failure, "", fmt.Sprintf("no answer within the per-try timeout (%v)", c.o.Timeout))
		e.busy = true
		return e
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // the URL is in the message already
	}
	e := c.fail(failure, "", err.Error())
	e.busy = true
	return e
}

func (c *restClient) statusError(code int, body []byte) error {
	var msg restResponse
	if json.Unmarshal(body, &msg) != nil || msg.Error == "" {
		msg.Error = string(bytes.TrimSpace(body[:min(len(body), 512)]))
	}
	e := c.fail(refused, "HTTP "+strconv.Itoa(code), msg.Error)
	switch {
	case code >= 500:
		e.kind = failure
		e.busy = code == http.StatusBadGateway || code == http.StatusServiceUnavailable || code == http.StatusGatewayTimeout
	case code == http.StatusTooManyRequests:
		e.busy = true
	case code == http.StatusBadRequest, code == http.StatusRequestEntityTooLarge, code == http.StatusUnprocessableEntity:
		e.invalid = true
	}
	return e
}

func (c *restClient) fail(kind outcome, status, msg string) *Error {
	return &Error{Upstream: c.o.URL, Model: c.o.Model, Status: status, Msg: msg, kind: kind}
}

// decodeREST splits a response into its JSON header and binary section and builds the
// outputs, in the order the upstream sent them.
func decodeREST(hlen string, b []byte) ([]*tensor.Tensor, error) {
	n := len(b)
	if hlen != "" {
		v, err := strconv.Atoi(hlen)
		if err != nil || v < 0 || v > len(b) {
			return nil, fmt.Errorf("%s %q does not fit a body of %d bytes", headerLength, hlen, len(b))
		}
		n = v
	}
	var resp restResponse
	if err := json.Unmarshal(b[:n], &resp); err != nil {
		return nil, err
	}
	bin := b[n:]
	outs := make([]*tensor.Tensor, 0, len(resp.Outputs))
	for _, o := range resp.Outputs {
		dt, err := tensor.ParseDType(o.Datatype)
		if err != nil {
			return nil, fmt.Errorf("output %q: %v", o.Name, err)
		}
		var data []byte
		if size, ok := o.Parameters["binary_data_size"].(float64); ok {
			if size < 0 || int(size) > len(bin) {
				return nil, fmt.Errorf("output %q: binary_data_size %v but %d bytes remain", o.Name, size, len(bin))
			}
			data, bin = bin[:int(size):int(size)], bin[int(size):]
		} else if data, err = rawFromJSON(dt, o.Data); err != nil {
			return nil, fmt.Errorf("output %q: %v", o.Name, err)
		}
		t := &tensor.Tensor{Name: o.Name, DType: dt, Shape: o.Shape, Data: data}
		if err := t.Validate(); err != nil {
			return nil, fmt.Errorf("output %q: %v", o.Name, err)
		}
		outs = append(outs, t)
	}
	return outs, nil
}

// selectOutputs returns the outputs asked for, in the order asked (all when want is nil).
func selectOutputs(outs []*tensor.Tensor, want []string) ([]*tensor.Tensor, error) {
	if want == nil {
		return outs, nil
	}
	sel := make([]*tensor.Tensor, len(want))
	for i, name := range want {
		for _, t := range outs {
			if t.Name == name {
				sel[i] = t
				break
			}
		}
		if sel[i] == nil {
			return nil, fmt.Errorf("the upstream's answer has no output %q", name)
		}
	}
	return sel, nil
}

type restMetadata struct {
	Inputs  []restTensor `json:"inputs"`
	Outputs []restTensor `json:"outputs"`
	Error   string       `json:"error"`
}

func (c *restClient) metadata(ctx context.Context) (modelconfig.IO, error) {
	r, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base, nil)
	if err != nil {
		return modelconfig.IO{}, err
	}
	_, b, err := c.do(r)
	if err != nil {
		return modelconfig.IO{}, err
	}
	var md restMetadata
	if err := json.Unmarshal(b, &md); err != nil {
		return modelconfig.IO{}, c.fail(failure, "HTTP 200", "unreadable model metadata: "+err.Error())
	}
	io, err := tensorInfos(md.Inputs, md.Outputs)
	if err != nil {
		return modelconfig.IO{}, c.fail(refused, "", "model metadata: "+err.Error())
	}
	io.MaxBatchSize = c.maxBatchSize(ctx)
	return io, nil
}

// maxBatchSize reads max_batch_size from the upstream's model configuration (Triton's
// and Ferry's GET .../config); 0 when the upstream has no such endpoint.
func (c *restClient) maxBatchSize(ctx context.Context) int32 {
	r, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/config", nil)
	if err != nil {
		return 0
	}
	_, b, err := c.do(r)
	if err != nil {
		return 0
	}
	var cfg struct {
		MaxBatchSize int32 `json:"max_batch_size"`
	}
	if json.Unmarshal(b, &cfg) != nil {
		return 0
	}
	return max(cfg.MaxBatchSize, 0)
}

func tensorInfos(ins, outs []restTensor) (modelconfig.IO, error) {
	var io modelconfig.IO
	for _, group := range []struct {
		from []restTensor
		to   *[]modelconfig.TensorInfo
	}{{ins, &io.Inputs}, {outs, &io.Outputs}} {
		for _, t := range group.from {
			dt, err := tensor.ParseDType(t.Datatype)
			if err != nil {
				return io, fmt.Errorf("tensor %q: %v", t.Name, err)
			}
			*group.to = append(*group.to, modelconfig.TensorInfo{Name: t.Name, DType: dt, Shape: tensor.Shape(t.Shape)})
		}
	}
	return io, nil
}

// ready asks the upstream whether the model (version) is ready: 200 means yes.
func (c *restClient) ready(ctx context.Context) error {
	r, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/ready", nil)
	if err != nil {
		return err
	}
	_, _, err = c.do(r)
	return err
}
