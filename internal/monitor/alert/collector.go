package alert

import "github.com/prometheus/client_golang/prometheus"

var (
	alertsDesc = prometheus.NewDesc("ferry_alerts",
		"1 for the state each alert (a rule and its model) is in, 0 for the others.",
		[]string{"alertname", "model", "state"}, nil)
	droppedDesc = prometheus.NewDesc("ferry_alert_dropped_total",
		"Alert notifications and hook calls dropped because their queue was full.", nil, nil)
)

// Collector exports ferry_alerts{alertname,model,state} and ferry_alert_dropped_total.
func (e *Engine) Collector() prometheus.Collector { return collector{e} }

type collector struct{ e *Engine }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- alertsDesc
	ch <- droppedDesc
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	for _, a := range c.e.Alerts() {
		for _, st := range states {
			v := 0.0
			if st == a.State {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(alertsDesc, prometheus.GaugeValue, v, a.Name, a.Model, st)
		}
	}
	ch <- prometheus.MustNewConstMetric(droppedDesc, prometheus.CounterValue, float64(c.e.Dropped()))
}
