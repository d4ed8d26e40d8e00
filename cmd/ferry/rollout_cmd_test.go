package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ferryml/ferry/internal/mgmtapi"
	"github.com/ferryml/ferry/internal/rollout"
)

// TestRolloutStatusJSON holds the interface acceptance checks use: `ferry rollout
// status NAME --server URL -o json` prints at least {"state": ..., "weights": {"VERSION": PERCENT}}.
func TestRolloutStatusJSON(t *testing.T) {
	srv := mgmtServer(t)
	seedCLI(t, srv)
	mustCLI(t, srv, "rollout", "start", "mlp", "--candidate", "2", "--steps", "10,50,100", "--interval", "1h")
	var got struct {
		State   string         `json:"state"`
		Weights map[string]int `json:"weights"`
		History []struct {
			Event string `json:"event"`
		} `json:"history"`
	}
	for end := time.Now().Add(5 * time.Second); got.State != "Progressing" && time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		out := mustCLI(t, "http://unused.invalid", "rollout", "status", "mlp", "--server", srv, "-o", "json")
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("rollout status -o json: %v\n%s", err, out)
		}
	}
	if got.State != "Progressing" || len(got.Weights) != 2 || got.Weights["1"] != 90 || got.Weights["2"] != 10 || len(got.History) == 0 {
		t.Errorf("rollout status -o json = %+v, want Progressing with weights {1: 90, 2: 10} and a history", got)
	}
}

func TestRolloutCommands(t *testing.T) {
	srv := mgmtServer(t)
	seedCLI(t, srv)
	if out := mustCLI(t, srv, "rollout", "start", "mlp", "--candidate", "2", "--interval", "1h", "--max-error-rate", "0.01", "--max-p99", "0.5", "--failure-limit", "2"); !strings.Contains(out, "started mlp") {
		t.Errorf("rollout start = %q", out)
	}
	_, err := ferryCLI(t, srv, "rollout", "start", "mlp", "--candidate", "2")
	if err == nil || !strings.Contains(err.Error(), "already in progress") || !strings.Contains(err.Error(), "ferry rollout abort mlp") {
		t.Errorf("second rollout start: err = %v, want a clear 409 message", err)
	}
	waitState(t, srv, "mlp", "Progressing")
	status := mustCLI(t, srv, "rollout", "status", "mlp")
	for _, want := range []string{"State:", "Progressing", "Weights:", "stable", "candidate", "█", " 90%", " 10%", "Analysis:", "Last changes:", "CandidateReady"} {
		if !strings.Contains(status, want) {
			t.Errorf("rollout status table lacks %q:\n%s", want, status)
		}
	}
	if out := mustCLI(t, srv, "rollout", "pause", "mlp"); !strings.Contains(out, "Paused (Manual)") {
		t.Errorf("rollout pause = %q", out)
	}
	mustCLI(t, srv, "rollout", "pause", "mlp") // idempotent
	mustCLI(t, srv, "rollout", "resume", "mlp")
	if out := mustCLI(t, srv, "rollout", "list"); !strings.Contains(out, "ENDPOINT") || !strings.Contains(out, "mlp") {
		t.Errorf("rollout list = %q", out)
	}

	// --watch, with stdout not a terminal: one line per change, until the end.
	promoted := make(chan error, 1)
	go func() {
		time.Sleep(700 * time.Millisecond) // the watch prints the current state first
		_, err := ferryCLI(t, srv, "rollout", "promote", "mlp")
		promoted <- err
	}()
	watched := mustCLI(t, srv, "rollout", "status", "mlp", "--watch")
	if err := <-promoted; err != nil {
		t.Fatalf("rollout promote: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(watched), "\n")
	if len(lines) < 2 || !strings.Contains(lines[0], "Progressing") || !strings.Contains(lines[len(lines)-1], "mlp: Succeeded, weights 1=0 2=100") {
		t.Errorf("rollout status --watch printed:\n%s\nwant a line per change from Progressing to Succeeded", watched)
	}
	if strings.Contains(watched, "\033[") {
		t.Errorf("--watch redrew the screen on a pipe:\n%q", watched)
	}
	hist := mustCLI(t, srv, "rollout", "history", "mlp")
	for _, want := range []string{"EVENT", "NewCandidate", "Pause", "Promote"} {
		if !strings.Contains(hist, want) {
			t.Errorf("rollout history lacks %q:\n%s", want, hist)
		}
	}
	if _, err := ferryCLI(t, srv, "rollout", "abort", "nope"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("rollout abort nope: err = %v, want a 404", err)
	}
}

func waitState(t *testing.T, srv, ep, state string) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		var s struct{ State string }
		if json.Unmarshal([]byte(mustCLI(t, srv, "rollout", "status", ep, "-o", "json")), &s) == nil && s.State == state {
			return
		}
	}
	t.Fatalf("rollout %s never reached %s", ep, state)
}

func TestRolloutStartFlags(t *testing.T) {
	srv := mgmtServer(t)
	seedCLI(t, srv)
	wantCLIErrors(t, srv, []cliErrorCase{
		{[]string{"rollout", "start", "mlp"}, "--candidate is required"},
		{[]string{"rollout", "start", "--candidate", "2"}, "NAME is required"},
		{[]string{"rollout", "start", "mlp", "--candidate", "2", "--preset", "yolo"}, `--preset "yolo"`},
		{[]string{"rollout", "start", "mlp", "--candidate", "2", "--steps", "50,10"}, "strategy.canary.steps[1]"},
		{[]string{"rollout", "start", "mlp", "--candidate", "2", "--preset", "linear", "--step", "0"}, "strategy.linear.step"},
		{[]string{"rollout", "start", "mlp", "--candidate", "2", "-f", "x.yaml"}, "not both"},
	})
	for _, preset := range []string{"linear", "blue-green", "shadow-then-canary"} {
		t.Run(preset, func(t *testing.T) {
			srv := mgmtServer(t)
			seedCLI(t, srv)
			out := mustCLI(t, srv, "rollout", "start", "mlp", "--candidate", "2", "--preset", preset, "--step", "25", "--interval", "1h", "-o", "json")
			var s struct {
				Rollout struct {
					Strategy struct{ Steps []json.RawMessage }
				}
			}
			if err := json.Unmarshal([]byte(out), &s); err != nil || len(s.Rollout.Strategy.Steps) == 0 {
				t.Errorf("start --preset %s = %s, want the preset expanded into steps", preset, out)
			}
		})
	}
}

// TestWatchRedrawsOnATerminal: the frame for a terminal clears the screen and draws the
// table; -o json writes one compact object per line.
func TestWatchRedrawsOnATerminal(t *testing.T) {
	d := mgmtapi.RolloutDetail{Status: rollout.Status{State: rollout.Progressing, Step: 0, Weights: map[string]int{"1": 50, "2": 50},
		Rollout: rollout.Rollout{Endpoint: "mlp", Stable: "1", Candidate: "2", Strategy: rollout.Strategy{Steps: []rollout.Step{{SetWeight: &rollout.SetWeight{Percent: 50}}}}}}}
	var b bytes.Buffer
	r := &apiFlags{output: "table"}
	if err := r.watchFrame(&b, d, true); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(b.String(), "\033[H\033[2J") || !strings.Contains(b.String(), bar(50)+"   50%") {
		t.Errorf("terminal frame = %q, want a clear screen and the table", b.String())
	}
	b.Reset()
	r.output = "json"
	if err := r.watchFrame(&b, d, false); err != nil {
		t.Fatal(err)
	}
	if strings.Count(b.String(), "\n") != 1 || !strings.Contains(b.String(), `"weights":{"1":50,"2":50}`) {
		t.Errorf("json frame = %q, want one line with the weights", b.String())
	}
}
