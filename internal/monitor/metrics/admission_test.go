package metrics

import (
	"strings"
	"testing"

	"github.com/ferryml/ferry/internal/admission"
	"github.com/prometheus/client_golang/prometheus"
)

func TestAdmissionSeries(t *testing.T) {
	a := NewAdmission()
	a.Refused("acme", admission.RateLimited)
	a.Refused("acme", admission.RateLimited)
	a.Refused("", admission.Overloaded)
	reg := prometheus.NewRegistry()
	reg.MustRegister(a.Collectors(func() []admission.LimitStat {
		return []admission.LimitStat{{Model: "m", Version: "1", Limit: 18, InFlight: 3}}
	})...)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			got[f.GetName()+"{"+strings.Join(labels, ",")+"}"] = m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	for series, want := range map[string]float64{
		"ferry_admission_concurrency_limit{model=m,version=1}":            18,
		"ferry_admission_in_flight{model=m,version=1}":                    3,
		"ferry_admission_refusals_total{reason=overloaded,tenant=}":       1,
		"ferry_admission_refusals_total{reason=rate_limited,tenant=acme}": 2,
	} {
		if got[series] != want {
			t.Errorf("%s = %v, want %v (scraped %v)", series, got[series], want, got)
		}
	}
}
