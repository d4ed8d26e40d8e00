package metrics

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/scheduler"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// TestRequestSeriesAreTheLabelledOnes: what requests observe through the series each
// version looks up once lands in the series a scrape reads, per model version and
// priority level.
func TestRequestSeriesAreTheLabelledOnes(t *testing.T) {
	m := New(func() []core.ModelStats { return nil })
	o := m.Scheduler("m", "1")
	for range 3 {
		m.ObserveInFlight("m", "1", 1)
		o.QueueDepth(2, 1)
	}
	m.ObserveInFlight("m", "2", 1)
	o.QueueDepth(2, -1)
	o.QueueDepth(1, 1)
	m.Finished(&core.Record{Model: "m", Version: "1", Timing: scheduler.Timing{Queue: time.Millisecond}, Total: 2 * time.Millisecond})
	m.Finished(&core.Record{Model: "m", Version: "1", Cached: true, Total: time.Millisecond})
	m.Finished(&core.Record{Model: "m", Version: "1", Err: errors.New("failed"), Total: time.Second})
	o.Executed(4)

	got := scrape(t, m)
	for series, want := range map[string]float64{
		`ferry_requests_in_flight{model="m",version="1"}`:                     3,
		`ferry_requests_in_flight{model="m",version="2"}`:                     1,
		`ferry_queue_depth{model="m",priority="2",version="1"}`:               2,
		`ferry_queue_depth{model="m",priority="1",version="1"}`:               1,
		`ferry_request_queue_duration_seconds{model="m",version="1"}`:         1, // observations
		`ferry_request_duration_seconds{model="m",version="1"}`:               2, // the request and the cache hit
		`ferry_request_compute_infer_duration_seconds{model="m",version="1"}`: 1,
		`ferry_batch_size{model="m",version="1"}`:                             1,
	} {
		if got[series] != want {
			t.Errorf("%s = %v, want %v", series, got[series], want)
		}
	}
}

// scrape reads every series of cs: a gauge's or counter's value, a histogram's
// observation count.
func scrape(t *testing.T, cs ...prometheus.Collector) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(cs...)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, s := range mf.GetMetric() {
			out[mf.GetName()+labels(s)] = s.GetGauge().GetValue() + s.GetCounter().GetValue() + float64(s.GetHistogram().GetSampleCount())
		}
	}
	return out
}

func labels(s *dto.Metric) string {
	var b strings.Builder
	for i, l := range s.GetLabel() { // sorted by name
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(l.GetName() + `="` + l.GetValue() + `"`)
	}
	return "{" + b.String() + "}"
}

// BenchmarkRequestObservers is what one batched request costs the metrics: in flight up
// and down, queue depth up and down, five latency histograms.
func BenchmarkRequestObservers(b *testing.B) {
	m := New(func() []core.ModelStats { return nil })
	o := m.Scheduler("mlp", "1")
	for b.Loop() {
		m.ObserveInFlight("mlp", "1", 1)
		o.QueueDepth(0, 1)
		o.QueueDepth(0, -1)
		m.Finished(&core.Record{Model: "mlp", Version: "1", Total: time.Millisecond})
		m.ObserveInFlight("mlp", "1", -1)
	}
}
