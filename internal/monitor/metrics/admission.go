package metrics

import (
	"github.com/ferryml/ferry/internal/admission"
	"github.com/prometheus/client_golang/prometheus"
)

// Admission counts the requests admission refused, per tenant and reason
// (rate_limited, quota_exceeded, overloaded); it is the admission.Observer. Tenants
// come from the configuration and the key store, so the label stays bounded; the
// anonymous tenant is "".
type Admission struct {
	refusals *prometheus.CounterVec
}

var _ admission.Observer = (*Admission)(nil)

// NewAdmission builds the refusal counter; register it with Collectors.
func NewAdmission() *Admission {
	return &Admission{refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "ferry", Name: "admission_refusals_total",
		Help: "Requests refused before the queue: reason is rate_limited, quota_exceeded or overloaded (load shedding).",
	}, []string{"tenant", "reason"})}
}

// Refused implements admission.Observer.
func (a *Admission) Refused(tenant string, k admission.Kind) {
	a.refusals.WithLabelValues(tenant, k.String()).Inc()
}

// The load-shedding limit of each model version, read at scrape.
var (
	descShedLimit    = prometheus.NewDesc("ferry_admission_concurrency_limit", "The adaptive concurrency limit of each model version (load shedding).", []string{"model", "version"}, nil)
	descShedInFlight = prometheus.NewDesc("ferry_admission_in_flight", "Admitted requests of each model version not finished yet.", []string{"model", "version"}, nil)
)

// Collectors are the refusal counter and the limits, read from limits at each scrape.
func (a *Admission) Collectors(limits func() []admission.LimitStat) []prometheus.Collector {
	return []prometheus.Collector{a.refusals, shedLimits(limits)}
}

type shedLimits func() []admission.LimitStat

func (shedLimits) Describe(ch chan<- *prometheus.Desc) {
	ch <- descShedLimit
	ch <- descShedInFlight
}

func (s shedLimits) Collect(ch chan<- prometheus.Metric) {
	for _, l := range s() {
		ch <- prometheus.MustNewConstMetric(descShedLimit, prometheus.GaugeValue, float64(l.Limit), l.Model, l.Version)
		ch <- prometheus.MustNewConstMetric(descShedInFlight, prometheus.GaugeValue, float64(l.InFlight), l.Model, l.Version)
	}
}
