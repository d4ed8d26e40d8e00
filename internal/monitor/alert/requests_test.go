package alert

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferryml/ferry/internal/core"
)

func TestRequestsErrorRateAndLatencyOverAWindow(t *testing.T) {
	r := NewRequests(10*time.Minute, time.Minute)
	now := time.Unix(1_800_000_000, 0)
	rnd := rand.New(rand.NewPCG(3, 4))
	var recent []float64
	rec := &core.Record{Model: "m"}
	for i := range 20_000 {
		age := time.Duration(rnd.IntN(120)) * time.Second // half inside the last minute
		rec.Start = now.Add(-age)
		rec.Total = time.Duration(math.Exp(rnd.NormFloat64()+10)) * time.Nanosecond
		rec.Err = nil
		if i%10 == 0 && age < time.Minute {
			rec.Err = errors.New("boom")
		}
		rec.Start = rec.Start.Add(-rec.Total) // ends at now-age
		r.Finished(rec)
		// A minute's window reads every second it overlaps: back to the second that
		// began a minute before now (age 60 here) included.
		if age <= time.Minute {
			recent = append(recent, rec.Total.Seconds())
		}
	}
	r.Finished(&core.Record{Model: "m", Route: core.RouteShadow, Start: now, Err: errors.New("not counted")})
	n, _ := r.valueAt(now, "m", "requests", time.Minute)
	if int(n) != len(recent) {
		t.Fatalf("requests over the last minute = %v, want %d", n, len(recent))
	}
	rate, _ := r.valueAt(now, "m", "error_rate", time.Minute)
	if math.Abs(rate-0.1) > 0.01 {
		t.Errorf("error_rate = %v, want about 0.1", rate)
	}
	slices.Sort(recent)
	for _, q := range []float64{50, 90, 99} {
		exact := recent[int(math.Ceil(q/100*float64(len(recent))))-1]
		got, ok := r.valueAt(now, "m", "latency_p"+strconv.FormatFloat(q, 'g', -1, 64), time.Minute)
		if !ok || got < exact || got > exact*1.25 {
			t.Errorf("latency_p%v = %v, want within [%v, %v]", q, got, exact, exact*1.25)
		}
	}
	old, _ := r.valueAt(now, "m", "error_rate", 2*time.Minute)
	if old >= rate {
		t.Errorf("error_rate over 2m = %v, want below the last minute's %v (older requests did not fail)", old, rate)
	}
	for _, m := range []string{"latency_pX", "latency_p0", "nothing"} {
		if v, ok := r.valueAt(now, "m", m, time.Minute); ok {
			t.Errorf("%s = %v, want no value", m, v)
		}
	}
	if _, ok := r.valueAt(now.Add(time.Hour), "m", "error_rate", time.Minute); ok {
		t.Error("an hour later, with no requests, error_rate still has a value")
	}
}

func TestFinishedDoesNotAllocate(t *testing.T) {
	r := NewRequests(0, 0)
	rec := &core.Record{Model: "m", Start: time.Now(), Total: time.Millisecond}
	r.Finished(rec)
	if n := testing.AllocsPerRun(1000, func() { r.Finished(rec) }); n != 0 {
		t.Fatalf("Finished allocates %v times per call", n)
	}
}

func BenchmarkFinished(b *testing.B) {
	r := NewRequests(0, 0)
	for i := range 20 {
		r.Finished(&core.Record{Model: "m" + strconv.Itoa(i), Start: time.Now()})
	}
	b.RunParallel(func(pb *testing.PB) {
		rec := &core.Record{Model: "m7", Start: time.Now(), Total: 300 * time.Microsecond}
		for pb.Next() {
			r.Finished(rec)
		}
	})
}

// TestErrorRateAlertFiresAndResolvesInRealTime runs the engine on its own ticker
// over the Requests tap: failing requests fire the alert at a real receiver, and
// when they stop the window empties and it resolves.
func TestErrorRateAlertFiresAndResolvesInRealTime(t *testing.T) {
	rcv := newReceiver(t)
	reqs := NewRequests(0, 0)
	e, err := New(Config{Interval: Duration(50 * time.Millisecond),
		Rules:    []Rule{{Name: "Errors", Model: "m", Metric: "error_rate", Op: ">", Threshold: 0.2, Window: Duration(time.Second), For: Duration(200 * time.Millisecond)}},
		Webhooks: []Webhook{{URL: rcv.srv.URL}}}, reqs, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- e.Run(ctx) }()
	defer func() { cancel(); <-done }()
	stop := time.Now().Add(700 * time.Millisecond)
	for time.Now().Before(stop) {
		reqs.Finished(&core.Record{Model: "m", Start: time.Now(), Err: errors.New("upstream down")})
		time.Sleep(5 * time.Millisecond)
	}
	rcv.wait(1)
	rcv.wait(1) // resolved once the 1s window holds no requests
	msgs := rcv.messages()
	if len(msgs) != 2 || msgs[0].Status != "firing" || msgs[1].Status != "resolved" {
		t.Fatalf("got %+v; want firing then resolved", msgs)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(e.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
			lines = append(lines, mf.GetName()+"{"+strings.Join(ls, ",")+"} "+strconv.FormatFloat(m.GetGauge().GetValue()+m.GetCounter().GetValue(), 'g', -1, 64))
		}
	}
	want := []string{"ferry_alert_dropped_total{} 0",
		"ferry_alerts{alertname=Errors,model=m,state=firing} 0", "ferry_alerts{alertname=Errors,model=m,state=inactive} 0",
		"ferry_alerts{alertname=Errors,model=m,state=pending} 0", "ferry_alerts{alertname=Errors,model=m,state=resolved} 1"}
	if !slices.Equal(lines, want) {
		t.Fatalf("metrics:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}
