package rollout

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// defaultGateTimeout bounds a gate call that names no timeout.
const defaultGateTimeout = 10 * time.Second

// gateRequest is what a gate webhook receives.
type gateRequest struct {
	Endpoint  string         `json:"endpoint"`
	Stable    string         `json:"stable"`
	Candidate string         `json:"candidate"`
	Step      int            `json:"step"`
	Weights   map[string]int `json:"weights"`
}

// callGate asks g whether the rollout may go on: a 2xx answer within its timeout is
// GateOK, anything else GateFail (Flagger's rule).
func (c *Controller) callGate(ctx context.Context, g Gate, s Status) Event {
	timeout := g.Timeout.D()
	if timeout == 0 {
		timeout = defaultGateTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := c.postJSON(ctx, g.URL, gateRequest{Endpoint: s.Rollout.Endpoint, Stable: s.Rollout.Stable,
		Candidate: s.Rollout.Candidate, Step: s.Step, Weights: s.Weights})
	if err != nil {
		return Event{Kind: GateFail, Reason: err.Error()}
	}
	return Event{Kind: GateOK}
}

// hookQueue bounds the changes waiting for the event webhooks; past it they are
// dropped (and logged) rather than holding the controller back.
const hookQueue = 256

// hook queues ch for the event webhooks; sendHooks posts them in order.
func (c *Controller) hook(ch Change) {
	if len(c.cfg.EventHooks) == 0 {
		return
	}
	select {
	case c.hooks <- ch:
	default:
		c.log.Warn("rollout event webhooks behind; change dropped", "endpoint", ch.Endpoint, "event", ch.Event)
	}
}

// sendHooks posts every queued change to every event webhook, one at a time so each
// sees them in order, until ctx ends. A failure is only logged: a webhook's outage must
// not hold a rollout (or an abort) back.
func (c *Controller) sendHooks(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case ch := <-c.hooks:
			for _, url := range c.cfg.EventHooks {
				if err := c.postJSON(ctx, url, ch); err != nil {
					c.log.Warn("rollout event webhook failed", "url", url, "endpoint", ch.Endpoint, "err", err)
				}
			}
		}
	}
}

func (c *Controller) postJSON(ctx context.Context, url string, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook %s: %w", url, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("webhook %s: %w", url, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook %s: answered %s", url, resp.Status)
	}
	return nil
}
