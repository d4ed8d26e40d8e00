package mgmtclient

import (
	"context"
	"net/url"

	"github.com/ferryml/ferry/internal/mgmtapi"
)

// SubmitJob starts a server-side batch job.
func (c *Client) SubmitJob(ctx context.Context, spec mgmtapi.JobSpec) (mgmtapi.Job, error) {
	return call[mgmtapi.Job](ctx, c, "POST", path("jobs"), nil, spec)
}

// Job is one job's status and progress.
func (c *Client) Job(ctx context.Context, id string) (mgmtapi.Job, error) {
	return call[mgmtapi.Job](ctx, c, "GET", path("jobs", id), nil, nil)
}

// Jobs lists the server's jobs, newest first; state "" lists every state.
func (c *Client) Jobs(ctx context.Context, state string) ([]mgmtapi.Job, error) {
	var q url.Values
	if state != "" {
		q = url.Values{"state": {state}}
	}
	return call[[]mgmtapi.Job](ctx, c, "GET", path("jobs"), q, nil)
}

// CancelJob stops a job; its committed chunks stay, so submitting it again resumes.
func (c *Client) CancelJob(ctx context.Context, id string) (mgmtapi.Job, error) {
	return call[mgmtapi.Job](ctx, c, "POST", path("jobs", id, "cancel"), nil, nil)
}
