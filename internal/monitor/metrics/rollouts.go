package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferryml/ferry/internal/rollout"
)

// Rollouts exports the rollout controller's state (it is the controller's Observer):
// ferry_rollout_state{endpoint,state} is 1 for the state each endpoint's rollout is in
// and 0 for the others, and ferry_rollout_weight{endpoint,version} is the percent of
// the endpoint's traffic each version gets.
type Rollouts struct {
	state  *prometheus.GaugeVec
	weight *prometheus.GaugeVec
}

var _ rollout.Observer = (*Rollouts)(nil)

// NewRollouts builds the rollout metrics; register them with the server's registry.
func NewRollouts() *Rollouts {
	return &Rollouts{
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "ferry", Name: "rollout_state", Help: "1 for the state each endpoint's rollout is in, 0 for the others.",
		}, []string{"endpoint", "state"}),
		weight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "ferry", Name: "rollout_weight", Help: "Percent of an endpoint's traffic a rollout sends to each version.",
		}, []string{"endpoint", "version"}),
	}
}

// RolloutChanged implements rollout.Observer.
func (r *Rollouts) RolloutChanged(endpoint string, s rollout.Status, _ rollout.Change) {
	for _, st := range rollout.States {
		v := 0.0
		if st == s.State {
			v = 1
		}
		r.state.WithLabelValues(endpoint, string(st)).Set(v)
	}
	r.weight.DeletePartialMatch(prometheus.Labels{"endpoint": endpoint})
	for version, w := range s.Weights {
		r.weight.WithLabelValues(endpoint, version).Set(float64(w))
	}
}

// Describe implements prometheus.Collector.
func (r *Rollouts) Describe(ch chan<- *prometheus.Desc) {
	r.state.Describe(ch)
	r.weight.Describe(ch)
}

// Collect implements prometheus.Collector.
func (r *Rollouts) Collect(ch chan<- prometheus.Metric) {
	r.state.Collect(ch)
	r.weight.Collect(ch)
}
