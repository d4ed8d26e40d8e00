package mgmtclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ferryml/ferry/internal/mgmtapi"
)

// Client talks to one server. Actor and Reason, when set, are sent with every request
// and land in the server's audit trail.
type Client struct {
	base   *url.URL
	hc     *http.Client
	Actor  string
	Reason string
}

// DefaultTimeout bounds a request when New is given no client. Pushes of large
// artifacts want a client of their own with a longer timeout.
const DefaultTimeout = 5 * time.Minute

// New returns a client of the server at server ("http://HOST:PORT"); hc nil means a
// client with DefaultTimeout.
func New(server string, hc *http.Client) (*Client, error) {
	u, err := url.Parse(strings.TrimSuffix(server, "/"))
	if err != nil {
		return nil, fmt.Errorf("server %q: %w", server, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("server %q: want http://HOST:PORT or https://HOST:PORT", server)
	}
	if hc == nil {
		hc = &http.Client{Timeout: DefaultTimeout}
	}
	return &Client{base: u, hc: hc}, nil
}

// Error is a failure the server answered: its status and message.
type Error struct {
	Status  int
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("server answered %d %s: %s", e.Status, http.StatusText(e.Status), e.Message)
}

// StatusOf is err's HTTP status when the server answered it, else 0.
func StatusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// path joins segments under /api/v1/, escaping each (a '/' in a name stays in it).
func path(segs ...string) string {
	esc := make([]string, len(segs))
	for i, s := range segs {
		esc[i] = url.PathEscape(s)
	}
	return mgmtapi.Prefix + strings.Join(esc, "/")
}

// call is c.call for an answer of type T.
func call[T any](ctx context.Context, c *Client, method, p string, query url.Values, in any) (T, error) {
	var out T
	err := c.call(ctx, method, p, query, in, &out)
	return out, err
}

// call sends a request with a JSON body (in, unless nil) and decodes a JSON answer
// into out (unless nil).
func (c *Client) call(ctx context.Context, method, p string, query url.Values, in, out any) error {
	var body io.Reader
	header := http.Header{}
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("%s %s: encoding the body: %w", method, p, err)
		}
		body = bytes.NewReader(b)
		header.Set("Content-Type", "application/json")
	}
	return c.send(ctx, method, p, query, header, body, out)
}

func (c *Client) send(ctx context.Context, method, p string, query url.Values, header http.Header, body io.Reader, out any) error {
	resp, err := c.do(ctx, method, p, query, header, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: reading the answer: %w", method, p, err)
	}
	if resp.StatusCode >= 300 {
		return answerError(resp.StatusCode, b)
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: decoding the answer: %w", method, p, err)
	}
	return nil
}

// do sends a request and returns the server's answer, whatever its status.
func (c *Client) do(ctx context.Context, method, p string, query url.Values, header http.Header, body io.Reader) (*http.Response, error) {
	u := *c.base
	u.RawPath = c.base.EscapedPath() + p
	u.Path = c.base.Path + unescaped(p)
	u.RawQuery = query.Encode()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "application/json")
	}
	if c.Actor != "" {
		req.Header.Set(mgmtapi.HeaderActor, c.Actor)
	}
	if c.Reason != "" {
		req.Header.Set(mgmtapi.HeaderReason, c.Reason)
	}
	return c.hc.Do(req)
}

// answerError keeps the server's {"error": ...} message, or the start of whatever
// else it sent.
func answerError(status int, b []byte) error {
	var e mgmtapi.Error
	if json.Unmarshal(b, &e) == nil && e.Error != "" {
		return &Error{Status: status, Message: e.Error}
	}
	msg := strings.TrimSpace(string(b))
	if len(msg) > 200 {
		msg = msg[:200] + "..."
	}
	return &Error{Status: status, Message: msg}
}

func unescaped(p string) string {
	u, err := url.PathUnescape(p)
	if err != nil {
		return p
	}
	return u
}

func jsonString(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}
