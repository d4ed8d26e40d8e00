package mgmtclient

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/ferryml/ferry/internal/mgmtapi"
)

// Logs copies the inference log entries q selects to w as the server sends them: one
// JSON entry per line.
func (c *Client) Logs(ctx context.Context, q mgmtapi.LogQuery, w io.Writer) error {
	h := http.Header{}
	h.Set("Accept", mgmtapi.ContentJSONLines)
	resp, err := c.do(ctx, "GET", path("logs"), q.Values(), h, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return answerError(resp.StatusCode, b)
	}
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("GET %s: reading the answer: %w", path("logs"), err)
	}
	return nil
}
