package remote

import (
	"context"
	"errors"
	"fmt"
	"github.com/ferryml/ferry/internal/netguard"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"

	"github.com/ferryml/ferry/internal/modelconfig"
	"github.com/ferryml/ferry/internal/tensor"
	"github.com/ferryml/ferry/internal/v2client"
)

// sender makes one try of a prepared request. It is safe to call concurrently (a hedge)
// and repeatedly (a retry).
type sender func(ctx context.Context) ([]*tensor.Tensor, error)

// v2model is what the upstream's model answers over either protocol.
type v2model interface {
	Metadata(ctx context.Context) (v2client.Metadata, error)
	Config(ctx context.Context) (v2client.Config, error)
	Ready(ctx context.Context) error
}

// client speaks one protocol to the upstream through v2client; safe for concurrent use.
// Its errors are *Error, classified by outcome.
type client struct {
	o     Options
	model v2model
	// encode prepares a request once; the sender it returns sends it.
	encode func(*v2client.Request) (func(context.Context) (*v2client.Response, error), error)
	close  func()
}

func newClient(o Options, guard *netguard.Policy) (*client, error) {
	if guard != nil {
		if err := checkLiteral(o.Addr, guard); err != nil {
			return nil, modelconfig.ParamCause("url", err)
		}
	}
	if o.Protocol == GRPC {
		return newGRPC(o, guard)
	}
	return newREST(o, guard)
}

// checkLiteral refuses an upstream whose host is an address the guard denies, at load
// rather than at the first request; names are checked when dialled.
func checkLiteral(hostport string, guard *netguard.Policy) error {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	if a, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		return guard.Check(a)
	}
	return nil
}

// newREST asks for binary outputs: raw bytes after a JSON header, the fast path.
func newREST(o Options, guard *netguard.Policy) (*client, error) {
	ro := v2client.RESTOptions{URL: o.Addr, TLS: o.TLS, Timeout: o.Timeout, DialTimeout: o.Timeout,
		MaxConns: 256} // hedges and instances keep several connections busy
	if guard != nil {
		ro.DialControl, ro.CheckRedirect = guard.Control, guard.CheckRedirect
	}
	scheme := "http://"
	if o.TLS != nil {
		scheme = "https://"
	}
	ro.URL = scheme + o.Addr
	c, err := v2client.NewREST(ro)
	if err != nil {
		return nil, modelconfig.ParamCause("url", err)
	}
	m := c.Model(o.Model, o.Version)
	return &client{o: o, model: m, close: c.Close,
		encode: func(r *v2client.Request) (func(context.Context) (*v2client.Response, error), error) {
			r.Binary = true
			body, err := v2client.EncodeREST(r)
			if err != nil {
				return nil, err
			}
			return func(ctx context.Context) (*v2client.Response, error) { return m.Send(ctx, body) }, nil
		}}, nil
}

func newGRPC(o Options, guard *netguard.Policy) (*client, error) {
	dial := []grpc.DialOption{
		// grpc-go's reconnect backoff grows to 2 minutes; an upstream that comes back
		// should be found within seconds, when the breaker or health check next asks.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 2 * time.Second},
			MinConnectTimeout: min(o.Timeout, 20*time.Second),
		})}
	if guard != nil {
		dial = append(dial, grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			return guard.DialContext(ctx, "tcp", addr)
		}))
	}
	c, err := v2client.NewGRPC(v2client.GRPCOptions{Addr: o.Addr, TLS: o.TLS, DialOptions: dial})
	if err != nil {
		return nil, modelconfig.ParamCause("url", err)
	}
	m := c.Model(o.Model, o.Version)
	return &client{o: o, model: m, close: func() { c.Close() },
		encode: func(r *v2client.Request) (func(context.Context) (*v2client.Response, error), error) {
			req, err := m.EncodeGRPC(r)
			if err != nil {
				return nil, err
			}
			return func(ctx context.Context) (*v2client.Response, error) { return m.Send(ctx, req) }, nil
		}}, nil
}

// prepare encodes the request once; every try resends it.
func (c *client) prepare(in []*tensor.Tensor, want []string) (sender, error) {
	send, err := c.encode(&v2client.Request{Inputs: in, Outputs: want})
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) ([]*tensor.Tensor, error) {
		resp, err := send(ctx)
		if err != nil {
			return nil, c.classify(ctx, err)
		}
		if want == nil {
			return resp.Outputs, nil
		}
		outs, err := resp.Select(want)
		if err != nil {
			return nil, c.fail(failure, "", err.Error())
		}
		return outs, nil
	}, nil
}

func (c *client) metadata(ctx context.Context) (modelconfig.IO, error) {
	md, err := c.model.Metadata(ctx)
	if err != nil {
		return modelconfig.IO{}, c.classify(ctx, err)
	}
	io := modelconfig.IO{Inputs: tensorInfos(md.Inputs), Outputs: tensorInfos(md.Outputs)}
	// max_batch_size comes from the upstream's configuration, when it serves one.
	if cfg, err := c.model.Config(ctx); err == nil {
		io.MaxBatchSize = cfg.MaxBatchSize
	}
	return io, nil
}

func tensorInfos(ts []v2client.TensorMeta) []modelconfig.TensorInfo {
	out := make([]modelconfig.TensorInfo, len(ts))
	for i, t := range ts {
		out[i] = modelconfig.TensorInfo{Name: t.Name, DType: t.DType, Shape: tensor.Shape(t.Shape)}
	}
	return out
}

// ready asks the upstream whether the model (version) is ready.
func (c *client) ready(ctx context.Context) error {
	if err := c.model.Ready(ctx); err != nil {
		return c.classify(ctx, err)
	}
	return nil
}

func (c *client) fail(kind outcome, status, msg string) *Error {
	return &Error{Upstream: c.o.URL, Model: c.o.Model, Status: status, Msg: msg, kind: kind}
}

// classify turns a v2client error into an *Error: whether it is the upstream's fault
// (retried, counted by the breaker), a refusal, or our own cancellation; and whether
// core should answer 400 (invalid) or 503 (busy).
func (c *client) classify(ctx context.Context, err error) *Error {
	switch {
	case errors.Is(ctx.Err(), context.Canceled):
		return c.fail(abandoned, "", "try cancelled")
	case errors.Is(ctx.Err(), context.DeadlineExceeded), isDeadline(err):
		// The upstream sees our per-try deadline too, and may report it first.
		e := c.fail(failure, "", fmt.Sprintf("no answer within the per-try timeout (%v)", c.o.Timeout))
		e.busy = true
		return e
	}
	if errors.Is(err, v2client.ErrBadResponse) {
		return c.fail(failure, "", err.Error())
	}
	var ve *v2client.Error
	if !errors.As(err, &ve) {
		// No answer, or one we cannot read: the upstream's fault either way.
		e := c.fail(failure, "", err.Error())
		e.busy = true
		return e
	}
	if ve.HTTPStatus != 0 {
		return c.httpStatus(ve)
	}
	return c.grpcStatus(ve)
}

// isDeadline reports an upstream's gRPC DEADLINE_EXCEEDED: our per-try deadline, seen
// there first.
func isDeadline(err error) bool {
	var ve *v2client.Error
	return errors.As(err, &ve) && ve.HTTPStatus == 0 && ve.Code == codes.DeadlineExceeded
}

func (c *client) httpStatus(ve *v2client.Error) *Error {
	code := ve.HTTPStatus
	e := c.fail(refused, ve.Status(), ve.Msg)
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

func (c *client) grpcStatus(ve *v2client.Error) *Error {
	e := c.fail(refused, ve.Status(), ve.Msg)
	switch ve.Code {
	case codes.OK: // answered, but not ready
		e.kind, e.busy = failure, true
	case codes.Canceled, codes.DeadlineExceeded, codes.Unavailable:
		e.kind, e.busy = failure, true
	case codes.Internal, codes.Unknown, codes.DataLoss, codes.Aborted:
		e.kind = failure
	case codes.ResourceExhausted:
		e.busy = true
	case codes.InvalidArgument, codes.OutOfRange, codes.FailedPrecondition:
		e.invalid = true
	}
	return e
}
