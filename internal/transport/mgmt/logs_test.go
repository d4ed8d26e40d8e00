package mgmt

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ferryml/ferry/internal/monitor/inferlog"
	"github.com/ferryml/ferry/internal/monitor/inferlog/inferlogtest"
	"github.com/ferryml/ferry/internal/transport/mgmt/mgmttest"
)

func TestLogsRoute(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	rd, err := inferlog.Open(inferlogtest.Dir(t, 10, t0))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(New(mgmttest.NewService(t), Options{Logs: rd}))
	defer srv.Close()
	for _, tc := range []struct {
		name, query string
		status      int
		wantIDs     []string
		wantErr     string
	}{
		{"one model", "model=a&limit=2", 200, []string{"id-0", "id-2"}, ""},
		{"ids, repeated and comma-separated", "id=id-3,id-7&id=id-9", 200, []string{"id-3", "id-7", "id-9"}, ""},
		{"a time window", "since=" + url.QueryEscape(t0.Add(4*time.Second).Format(time.RFC3339)) + "&until=" + url.QueryEscape(t0.Add(5*time.Second).Format(time.RFC3339)), 200, []string{"id-4", "id-5"}, ""},
		{"nothing matches", "model=zzz", 200, nil, ""},
		{"a bad time", "since=yesterday", 400, nil, `since \"yesterday\": want an RFC 3339 time`},
		{"a bad limit", "limit=-1", 400, nil, `limit \"-1\": want a number >= 0`},
		{"an unknown parameter", "modle=a", 400, nil, `query parameter \"modle\"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := http.Get(srv.URL + "/api/v1/logs?" + tc.query)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body bytes.Buffer
			_, _ = body.ReadFrom(resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("GET logs?%s = %d %s, want %d", tc.query, resp.StatusCode, body.String(), tc.status)
			}
			if tc.wantErr != "" {
				if !strings.Contains(body.String(), tc.wantErr) {
					t.Fatalf("GET logs?%s = %s, want %s", tc.query, body.String(), tc.wantErr)
				}
				return
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/x-ndjson" {
				t.Errorf("Content-Type = %q", ct)
			}
			var got []string
			sc := bufio.NewScanner(&body)
			for sc.Scan() {
				var e inferlog.Entry
				if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
					t.Fatalf("line %s: %v", sc.Bytes(), err)
				}
				got = append(got, e.ClientRequestID)
			}
			if strings.Join(got, ",") != strings.Join(tc.wantIDs, ",") {
				t.Fatalf("GET logs?%s = %v, want %v", tc.query, got, tc.wantIDs)
			}
		})
	}
}

func TestLogsRouteWithoutALog(t *testing.T) {
	a := newAPI(t, Options{})
	code, body := a.do("GET", "/api/v1/logs", nil, nil)
	if code != 404 || !strings.Contains(string(body), "the inference log is not enabled") {
		t.Fatalf("GET /api/v1/logs without a log = %d %s", code, body)
	}
}
