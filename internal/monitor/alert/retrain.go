package alert

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"time"
)

// RetrainRequest is what the retraining hook gets, as JSON: the model, the version
// (Config.Version's answer), the alert as Alertmanager shows it, and the logged data
// to retrain on: from the rule's window before the alert became active to its firing.
type RetrainRequest struct {
	Model   string    `json:"model"`
	Version string    `json:"version,omitempty"`
	Alert   Alert     `json:"alert"`
	Start   time.Time `json:"start"`
	End     time.Time `json:"end"`
	DataURI string    `json:"data_uri,omitempty"`
}

// retrainRequest describes a's firing; e.mu is held.
func (e *Engine) retrainRequest(a *alertState) RetrainRequest {
	r := RetrainRequest{Model: a.rule.Model, Alert: e.amAlert(a),
		Start: a.activeAt.Add(-time.Duration(a.rule.Window)).UTC(), End: a.firedAt.UTC()}
	if e.cfg.Version != nil {
		r.Version = e.cfg.Version(r.Model)
	}
	if e.cfg.DataURI != nil {
		r.DataURI = e.cfg.DataURI(r.Model, r.Start, r.End)
	}
	return r
}

// retrain calls the hook's webhook and command; it runs on the hook goroutine.
func (e *Engine) retrain(ctx context.Context, req RetrainRequest) {
	rt := e.cfg.Retrain
	timeout := time.Duration(rt.Timeout)
	if timeout <= 0 {
		timeout = 10 * time.Minute
	}
	body, err := marshalPlain(req)
	if err != nil {
		e.log.Error("retrain hook: encoding the request", "err", err)
		return
	}
	if rt.URL != "" {
		if err := e.post(ctx, rt.URL, timeout, 0, body); err != nil {
			e.log.Error("retrain webhook failed", "model", req.Model, "alert", req.Alert.Labels["alertname"], "err", err)
		}
	}
	if len(rt.Command) > 0 {
		if err := runCommand(ctx, rt.Command, timeout, body, req); err != nil {
			e.log.Error("retrain command failed", "model", req.Model, "alert", req.Alert.Labels["alertname"], "err", err)
		} else {
			e.log.Info("retrain command ran", "model", req.Model, "alert", req.Alert.Labels["alertname"])
		}
	}
}

// runCommand runs argv with body on stdin and the request in FERRY_* variables,
// killing it at timeout.
func runCommand(ctx context.Context, argv []string, timeout time.Duration, body []byte, req RetrainRequest) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdin = bytes.NewReader(body)
	cmd.Env = append(cmd.Environ(), "FERRY_MODEL="+req.Model, "FERRY_VERSION="+req.Version,
		"FERRY_ALERT="+req.Alert.Labels["alertname"], "FERRY_DATA_URI="+req.DataURI)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = time.Second // a child holding the pipes open does not hold us
	if err := cmd.Run(); err != nil {
		tail := out.Bytes()
		if len(tail) > 512 {
			tail = tail[len(tail)-512:]
		}
		return fmt.Errorf("%s: %w: %s", argv[0], err, bytes.TrimSpace(tail))
	}
	return nil
}
