package alert

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// TestRetrainHookAndAbortRunOncePerFiring loads rules from YAML, fires the alert
// twice (with a resolve between) and checks the retraining webhook, a real sh
// script and the abort hook each ran once per firing, with the data window.
func TestRetrainHookAndAbortRunOncePerFiring(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "retrain.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nn=$(ls \"$1\" | wc -l)\ncat > \"$1/stdin-$n.json\"\necho \"$FERRY_MODEL $FERRY_VERSION $FERRY_ALERT $FERRY_DATA_URI\" > \"$1/env-$n\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	os.Mkdir(out, 0o755)
	hooked := make(chan RetrainRequest, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req RetrainRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			t.Errorf("retrain webhook: %v", err)
		}
		hooked <- req
	}))
	defer srv.Close()

	var cfg Config
	y := `
interval: 1s
rules:
- name: FeatureDrift
  model: mlp
  metric: drift_share
  op: ">="
  threshold: 0.5
  window: 10m
  for: 1m
  labels: {team: ml}
  abort_rollout: true
  retrain: true
retrain:
  url: ` + srv.URL + `
  command: [` + script + `, ` + out + `]
  timeout: 20s
`
	if err := yaml.UnmarshalStrict([]byte(y), &cfg); err != nil {
		t.Fatal(err)
	}
	var aborts atomic.Int32
	cfg.OnFire = func(ctx context.Context, r Rule, model string) error {
		if r.Name != "FeatureDrift" || model != "mlp" {
			t.Errorf("OnFire(%s, %s)", r.Name, model)
		}
		aborts.Add(1)
		return errors.New("no rollout running") // logged, not fatal
	}
	cfg.Version = func(string) string { return "7" }
	cfg.DataURI = func(model string, start, end time.Time) string {
		return "ferry://logs/" + model + "?since=" + start.Format(time.RFC3339) + "&until=" + end.Format(time.RFC3339)
	}
	src := &values{}
	e, err := New(cfg, src, nil)
	if err != nil {
		t.Fatal(err)
	}
	running(t, e)
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for round := range 2 {
		base := t0.Add(time.Duration(round) * time.Hour)
		src.set("mlp", "drift_share", 0.6)
		for m := range 4 { // pending at 0, firing at 1, still firing at 2 and 3
			e.evaluate(base.Add(time.Duration(m) * time.Minute))
		}
		var req RetrainRequest
		select {
		case req = <-hooked:
		case <-time.After(10 * time.Second):
			t.Fatal("the retrain webhook was not called")
		}
		if req.Model != "mlp" || req.Version != "7" || !req.Start.Equal(base.Add(-10*time.Minute)) || !req.End.Equal(base.Add(time.Minute)) ||
			req.Alert.Labels["team"] != "ml" || req.Alert.Status != "firing" || !strings.HasPrefix(req.DataURI, "ferry://logs/mlp?since=") {
			t.Fatalf("retrain request %+v", req)
		}
		src.set("mlp", "drift_share", 0.1)
		e.evaluate(base.Add(5 * time.Minute))
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		envs, _ := filepath.Glob(filepath.Join(out, "env-*"))
		if len(envs) == 2 && aborts.Load() == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after two firings: %d command runs, %d aborts; want 2 each", len(envs), aborts.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
	env, _ := os.ReadFile(filepath.Join(out, "env-2"))
	if want := "mlp 7 FeatureDrift ferry://logs/mlp?since=2026-03-01T12:50:00Z&until=2026-03-01T13:01:00Z\n"; string(env) != want {
		t.Errorf("second run's environment %q, want %q", env, want)
	}
	stdin, _ := os.ReadFile(filepath.Join(out, "stdin-0.json"))
	var req RetrainRequest
	if err := json.Unmarshal(stdin, &req); err != nil || req.Model != "mlp" || req.Alert.Labels["alertname"] != "FeatureDrift" {
		t.Errorf("first run's stdin %s (%v)", stdin, err)
	}
	select {
	case extra := <-hooked:
		t.Fatalf("a third retrain call: %+v", extra)
	case <-time.After(100 * time.Millisecond):
	}
}

func TestACommandPastItsTimeoutIsKilled(t *testing.T) {
	start := time.Now()
	err := runCommand(context.Background(), []string{"sleep", "30"}, 200*time.Millisecond, nil, RetrainRequest{})
	if err == nil || time.Since(start) > 5*time.Second {
		t.Fatalf("runCommand(sleep 30) = %v after %v; want killed at the 200ms timeout", err, time.Since(start))
	}
}
