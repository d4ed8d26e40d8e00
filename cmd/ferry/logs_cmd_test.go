package main

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ferryml/ferry/internal/monitor/inferlog"
	"github.com/ferryml/ferry/internal/monitor/inferlog/inferlogtest"
	"github.com/ferryml/ferry/internal/transport/mgmt"
	"github.com/ferryml/ferry/internal/transport/mgmt/mgmttest"
)

// clientIDs reads the JSON lines `ferry logs` printed.
func clientIDs(t *testing.T, out string) []string {
	t.Helper()
	var ids []string
	for line := range strings.Lines(out) {
		var e inferlog.Entry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("ferry logs printed %q: %v", line, err)
		}
		ids = append(ids, e.ClientRequestID)
	}
	return ids
}

// TestLogsCommand: the same queries give the same entries from a directory (--dir)
// and through a server's /api/v1/logs.
func TestLogsCommand(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	dir := inferlogtest.Dir(t, 12, t0)
	rd, err := inferlog.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mgmt.New(mgmttest.NewService(t), mgmt.Options{Logs: rd}))
	defer srv.Close()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"a model's version", []string{"--model", "a", "--version", "1"}, "id-0,id-6"},
		{"ids", []string{"--id", "id-3,id-4", "--id", "id-11"}, "id-3,id-4,id-11"},
		{"a window", []string{"--since", t0.Add(2 * time.Second).Format(time.RFC3339), "--until", t0.Add(4 * time.Second).Format(time.RFC3339)}, "id-2,id-3,id-4"},
		{"a limit", []string{"--model", "b", "--limit", "2"}, "id-1,id-3"},
		{"since a duration ago (all are older)", []string{"--since", "1h"}, ""},
	} {
		for _, where := range [][]string{{"--dir", dir}, {"--server", srv.URL}} {
			t.Run(tc.name+" "+where[0], func(t *testing.T) {
				out, err := cli(t, nil, append(append([]string{"logs"}, where...), tc.args...)...)
				if err != nil {
					t.Fatal(err)
				}
				if got := strings.Join(clientIDs(t, out), ","); got != tc.want {
					t.Fatalf("ferry logs %v = %s, want %s", tc.args, got, tc.want)
				}
			})
		}
	}
}

func TestLogsCommandErrors(t *testing.T) {
	srv := httptest.NewServer(mgmt.New(mgmttest.NewService(t), mgmt.Options{}))
	defer srv.Close()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--server", srv.URL}, "404 Not Found: the inference log is not enabled"},
		{[]string{"--dir", "/nonexistent/ferry-log"}, "no such file or directory"},
		{[]string{"--dir", t.TempDir(), "--since", "yesterday"}, `--since "yesterday": want an RFC 3339 time`},
		{[]string{"--dir", t.TempDir(), "--limit", "-1"}, "--limit -1: want a number >= 0"},
	} {
		_, err := cli(t, nil, append([]string{"logs"}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ferry logs %v: %v, want %q", tc.args, err, tc.want)
		}
	}
}
