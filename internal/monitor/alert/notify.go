package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Message is Alertmanager's webhook payload (version 4), one alert per message: each
// alert (a rule and its model) is its own group.
type Message struct {
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`
	Status            string            `json:"status"` // firing | resolved
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            []Alert           `json:"alerts"`
}

// Alert is one alert of a Message. EndsAt is the zero time while it fires.
type Alert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"` // alertname, model and the rule's labels
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// notification is a message bound for one webhook.
type notification struct {
	body  []byte
	alert string // for logs
	err   error  // the message could not be encoded (a time past year 9999)
}

// amAlert is a's Alertmanager form; e.mu is held. Annotations are the rule's, with
// "value" (the value that was last evaluated) added unless the rule sets it.
func (e *Engine) amAlert(a *alertState) Alert {
	ann := maps.Clone(a.rule.Annotations)
	if ann == nil {
		ann = map[string]string{}
	}
	if _, set := ann["value"]; !set && a.hasValue {
		ann["value"] = strconv.FormatFloat(a.value, 'g', -1, 64)
	}
	status := StateFiring
	if a.state == StateResolved {
		status = StateResolved
	}
	gen := ""
	if e.cfg.ExternalURL != "" {
		gen = strings.TrimSuffix(e.cfg.ExternalURL, "/") + "/api/v1/alerts"
	}
	return Alert{Status: status, Labels: maps.Clone(a.labels), Annotations: ann, StartsAt: a.firedAt.UTC(),
		EndsAt: a.resolved.UTC(), GeneratorURL: gen, Fingerprint: fingerprint(a.labels)}
}

func (e *Engine) notification(w Webhook, a *alertState) notification {
	al := e.amAlert(a)
	group := map[string]string{"alertname": a.rule.Name, "model": a.rule.Model}
	receiver := w.Name
	if receiver == "" {
		receiver = "webhook"
	}
	m := Message{Version: "4", GroupKey: "{}:" + formatLabels(group), Status: al.Status, Receiver: receiver,
		GroupLabels: group, CommonLabels: al.Labels, CommonAnnotations: al.Annotations,
		ExternalURL: e.cfg.ExternalURL, Alerts: []Alert{al}}
	b, err := marshalPlain(m)
	return notification{body: b, alert: a.rule.Name, err: err}
}

// formatLabels is Alertmanager's form of a label set: {a="x", b="y"}, sorted.
func formatLabels(ls map[string]string) string {
	keys := slices.Sorted(maps.Keys(ls))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + strconv.Quote(ls[k])
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// fingerprint is Prometheus's label-set fingerprint: FNV-1a 64 over the sorted names
// and values, each followed by the byte 0xff, in 16 hex digits.
func fingerprint(ls map[string]string) string {
	h := fnv.New64a()
	for _, k := range slices.Sorted(maps.Keys(ls)) {
		h.Write([]byte(k))
		h.Write([]byte{0xff})
		h.Write([]byte(ls[k]))
		h.Write([]byte{0xff})
	}
	return fmt.Sprintf("%016x", h.Sum64())
}

// send delivers ch's notifications to w, one at a time, until ctx ends.
func (e *Engine) send(ctx context.Context, w Webhook, ch <-chan notification) {
	for {
		select {
		case <-ctx.Done():
			return
		case n := <-ch:
			if n.err != nil {
				e.log.Error("alert notification not sent: encoding it failed", "alert", n.alert, "err", n.err)
				continue
			}
			if err := e.post(ctx, w.URL, time.Duration(w.Timeout), w.Retries, n.body); err != nil && ctx.Err() == nil {
				e.log.Warn("alert notification failed", "webhook", w.URL, "alert", n.alert, "err", err)
			}
		}
	}
}

// post sends body as JSON to url: each attempt within timeout (default 10s), again
// after a network error, a 429 or a 5xx, up to retries more times (default 3; -1:
// none), waiting 0.5s, 1s, 2s, … (at most 30s) between.
func (e *Engine) post(ctx context.Context, url string, timeout time.Duration, retries int, body []byte) error {
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	switch {
	case retries == 0:
		retries = 3
	case retries < 0:
		retries = 0
	}
	backoff := 500 * time.Millisecond
	for attempt := 0; ; attempt++ {
		retry, err := e.attempt(ctx, url, timeout, body)
		if err == nil || !retry || attempt >= retries {
			if err != nil {
				return fmt.Errorf("after %d attempts: %w", attempt+1, err)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

func (e *Engine) attempt(ctx context.Context, url string, timeout time.Duration, body []byte) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "ferry-alert")
	resp, err := e.client.Do(req)
	if err != nil {
		return true, err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 == 2 {
		return false, nil
	}
	retry = resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500
	return retry, fmt.Errorf("%s answered %s: %s", url, resp.Status, bytes.TrimSpace(msg))
}

// marshalPlain is json.Marshal without HTML escaping: URLs in payloads keep their '&'
// (a receiver or a shell script reading data_uri gets it as written).
func marshalPlain(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
