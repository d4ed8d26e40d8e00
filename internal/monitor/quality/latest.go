package quality

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// snapshot is a model's scores over the latest window: per version, and over all
// versions together (what Value answers).
type snapshot struct {
	versions []Metrics
	all      map[string]float64
}

// Refresh scores every model with labels over the latest window (see SetWindow),
// for Value and the gauge.
func (s *Store) Refresh(ctx context.Context) error {
	s.mu.Lock()
	models := make([]string, 0, len(s.models))
	for m := range s.models {
		models = append(models, m)
	}
	window := s.window
	s.mu.Unlock()
	now := time.Now()
	var errs []error
	for _, m := range models {
		q := Query{Model: m, Since: now.Add(-window), Until: now}
		ms, err := s.Metrics(ctx, q)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		groups, unmatched, cfg := s.collect(q)
		var ps []pair
		for _, g := range groups {
			ps = append(ps, g...)
		}
		all := scoreGroup(q, "", cfg, ps, unmatched)
		all.Values["labelled"] = float64(all.Labelled)
		all.Values["unmatched"] = float64(all.Unmatched)
		s.mu.Lock()
		s.latest[m] = snapshot{versions: ms, all: all.Values}
		s.mu.Unlock()
	}
	return errors.Join(errs...)
}

// Run refreshes the latest window every interval (default one minute) until ctx
// ends; a failed refresh is logged and tried again at the next tick.
func (s *Store) Run(ctx context.Context, every time.Duration) error {
	if every <= 0 {
		every = time.Minute
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := s.Refresh(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("quality refresh failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Value is a metric of model over the latest window, all versions together, as of
// the last Refresh; "labelled" and "unmatched" are the counts of Metrics. False when
// there is none.
func (s *Store) Value(model, metric string) (float64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.latest[model].all[metric]
	return v, ok
}

var qualityDesc = prometheus.NewDesc("ferry_model_quality",
	"A model version's quality over the latest window of ground truth (metric: accuracy, precision, recall, f1, roc_auc, mae, rmse, labelled).",
	[]string{"model", "version", "metric"}, nil)

// Collector exports ferry_model_quality{model,version,metric} as of the last Refresh.
func (s *Store) Collector() prometheus.Collector { return collector{s} }

type collector struct{ s *Store }

func (c collector) Describe(ch chan<- *prometheus.Desc) { ch <- qualityDesc }

func (c collector) Collect(ch chan<- prometheus.Metric) {
	c.s.mu.Lock()
	var all []Metrics // snapshots are replaced, never changed: safe to read unlocked
	for _, snap := range c.s.latest {
		all = append(all, snap.versions...)
	}
	c.s.mu.Unlock()
	for _, m := range all {
		if m.Version == "" {
			continue
		}
		ch <- prometheus.MustNewConstMetric(qualityDesc, prometheus.GaugeValue, float64(m.Labelled), m.Model, m.Version, "labelled")
		for name, v := range m.Values {
			ch <- prometheus.MustNewConstMetric(qualityDesc, prometheus.GaugeValue, v, m.Model, m.Version, name)
		}
	}
}
