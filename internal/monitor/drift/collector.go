package drift

import "github.com/prometheus/client_golang/prometheus"

// Collector exports the last closed window of every watched model:
//
//	ferry_drift_value{model,feature,method}   the method's value (p-value or distance)
//	ferry_drift_detected{model,feature}       1 when the feature drifted
//	ferry_drift_share_drifted{model}          share of evaluated features that drifted
//	ferry_drift_dataset_drift{model}          1 when the share is ≥ drift_share
//	ferry_drift_window_rows{model}            rows in the window
//	ferry_drift_invalid_values{model,feature} NaN/±Inf values the window dropped
//	ferry_drift_rows_dropped_total{model}     rows the binning queue could not take
//	ferry_drift_records_skipped_total{model,reason}  shadow copies and failed requests
func (m *Monitor) Collector() prometheus.Collector { return collector{m} }

type collector struct{ m *Monitor }

var (
	descValue    = prometheus.NewDesc("ferry_drift_value", "Drift method value of a feature in the last closed window: a p-value for ks/chisquare/ztest (drift when below the threshold), else a distance (drift when at or above it).", []string{"model", "feature", "method"}, nil)
	descDetected = prometheus.NewDesc("ferry_drift_detected", "1 when the feature drifted in the last closed window.", []string{"model", "feature"}, nil)
	descShare    = prometheus.NewDesc("ferry_drift_share_drifted", "Share of the evaluated features that drifted in the last closed window.", []string{"model"}, nil)
	descDataset  = prometheus.NewDesc("ferry_drift_dataset_drift", "1 when the share of drifted features reached drift_share in the last closed window.", []string{"model"}, nil)
	descRows     = prometheus.NewDesc("ferry_drift_window_rows", "Rows in the last closed drift window.", []string{"model"}, nil)
	descInvalid  = prometheus.NewDesc("ferry_drift_invalid_values", "NaN, ±Inf and mistyped values dropped from the feature in the last closed window.", []string{"model", "feature"}, nil)
	descDropped  = prometheus.NewDesc("ferry_drift_rows_dropped_total", "Rows not binned because the drift queue was full.", []string{"model"}, nil)
	descSkipped  = prometheus.NewDesc("ferry_drift_records_skipped_total", "Records not binned: shadow copies and failed requests.", []string{"model", "reason"}, nil)
)

func (collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descValue, descDetected, descShare, descDataset, descRows, descInvalid, descDropped, descSkipped} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	gauge, counter := prometheus.GaugeValue, prometheus.CounterValue
	for _, r := range c.m.Reports() {
		ch <- prometheus.MustNewConstMetric(descDropped, counter, float64(r.Dropped), r.Model)
		ch <- prometheus.MustNewConstMetric(descSkipped, counter, float64(r.Shadow), r.Model, "shadow")
		ch <- prometheus.MustNewConstMetric(descSkipped, counter, float64(r.Failed), r.Model, "failed")
		if !r.Closed {
			continue // no closed window yet (or no baseline): nothing to compare
		}
		ch <- prometheus.MustNewConstMetric(descRows, gauge, float64(r.Rows), r.Model)
		if r.Status == StatusOK {
			ch <- prometheus.MustNewConstMetric(descShare, gauge, r.ShareDrifted, r.Model)
			ch <- prometheus.MustNewConstMetric(descDataset, gauge, b2f(r.DatasetDrift), r.Model)
		}
		for _, f := range r.Features {
			ch <- prometheus.MustNewConstMetric(descInvalid, gauge, float64(f.Invalid), r.Model, f.Feature)
			if f.Value == nil {
				continue
			}
			ch <- prometheus.MustNewConstMetric(descValue, gauge, *f.Value, r.Model, f.Feature, f.Method)
			ch <- prometheus.MustNewConstMetric(descDetected, gauge, b2f(f.Drifted), r.Model, f.Feature)
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
