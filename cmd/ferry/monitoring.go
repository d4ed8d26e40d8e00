package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
	"sigs.k8s.io/yaml"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/mgmtapi"
	"github.com/ferryml/ferry/internal/monitor/alert"
	"github.com/ferryml/ferry/internal/monitor/drift"
	"github.com/ferryml/ferry/internal/monitor/inferlog"
	"github.com/ferryml/ferry/internal/monitor/quality"
	"github.com/ferryml/ferry/internal/rollout"
	"github.com/ferryml/ferry/internal/transport/mgmt"
)

// monitoringConfig is how ferry serve watches its models in production (docs/monitoring.md):
// --monitoring FILE holds every section; --inference-log DIR is the common case alone.
type monitoringConfig struct {
	file         string
	inferenceLog string
}

// monitoringFile is --monitoring's YAML.
type monitoringFile struct {
	// InferenceLog captures requests and responses to files, Kafka or CloudEvents.
	InferenceLog *inferlog.Config `json:"inference_log,omitempty"`
	// Drift compares live traffic with each watched model's baseline.
	Drift *drift.Config `json:"drift,omitempty"`
	// Feedback joins ground truth to the inference log (it needs the log's files).
	Feedback *feedbackConfig `json:"feedback,omitempty"`
	// Alerts are rules over drift, quality and request metrics.
	Alerts *alert.Config `json:"alerts,omitempty"`
}

// feedbackConfig is the ground-truth section.
type feedbackConfig struct {
	// Dir keeps the labels (default: feedback/ beside the inference log's files).
	Dir string `json:"dir,omitempty"`
	// Window is the span quality metrics and alerts read (default 1h).
	Window alert.Duration `json:"window,omitempty"`
	// Refresh is how often the metrics alerts read are recomputed (default 1m).
	Refresh alert.Duration `json:"refresh,omitempty"`
	// Models say what a model predicts: task, class names, and the output scored
	// (default its first).
	Models map[string]feedbackModel `json:"models,omitempty"`
}

type feedbackModel struct {
	quality.ModelConfig
	Output string `json:"output,omitempty"`
}

func (c *monitoringConfig) addFlags(f *pflag.FlagSet) {
	f.StringVar(&c.file, "monitoring", "", "YAML file configuring the inference log, drift, feedback and alerts (docs/monitoring.md)")
	f.StringVar(&c.inferenceLog, "inference-log", "", "log every request and response as JSON lines in this directory (the inference_log section's dir)")
}

// load reads the file and applies --inference-log; the sections' own validation runs
// when they are built.
func (c monitoringConfig) load() (*monitoringFile, error) {
	mf := &monitoringFile{}
	if c.file != "" {
		b, err := os.ReadFile(c.file)
		if err != nil {
			return nil, fmt.Errorf("--monitoring: %w", err)
		}
		if err := yaml.UnmarshalStrict(b, mf); err != nil {
			return nil, fmt.Errorf("--monitoring %s: %w", c.file, err)
		}
	}
	if c.inferenceLog != "" {
		if mf.InferenceLog == nil {
			mf.InferenceLog = &inferlog.Config{}
		}
		mf.InferenceLog.Dir = c.inferenceLog
	}
	if mf.Feedback != nil && (mf.InferenceLog == nil || mf.InferenceLog.Dir == "") {
		return nil, errors.New("--monitoring: feedback needs an inference log with a dir to join labels to")
	}
	return mf, nil
}

// monitoring is what the monitoring sections built; each part may be nil.
type monitoring struct {
	log      *inferlog.Logger
	drift    *drift.Monitor
	refresh  time.Duration // quality's recomputation period (0: its default)
	quality  *quality.Store
	alerts   *alert.Engine
	requests *alert.Requests // error rate and latency, for alert rules
}

// newMonitoring builds the configured parts; it starts nothing (run does). aborter
// aborts a model's rollout for rules with abort_rollout (nil: no platform); baseURL
// is where the data windows handed to retraining are read from.
func newMonitoring(c monitoringConfig, aborter func(ctx context.Context, model string) error, baseURL func() string, log *slog.Logger) (m *monitoring, err error) {
	mf, err := c.load()
	if err != nil {
		return nil, err
	}
	m = &monitoring{}
	defer func() {
		if err != nil {
			m.close(context.Background())
		}
	}()
	if mf.InferenceLog != nil {
		if m.log, err = inferlog.New(*mf.InferenceLog, log.With("component", "inferlog")); err != nil {
			return nil, fmt.Errorf("inference_log: %w", err)
		}
	}
	if mf.Drift != nil {
		if m.drift, err = drift.New(*mf.Drift, log.With("component", "drift")); err != nil {
			return nil, err
		}
	}
	if mf.Feedback != nil {
		if m.quality, err = newQuality(*mf.Feedback, mf.InferenceLog.Dir, m.log, log); err != nil {
			return nil, err
		}
		m.refresh = mf.Feedback.Refresh.D()
	}
	if mf.Alerts != nil {
		m.requests = alert.NewRequests(0, 0)
		cfg := *mf.Alerts
		cfg.OnFire = func(ctx context.Context, _ alert.Rule, model string) error {
			if aborter == nil {
				return errors.New("no rollout to abort: the server runs without a registry")
			}
			return aborter(ctx, model)
		}
		if cfg.DataURI == nil {
			cfg.DataURI = func(model string, start, end time.Time) string { return logsURI(baseURL(), model, start, end) }
		}
		if m.alerts, err = alert.New(cfg, m.sources(), log.With("component", "alerts")); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// logsURI is the inference log's read-back route for one model's window: what a
// retraining job fetches (GET returns the requests as JSON lines, oldest first, up to
// retrainLogLimit of them).
func logsURI(base, model string, start, end time.Time) string {
	q := url.Values{"model": {model}, "since": {start.UTC().Format(time.RFC3339Nano)}, "until": {end.UTC().Format(time.RFC3339Nano)},
		"limit": {strconv.Itoa(retrainLogLimit)}}
	return base + mgmtapi.Prefix + "logs?" + q.Encode()
}

// retrainLogLimit bounds the entries one data window answers; a job that wants more
// pages with since= from its last entry.
const retrainLogLimit = 100_000

func newQuality(c feedbackConfig, logDir string, il *inferlog.Logger, log *slog.Logger) (*quality.Store, error) {
	dir := c.Dir
	if dir == "" {
		dir = filepath.Join(filepath.Dir(filepath.Clean(logDir)), "feedback")
	}
	outputs := map[string]string{}
	for name, mc := range c.Models {
		outputs[name] = mc.Output
	}
	qs, err := quality.New(dir, logPredictions{log: il, outputs: outputs}, log.With("component", "feedback"))
	if err != nil {
		return nil, fmt.Errorf("feedback: %w", err)
	}
	for name, mc := range c.Models {
		if err := qs.SetModel(name, mc.ModelConfig); err != nil {
			qs.Close()
			return nil, fmt.Errorf("feedback.models.%s: %w", name, err)
		}
	}
	if c.Window > 0 {
		qs.SetWindow(time.Duration(c.Window))
	}
	return qs, nil
}

// sources are what alert rules read, first answer wins: request metrics (error_rate,
// latency_pNN, request_rate), drift (drift_share, dataset_drift, drift:FEATURE) and
// quality (accuracy, f1, roc_auc, mae, ...).
func (m *monitoring) sources() alert.Sources {
	src := alert.Sources{m.requests}
	if m.drift != nil {
		src = append(src, driftSource{m.drift})
	}
	if m.quality != nil {
		src = append(src, m.quality)
	}
	return src
}

// taps are the parts that read finished requests.
func (m *monitoring) taps() []core.Tap {
	var taps []core.Tap
	if m.log != nil {
		taps = append(taps, m.log)
	}
	if m.drift != nil {
		taps = append(taps, m.drift)
	}
	if m.requests != nil {
		taps = append(taps, m.requests)
	}
	return taps
}

func (m *monitoring) register(reg *prometheus.Registry) {
	if m.log != nil {
		reg.MustRegister(m.log.Collector())
	}
	if m.drift != nil {
		reg.MustRegister(m.drift.Collector())
	}
	if m.quality != nil {
		reg.MustRegister(m.quality.Collector())
	}
	if m.alerts != nil {
		reg.MustRegister(m.alerts.Collector())
	}
}

// mgmtOptions serves the parts' routes under /api/v1.
func (m *monitoring) mgmtOptions(o *mgmt.Options) {
	if m.log != nil {
		o.Logs = m.log
	}
	if m.drift != nil {
		o.Drift = m.drift
	}
	if m.quality != nil {
		o.Feedback = m.quality
	}
	if m.alerts != nil {
		o.Alerts = m.alerts
	}
}

// enabled says whether any route of the management API is needed.
func (m *monitoring) enabled() bool {
	return m.log != nil || m.drift != nil || m.quality != nil || m.alerts != nil
}

// runners are the parts' loops, each until ctx ends.
func (m *monitoring) runners() []func(ctx context.Context) error {
	var rs []func(context.Context) error
	if m.drift != nil {
		rs = append(rs, m.drift.Run)
	}
	if m.quality != nil {
		rs = append(rs, func(ctx context.Context) error { return m.quality.Run(ctx, m.refresh) })
	}
	if m.alerts != nil {
		rs = append(rs, m.alerts.Run)
	}
	return rs
}

// close flushes the inference log (every sampled request reaches every sink) and
// stops the rest; it runs once the transports have drained.
func (m *monitoring) close(ctx context.Context) error {
	var errs []error
	if m.log != nil {
		errs = append(errs, m.log.Close(ctx))
	}
	if m.drift != nil {
		m.drift.Close()
	}
	if m.quality != nil {
		errs = append(errs, m.quality.Close())
	}
	return errors.Join(errs...)
}

// driftSource answers alert rules from the drift monitor's last closed window.
type driftSource struct{ m *drift.Monitor }

func (d driftSource) Value(model, metric string) (float64, bool) {
	if feature, ok := strings.CutPrefix(metric, "drift:"); ok {
		v, _, ok := d.m.Value(model, feature)
		return v, ok && feature != ""
	}
	v, drifted, ok := d.m.Value(model, "")
	switch metric {
	case "drift_share":
		return v, ok
	case "dataset_drift":
		if drifted {
			return 1, ok
		}
		return 0, ok
	}
	return 0, false
}

// logPredictions joins feedback to the inference log: a request's prediction is the
// first row of its scored output (a request of several rows has one id, so its first
// row is the one a label can name).
type logPredictions struct {
	log     *inferlog.Logger
	outputs map[string]string // model -> output scored ("": the first)
}

func (p logPredictions) Lookup(ctx context.Context, model string, ids []string) (map[string]quality.Prediction, error) {
	es, err := p.log.Query(ctx, inferlog.Query{Model: model, IDs: ids})
	if err != nil {
		return nil, err
	}
	out := make(map[string]quality.Prediction, len(es))
	for _, e := range es {
		if e.Status != "ok" || e.Route == core.RouteShadow {
			continue
		}
		t := scoredOutput(e.Outputs, p.outputs[model])
		if t == nil {
			continue
		}
		row, err := firstRow(t)
		if err != nil {
			continue // a truncated or redacted output has nothing to score
		}
		// Feedback names a request by the id its client gave it (the V2 "id"), or by
		// the log's own id.
		p := quality.Prediction{Model: e.Model, Version: e.Version, Time: e.Timestamp, Outputs: row}
		out[e.RequestID] = p
		if e.ClientRequestID != "" {
			out[e.ClientRequestID] = p
		}
	}
	return out, nil
}

func scoredOutput(ts []inferlog.Tensor, name string) *inferlog.Tensor {
	for i := range ts {
		if name == "" || ts[i].Name == name {
			return &ts[i]
		}
	}
	return nil
}

// firstRow decodes the first row of a logged tensor's flat data.
func firstRow(t *inferlog.Tensor) ([]float64, error) {
	if t.Truncated {
		return nil, errors.New("truncated")
	}
	var flat []float64
	if err := json.Unmarshal(t.Data, &flat); err != nil {
		return nil, err
	}
	per := 1
	for _, d := range t.Shape[min(1, len(t.Shape)):] {
		per *= int(d)
	}
	if len(t.Shape) == 0 || per <= 0 || len(flat) < per {
		return flat, nil
	}
	return flat[:per], nil
}

// baseURL is the REST listener's address as clients reach it on this machine.
func (s *server) baseURL() string {
	scheme := "http"
	if s.cfg.security.tlsCert != "" {
		scheme = "https"
	}
	if s.httpLn == nil {
		return scheme + "://" + s.cfg.bindAddr(s.cfg.httpAddr, s.cfg.httpPort)
	}
	return scheme + "://" + s.httpLn.Addr().String()
}

// aborter is what alert rules with abort_rollout call; nil without a platform.
func (p *platform) aborter() func(ctx context.Context, model string) error {
	if p == nil {
		return nil
	}
	return p.abortRollout
}

// service is the management API's registry side; nil (no registry routes) without a
// platform.
func (p *platform) service() mgmt.Service {
	if p == nil {
		return nil
	}
	return p
}

// abortRollout aborts the rollout of the endpoint named like the model, if one runs.
func (p *platform) abortRollout(ctx context.Context, model string) error {
	err := p.RolloutAction(ctx, model, "abort")
	if errors.Is(err, rollout.ErrNotFound) {
		return nil // nothing to abort
	}
	return err
}
