package bench

import (
	"bufio"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestCPUSeconds(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		want       time.Duration
		wantErr    string
	}{
		{"plain", "# HELP process_cpu_seconds_total x\n# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 12.5\n", 12500 * time.Millisecond, ""},
		{"labels and timestamp", "go_goroutines 3\nprocess_cpu_seconds_total{job=\"a\"} 0.25 1700000000000\n", 250 * time.Millisecond, ""},
		{"a longer name is not it", "process_cpu_seconds_total_x 3\n", 0, "no process_cpu_seconds_total sample"},
		{"missing", "go_goroutines 3\n", 0, "no process_cpu_seconds_total sample"},
		{"bad value", "process_cpu_seconds_total lots\n", 0, `bad value "lots"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := cpuSeconds(bufio.NewScanner(strings.NewReader(tc.text)), "m")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("= %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func TestMetricsCPU(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte("process_cpu_seconds_total 1.5\n"))
	}))
	defer srv.Close()
	if got, err := MetricsCPU(srv.URL + "/metrics")(t.Context()); err != nil || got != 1500*time.Millisecond {
		t.Errorf("MetricsCPU = %v, %v; want 1.5s", got, err)
	}
	if _, err := MetricsCPU(srv.URL + "/nope")(t.Context()); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("MetricsCPU on a 404: %v, want an error naming the status", err)
	}
}
