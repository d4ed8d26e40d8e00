package metrics

import (
	"testing"

	"github.com/ferryml/ferry/internal/admission"
)

func TestAdmissionSeries(t *testing.T) {
	a := NewAdmission()
	a.Refused("acme", admission.RateLimited)
	a.Refused("acme", admission.RateLimited)
	a.Refused("", admission.Overloaded)
	got := scrape(t, a.Collectors(func() []admission.LimitStat {
		return []admission.LimitStat{{Model: "m", Version: "1", Limit: 18, InFlight: 3}}
	})...)
	for series, want := range map[string]float64{
		`ferry_admission_concurrency_limit{model="m",version="1"}`:            18,
		`ferry_admission_in_flight{model="m",version="1"}`:                    3,
		`ferry_admission_refusals_total{reason="overloaded",tenant=""}`:       1,
		`ferry_admission_refusals_total{reason="rate_limited",tenant="acme"}`: 2,
	} {
		if got[series] != want {
			t.Errorf("%s = %v, want %v (scraped %v)", series, got[series], want, got)
		}
	}
}
