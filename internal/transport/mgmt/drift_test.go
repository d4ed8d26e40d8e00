package mgmt

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/ferryml/ferry/internal/monitor/drift"
)

// TestDriftRoutes uploads a CSV baseline for a model no configuration names (it starts
// being watched), reads its report, and refuses bad uploads and windows by name.
func TestDriftRoutes(t *testing.T) {
	m, err := drift.New(drift.Config{Window: drift.WindowConfig{Count: 100}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	a := newAPI(t, Options{Drift: m})
	var csv strings.Builder
	csv.WriteString("x[0],x[1]\n")
	for i := range 200 {
		fmt.Fprintf(&csv, "%d,%d\n", i%37, i%11)
	}
	code, body := a.do("PUT", "/api/v1/drift/tab/baseline", strings.NewReader(csv.String()), map[string]string{"Content-Type": "text/csv"})
	if code != http.StatusOK || !strings.Contains(string(body), `"model":"tab"`) {
		t.Fatalf("upload: %d %s", code, body)
	}
	var reps []drift.Report
	a.json("GET", "/api/v1/drift", nil, http.StatusOK, &reps)
	if len(reps) != 1 || reps[0].Model != "tab" {
		t.Fatalf("reports: %+v", reps)
	}
	var rep drift.Report
	a.json("GET", "/api/v1/drift/tab?window=current", nil, http.StatusOK, &rep)
	for _, tc := range []struct {
		name, method, path, ctype, body string
		code                            int
		want                            string
	}{
		{"a ragged CSV", "PUT", "/api/v1/drift/tab/baseline", "text/csv", "x[0],x[1]\n1,2\n3\n", 400, "baseline for tab"},
		{"an empty body", "PUT", "/api/v1/drift/tab/baseline", "", "", 400, "baseline for tab"},
		{"a bad profile", "PUT", "/api/v1/drift/tab/baseline", "application/json", `{"features":7}`, 400, "baseline for tab"},
		{"a bad window", "GET", "/api/v1/drift/tab?window=yesterday", "", "", 400, `window=\"yesterday\"`},
		{"an unwatched model", "GET", "/api/v1/drift/nope", "", "", 404, "not watched"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := a.do(tc.method, tc.path, strings.NewReader(tc.body), map[string]string{"Content-Type": tc.ctype})
			if code != tc.code || !strings.Contains(string(body), tc.want) {
				t.Errorf("%s %s: %d %s, want %d naming %q", tc.method, tc.path, code, body, tc.code, tc.want)
			}
		})
	}
	off := newAPI(t, Options{})
	if code, body := off.do("GET", "/api/v1/drift", nil, nil); code != 404 || !strings.Contains(string(body), "drift monitoring is not enabled") {
		t.Errorf("without a monitor: %d %s", code, body)
	}
}
