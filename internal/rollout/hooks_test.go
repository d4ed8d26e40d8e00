package rollout

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// webhooks is a real HTTP server (127.0.0.1) playing a gate that passes (/gate/ok) or
// refuses (/gate/fail), an event sink (/events) and a broken sink (anything else).
type webhooks struct {
	*httptest.Server
	mu     sync.Mutex
	events []Change
	gates  []gateRequest
}

func newWebhooks(t *testing.T) *webhooks {
	w := &webhooks{}
	w.Server = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.mu.Lock()
		defer w.mu.Unlock()
		switch r.URL.Path {
		case "/events":
			var c Change
			if err := json.Unmarshal(b, &c); err != nil {
				t.Errorf("event webhook got %s: %v", b, err)
			}
			w.events = append(w.events, c)
		case "/gate/ok", "/gate/fail":
			var g gateRequest
			if err := json.Unmarshal(b, &g); err != nil {
				t.Errorf("gate got %s: %v", b, err)
			}
			w.gates = append(w.gates, g)
			if r.URL.Path == "/gate/fail" {
				http.Error(rw, "not yet", http.StatusServiceUnavailable)
			}
		default:
			http.Error(rw, "down", http.StatusInternalServerError)
		}
	}))
	t.Cleanup(w.Close)
	return w
}

// TestControllerGate runs a gate step against a real webhook: a 2xx lets the rollout
// go on; failures past the retries abort it. Event webhooks receive every change in
// order; one that fails holds nothing back.
func TestControllerGate(t *testing.T) {
	// No keep-alive: a connection's goroutines must not outlive the synctest bubble.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	for _, tc := range []struct {
		path      string
		want      State
		wantCalls int
	}{{"/gate/ok", Succeeded, 1}, {"/gate/fail", Aborted, 2}} {
		srv := newWebhooks(t)
		synctest.Test(t, func(t *testing.T) {
			h := run(t, newMemStore(), &models{delay: time.Second},
				Config{HTTPClient: client, EventHooks: []string{srv.URL + "/events", srv.URL + "/broken"}})
			defer h.stop(t)
			r := Rollout{Endpoint: "mlp", Stable: "1", Candidate: "2", Strategy: Strategy{Steps: []Step{
				{Gate: &Gate{URL: srv.URL + tc.path, Retries: 1}}, {SetWeight: &SetWeight{Percent: 100}}}}}
			if err := h.c.Start(t.Context(), r); err != nil {
				t.Fatal(err)
			}
			s := h.waitState(t, tc.want, 2*time.Minute)
			time.Sleep(time.Second) // let the event webhooks catch up (time stands still during their I/O)
			if tc.want == Aborted && s.Reason != "gate failed: webhook "+srv.URL+"/gate/fail: answered 503 Service Unavailable" {
				t.Errorf("reason %q", s.Reason)
			}
		})
		srv.mu.Lock()
		if len(srv.gates) != tc.wantCalls || srv.gates[0].Candidate != "2" || srv.gates[0].Endpoint != "mlp" {
			t.Errorf("%s: gate got %+v, want %d calls naming mlp's candidate 2", tc.path, srv.gates, tc.wantCalls)
		}
		if len(srv.events) < 3 || srv.events[0].To != Provisioning || srv.events[len(srv.events)-1].To != tc.want {
			t.Errorf("%s: event webhook got %+v, want every change from Provisioning to %s", tc.path, srv.events, tc.want)
		}
		srv.mu.Unlock()
	}
}
