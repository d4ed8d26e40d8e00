package alert

import (
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/common/model"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// values is a Source the test sets.
type values struct {
	mu sync.Mutex
	m  map[string]float64
}

func (v *values) set(model, metric string, x float64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.m == nil {
		v.m = map[string]float64{}
	}
	v.m[model+"/"+metric] = x
}

func (v *values) unset(model, metric string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	delete(v.m, model+"/"+metric)
}

func (v *values) Value(model, metric string) (float64, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	x, ok := v.m[model+"/"+metric]
	return x, ok
}

// receiver is a real webhook receiver that decodes Alertmanager's format strictly.
type receiver struct {
	t    *testing.T
	srv  *httptest.Server
	mu   sync.Mutex
	got  []Message
	fail int // answer 503 to this many requests first
	hits int
	seen chan struct{}
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{t: t, seen: make(chan struct{}, 100)}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hits++
	if r.fail > 0 {
		r.fail--
		http.Error(w, "try later", http.StatusServiceUnavailable)
		return
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		r.t.Errorf("receiver: %v: %s", err, b)
	}
	want := []string{"alerts", "commonAnnotations", "commonLabels", "externalURL", "groupKey", "groupLabels", "receiver", "status", "truncatedAlerts", "version"}
	if got := slices.Sorted(maps.Keys(fields)); !slices.Equal(got, want) {
		r.t.Errorf("payload fields %v, want Alertmanager's %v", got, want)
	}
	d := json.NewDecoder(strings.NewReader(string(b)))
	d.DisallowUnknownFields()
	var m Message
	if err := d.Decode(&m); err != nil {
		r.t.Errorf("receiver: %v: %s", err, b)
	}
	r.got = append(r.got, m)
	r.seen <- struct{}{}
}

func (r *receiver) messages() []Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// wait waits for n more deliveries.
func (r *receiver) wait(n int) {
	r.t.Helper()
	for range n {
		select {
		case <-r.seen:
		case <-time.After(10 * time.Second):
			r.t.Fatalf("no notification after 10s; got %d", len(r.messages()))
		}
	}
}

// running starts e's senders for the test.
func running(t *testing.T, e *Engine) {
	ctx, cancel := context.WithCancel(context.Background())
	wait := e.start(ctx)
	t.Cleanup(func() { cancel(); wait() })
}

func TestStatesMoveLikePrometheusAndNotifyOnce(t *testing.T) {
	rcv := newReceiver(t)
	src := &values{}
	rule := Rule{Name: "LowAccuracy", Model: "mlp", Metric: "accuracy", Op: "<", Threshold: 0.9, For: Duration(5 * time.Minute),
		Labels: map[string]string{"severity": "page"}, Annotations: map[string]string{"summary": "accuracy fell"}}
	e, err := New(Config{Rules: []Rule{rule}, Webhooks: []Webhook{{Name: "ops", URL: rcv.srv.URL}}, ExternalURL: "http://ferry:8080"}, src, nil)
	if err != nil {
		t.Fatal(err)
	}
	running(t, e)
	t0 := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	step := func(min int, want string) {
		t.Helper()
		e.evaluate(t0.Add(time.Duration(min) * time.Minute))
		if got := e.Alerts()[0].State; got != want {
			t.Fatalf("at +%dm: state %s, want %s", min, got, want)
		}
	}
	step(0, StateInactive) // no value: inactive
	src.set("mlp", "accuracy", 0.8)
	step(1, StatePending)
	src.set("mlp", "accuracy", 0.95)
	step(2, StateInactive) // a pending alert that clears never fires
	src.set("mlp", "accuracy", 0.85)
	step(3, StatePending)
	step(7, StatePending)
	step(8, StateFiring) // held for 5m
	step(9, StateFiring)
	step(10, StateFiring)
	rcv.wait(1)
	src.unset("mlp", "accuracy") // no data resolves, as in Prometheus
	step(11, StateResolved)
	rcv.wait(1)
	step(12, StateResolved)
	time.Sleep(100 * time.Millisecond)
	msgs := rcv.messages()
	if len(msgs) != 2 {
		t.Fatalf("got %d notifications, want one firing and one resolved: %+v", len(msgs), msgs)
	}
	labels := map[string]string{"alertname": "LowAccuracy", "model": "mlp", "severity": "page"}
	fp := model.LabelSet{"alertname": "LowAccuracy", "model": "mlp", "severity": "page"}.Fingerprint().String()
	firing := Message{Version: "4", GroupKey: `{}:{alertname="LowAccuracy", model="mlp"}`, Status: "firing", Receiver: "ops",
		GroupLabels: map[string]string{"alertname": "LowAccuracy", "model": "mlp"}, CommonLabels: labels,
		CommonAnnotations: map[string]string{"summary": "accuracy fell", "value": "0.85"}, ExternalURL: "http://ferry:8080",
		Alerts: []Alert{{Status: "firing", Labels: labels, Annotations: map[string]string{"summary": "accuracy fell", "value": "0.85"},
			StartsAt: t0.Add(8 * time.Minute), GeneratorURL: "http://ferry:8080/api/v1/alerts", Fingerprint: fp}}}
	if d := cmp.Diff(firing, msgs[0]); d != "" {
		t.Errorf("firing notification (-want +got):\n%s", d)
	}
	resolved := firing
	resolved.Status = "resolved"
	resolved.CommonAnnotations = map[string]string{"summary": "accuracy fell"}
	resolved.Alerts = []Alert{firing.Alerts[0]}
	resolved.Alerts[0].Status, resolved.Alerts[0].EndsAt = "resolved", t0.Add(11*time.Minute)
	resolved.Alerts[0].Annotations = map[string]string{"summary": "accuracy fell"}
	if d := cmp.Diff(resolved, msgs[1]); d != "" {
		t.Errorf("resolved notification (-want +got):\n%s", d)
	}
	// Firing again starts a new alert: pending first.
	src.set("mlp", "accuracy", 0.5)
	step(13, StatePending)
}

func TestRepeatIntervalResends(t *testing.T) {
	rcv := newReceiver(t)
	src := &values{}
	src.set("m", "error_rate", 0.5)
	e, err := New(Config{Rules: []Rule{{Name: "Errors", Model: "m", Metric: "error_rate", Op: ">=", Threshold: 0.1}},
		Webhooks: []Webhook{{URL: rcv.srv.URL, RepeatInterval: Duration(time.Hour)}}}, src, nil)
	if err != nil {
		t.Fatal(err)
	}
	running(t, e)
	t0 := time.Now()
	for _, m := range []int{0, 30, 59, 60, 90, 120} {
		e.evaluate(t0.Add(time.Duration(m) * time.Minute))
	}
	rcv.wait(3) // at 0 (for 0 fires at once), 60, 120
	time.Sleep(100 * time.Millisecond)
	if n := len(rcv.messages()); n != 3 {
		t.Fatalf("got %d notifications, want 3 (once an hour)", n)
	}
}

func TestRetriesAfterServerErrors(t *testing.T) {
	rcv := newReceiver(t)
	rcv.fail = 2
	src := &values{}
	src.set("m", "latency_p99", 2)
	e, err := New(Config{Rules: []Rule{{Name: "Slow", Model: "m", Metric: "latency_p99", Op: ">", Threshold: 1}},
		Webhooks: []Webhook{{URL: rcv.srv.URL}}}, src, nil)
	if err != nil {
		t.Fatal(err)
	}
	running(t, e)
	e.evaluate(time.Now())
	rcv.wait(1)
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if rcv.hits != 3 || len(rcv.got) != 1 {
		t.Fatalf("%d requests, %d delivered; want 2 refused and the third delivered", rcv.hits, len(rcv.got))
	}
}

func TestAHungReceiverNeverBlocksEvaluation(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(block)
	src := &values{}
	e, err := New(Config{Rules: []Rule{{Name: "Flap", Model: "m", Metric: "x", Op: ">", Threshold: 0}},
		Webhooks: []Webhook{{URL: srv.URL, Timeout: Duration(time.Minute)}}}, src, nil)
	if err != nil {
		t.Fatal(err)
	}
	running(t, e)
	start := time.Now()
	for i := range 2 * outboxSize {
		src.set("m", "x", float64(i%2)) // fires, resolves, fires…
		e.evaluate(start.Add(time.Duration(i) * time.Second))
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("%d evaluations took %v with a hung receiver", 2*outboxSize, d)
	}
	if e.Dropped() == 0 {
		t.Fatal("no notification was counted dropped, yet the receiver never answered")
	}
}

func TestConfigErrorsAreNamedAllAtOnce(t *testing.T) {
	cfg := Config{
		Rules: []Rule{
			{Name: "", Model: "m", Metric: "x", Op: "==", Threshold: 1},
			{Name: "a", Model: "m", Metric: "x", Op: ">", Labels: map[string]string{"model": "n", "bad-name": "v"}, Retrain: true, AbortRollout: true},
			{Name: "a", Model: "m", Metric: "x", Op: ">"},
		},
		Webhooks: []Webhook{{URL: "ftp://x"}},
	}
	_, err := New(cfg, &values{}, nil)
	for _, want := range []string{
		"rules[0] (): name: empty", `op: "==": want >, >=, < or <=`,
		`labels: "bad-name" is not a label name`, `labels: "model" is set from the rule's name and model`,
		"retrain is set but no retrain hook", "abort_rollout is set but no OnFire hook",
		`rules[2]: another rule is named "a" for model "m"`, `webhooks[0].url: "ftp://x" is not an http(s) URL`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("New: %v\nwant it to contain %q", err, want)
		}
	}
}
