package mgmtclient

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/ferryml/ferry/internal/mgmtapi"
	"github.com/ferryml/ferry/internal/registry"
	"github.com/ferryml/ferry/internal/rollout"
	"github.com/ferryml/ferry/internal/router"
)

// Models lists the registered models with their versions and aliases.
func (c *Client) Models(ctx context.Context) ([]mgmtapi.Model, error) {
	return call[[]mgmtapi.Model](ctx, c, "GET", path("models"), nil, nil)
}

// Model is one registered model with its versions and aliases.
func (c *Client) Model(ctx context.Context, name string) (mgmtapi.Model, error) {
	return call[mgmtapi.Model](ctx, c, "GET", path("models", name), nil, nil)
}

// CreateModel registers a model.
func (c *Client) CreateModel(ctx context.Context, m mgmtapi.NewModel) (mgmtapi.Model, error) {
	return call[mgmtapi.Model](ctx, c, "POST", path("models"), nil, m)
}

// UpdateModel changes the fields p sets.
func (c *Client) UpdateModel(ctx context.Context, name string, p mgmtapi.ModelPatch) (mgmtapi.Model, error) {
	return call[mgmtapi.Model](ctx, c, "PATCH", path("models", name), nil, p)
}

// DeleteModel removes a model with its versions and aliases.
func (c *Client) DeleteModel(ctx context.Context, name string) error {
	return c.call(ctx, "DELETE", path("models", name), nil, nil, nil)
}

// Versions lists a model's versions, oldest first.
func (c *Client) Versions(ctx context.Context, model string) ([]registry.ModelVersion, error) {
	return call[[]registry.ModelVersion](ctx, c, "GET", path("models", model, "versions"), nil, nil)
}

// Version is one version; label is a number, an alias or "latest".
func (c *Client) Version(ctx context.Context, model, label string) (registry.ModelVersion, error) {
	return call[registry.ModelVersion](ctx, c, "GET", path("models", model, "versions", label), nil, nil)
}

// PushVersion uploads a version folder as a tar stream (application/x-tar, the
// metadata in the X-Ferry-Version-Meta header) and returns the registered version.
func (c *Client) PushVersion(ctx context.Context, model string, meta mgmtapi.VersionMeta, tar io.Reader) (registry.ModelVersion, error) {
	m, err := jsonString(meta)
	if err != nil {
		return registry.ModelVersion{}, err
	}
	h := http.Header{}
	h.Set("Content-Type", mgmtapi.ContentTar)
	h.Set(mgmtapi.HeaderVersionMeta, m)
	var out registry.ModelVersion
	return out, c.send(ctx, "POST", path("models", model, "versions"), nil, h, tar, &out)
}

// TransitionStage moves a version to a stage.
func (c *Client) TransitionStage(ctx context.Context, model string, version int64, req mgmtapi.StageRequest) (registry.ModelVersion, error) {
	return call[registry.ModelVersion](ctx, c, "POST", path("models", model, "versions", strconv.FormatInt(version, 10), "stage"), nil, req)
}

// Aliases is a model's aliases (alias -> version).
func (c *Client) Aliases(ctx context.Context, model string) (map[string]int64, error) {
	return call[map[string]int64](ctx, c, "GET", path("models", model, "aliases"), nil, nil)
}

// SetAlias points alias at version, creating or moving it.
func (c *Client) SetAlias(ctx context.Context, model, alias string, version int64) (mgmtapi.Alias, error) {
	return call[mgmtapi.Alias](ctx, c, "PUT", path("models", model, "aliases", alias), nil, mgmtapi.AliasRequest{Version: version})
}

// DeleteAlias removes an alias.
func (c *Client) DeleteAlias(ctx context.Context, model, alias string) error {
	return c.call(ctx, "DELETE", path("models", model, "aliases", alias), nil, nil, nil)
}

// Endpoints lists the endpoints with a policy (stored or live).
func (c *Client) Endpoints(ctx context.Context) ([]mgmtapi.Endpoint, error) {
	return call[[]mgmtapi.Endpoint](ctx, c, "GET", path("endpoints"), nil, nil)
}

// Endpoint is one endpoint's stored and live policies.
func (c *Client) Endpoint(ctx context.Context, name string) (mgmtapi.Endpoint, error) {
	return call[mgmtapi.Endpoint](ctx, c, "GET", path("endpoints", name), nil, nil)
}

// SetEndpoint replaces an endpoint's policy.
func (c *Client) SetEndpoint(ctx context.Context, name string, p *router.Policy) (mgmtapi.Endpoint, error) {
	return call[mgmtapi.Endpoint](ctx, c, "PUT", path("endpoints", name), nil, p)
}

// Rollouts lists every endpoint's rollout.
func (c *Client) Rollouts(ctx context.Context) ([]rollout.Status, error) {
	return call[[]rollout.Status](ctx, c, "GET", path("rollouts"), nil, nil)
}

// StartRollout starts r (a 409 *Error when its endpoint has one in progress).
func (c *Client) StartRollout(ctx context.Context, r rollout.Rollout) (rollout.Status, error) {
	return call[rollout.Status](ctx, c, "POST", path("rollouts"), nil, r)
}

// Rollout is an endpoint's rollout status with its history.
func (c *Client) Rollout(ctx context.Context, endpoint string) (mgmtapi.RolloutDetail, error) {
	return call[mgmtapi.RolloutDetail](ctx, c, "GET", path("rollouts", endpoint), nil, nil)
}

// RolloutAction promotes, pauses, resumes or aborts (mgmtapi.Action*) and returns
// the status after it.
func (c *Client) RolloutAction(ctx context.Context, endpoint, action string) (rollout.Status, error) {
	return call[rollout.Status](ctx, c, "POST", path("rollouts", endpoint, action), nil, nil)
}

// Audit lists audit rows matching f, oldest first.
func (c *Client) Audit(ctx context.Context, f registry.AuditFilter) ([]mgmtapi.AuditEntry, error) {
	q := url.Values{}
	for k, v := range map[string]string{"object": f.Object, "actor": f.Actor, "action": f.Action} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	if !f.Since.IsZero() {
		q.Set("since", f.Since.Format(time.RFC3339))
	}
	return call[[]mgmtapi.AuditEntry](ctx, c, "GET", path("audit"), q, nil)
}
