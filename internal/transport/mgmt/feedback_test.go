package mgmt

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ferryml/ferry/internal/monitor/alert"
	"github.com/ferryml/ferry/internal/monitor/quality"
	"github.com/ferryml/ferry/internal/monitor/quality/qualitytest"
)

func TestFeedbackAndQualityRoutes(t *testing.T) {
	now := time.Now().UTC()
	preds := &qualitytest.Log{}
	preds.Put("r1", quality.Prediction{Model: "mlp", Version: "1", Time: now.Add(-2 * time.Hour), Outputs: []float64{0.9, 0.1}})
	preds.Put("r2", quality.Prediction{Model: "mlp", Version: "2", Time: now.Add(-time.Minute), Outputs: []float64{0.2, 0.8}})
	preds.Put("r3", quality.Prediction{Model: "mlp", Version: "2", Time: now.Add(-time.Minute), Outputs: []float64{0.3, 0.7}})
	store, err := quality.New(t.TempDir(), preds, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	a := newAPI(t, Options{Feedback: store})
	var resp FeedbackResponse
	a.json("POST", "/api/v1/feedback", `{"model":"mlp","labels":[{"id":"r1","label":0},{"id":"r2","label":1},{"id":"r3","label":0},{"id":"r9","label":1}]}`, http.StatusOK, &resp)
	if resp.Accepted != 4 {
		t.Fatalf("accepted %d, want 4", resp.Accepted)
	}
	var ms []quality.Metrics
	a.json("GET", "/api/v1/quality/mlp", nil, http.StatusOK, &ms)
	if len(ms) != 2 || ms[0].Version != "1" || ms[1].Version != "2" || ms[1].Labelled != 2 || ms[1].Unmatched != 1 || ms[1].Values["accuracy"] != 0.5 {
		t.Fatalf("quality: %+v", ms)
	}
	a.json("GET", "/api/v1/quality/mlp?since=1h&version=2", nil, http.StatusOK, &ms)
	if len(ms) != 1 || ms[0].Version != "2" {
		t.Fatalf("the last hour's version 2: %+v", ms)
	}
	since := now.Add(-3 * time.Hour).Format(time.RFC3339)
	until := now.Add(-time.Hour).Format(time.RFC3339)
	a.json("GET", "/api/v1/quality/mlp?since="+since+"&until="+until, nil, http.StatusOK, &ms)
	if len(ms) != 1 || ms[0].Version != "1" || ms[0].Values["accuracy"] != 1 {
		t.Fatalf("between 3h and 1h ago: %+v", ms)
	}
	for _, tc := range []struct {
		name, method, path, body string
		code                     int
		want                     string
	}{
		{"an unknown field", "POST", "/api/v1/feedback", `{"model":"mlp","lables":[]}`, 400, `unknown field \"lables\"`},
		{"a label that is neither", "POST", "/api/v1/feedback", `{"model":"mlp","labels":[{"id":"x"}]}`, 400, `labels[0] (id \"x\"): neither`},
		{"a bad class", "POST", "/api/v1/feedback", `{"model":"mlp","labels":[{"id":"x","label":-2}]}`, 400, "a class index must be an integer >= 0"},
		{"no model", "POST", "/api/v1/feedback", `{"labels":[{"id":"x","value":1}]}`, 400, "the model is empty"},
		{"a bad since", "GET", "/api/v1/quality/mlp?since=yesterday", "", 400, `since=\"yesterday\": want an RFC 3339 time`},
		{"since after until", "GET", "/api/v1/quality/mlp?since=1m&until=1h", "", 400, "is not before until"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := a.json(tc.method, tc.path, tc.body, tc.code, nil)
			if !strings.Contains(string(got), tc.want) {
				t.Fatalf("%s %s: %s, want it to contain %q", tc.method, tc.path, got, tc.want)
			}
		})
	}
}

func TestFeedbackBodyLimit(t *testing.T) {
	store, err := quality.New(t.TempDir(), &qualitytest.Log{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	a := newAPI(t, Options{Feedback: store, MaxFeedbackBytes: 1000})
	var b strings.Builder
	b.WriteString(`{"model":"m","labels":[`)
	for i := range 100 {
		fmt.Fprintf(&b, `{"id":"r%d","value":1},`, i)
	}
	b.WriteString(`{"id":"last","value":1}]}`)
	got := a.json("POST", "/api/v1/feedback", b.String(), http.StatusRequestEntityTooLarge, nil)
	if !strings.Contains(string(got), "the feedback body is larger than the 1000-byte limit") {
		t.Fatalf("answer %s", got)
	}
}

type alertList []alert.State

func (l alertList) Alerts() []alert.State { return l }

func TestAlertsRoute(t *testing.T) {
	v := 0.7
	a := newAPI(t, Options{Alerts: alertList{
		{Name: "Drift", Model: "mlp", State: alert.StateFiring, Value: &v, Labels: map[string]string{"alertname": "Drift", "model": "mlp"}},
		{Name: "Errors", Model: "mlp", State: alert.StateInactive, Labels: map[string]string{"alertname": "Errors", "model": "mlp"}},
	}})
	var got []alert.State
	a.json("GET", "/api/v1/alerts", nil, http.StatusOK, &got)
	if len(got) != 2 {
		t.Fatalf("alerts: %+v", got)
	}
	a.json("GET", "/api/v1/alerts?state=firing", nil, http.StatusOK, &got)
	if len(got) != 1 || got[0].Name != "Drift" || *got[0].Value != 0.7 {
		t.Fatalf("firing alerts: %+v", got)
	}
	a.json("GET", "/api/v1/alerts?model=other", nil, http.StatusOK, &got)
	if len(got) != 0 {
		t.Fatalf("alerts of another model: %+v", got)
	}
}

func TestMonitoringRoutesAnswer404WhenNotEnabled(t *testing.T) {
	a := newAPI(t, Options{})
	for _, tc := range []struct{ method, path, body, want string }{
		{"POST", "/api/v1/feedback", `{"model":"m","labels":[]}`, "feedback (ground truth) is not enabled on this server"},
		{"GET", "/api/v1/quality/m", "", "quality (ground truth) is not enabled on this server"},
		{"GET", "/api/v1/alerts", "", "alerting is not enabled on this server"},
	} {
		got := a.json(tc.method, tc.path, tc.body, http.StatusNotFound, nil)
		if !strings.Contains(string(got), tc.want) {
			t.Errorf("%s %s: %s, want %q", tc.method, tc.path, got, tc.want)
		}
	}
}
