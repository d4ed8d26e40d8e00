package bench

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// MetricsCPU returns a reader of the CPU time a server has used, from the
// process_cpu_seconds_total sample of its Prometheus text exposition at url (Ferry's
// /metrics, or any Go or Prometheus-instrumented server's), for Options.ServerCPU.
func MetricsCPU(url string) func(ctx context.Context) (time.Duration, error) {
	hc := &http.Client{}
	return func(ctx context.Context) (time.Duration, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return 0, err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return 0, fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return cpuSeconds(bufio.NewScanner(resp.Body), url)
	}
}

// cpuSeconds finds the process_cpu_seconds_total sample among exposition lines.
func cpuSeconds(sc *bufio.Scanner, url string) (time.Duration, error) {
	const name = "process_cpu_seconds_total"
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name)
		if !ok || rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		if rest[0] == '{' { // labels; the value follows the closing brace
			_, rest, _ = strings.Cut(rest, "}")
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			break
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil || v < 0 {
			return 0, fmt.Errorf("%s: %s: bad value %q", url, name, fields[0])
		}
		return time.Duration(v * float64(time.Second)), nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("%s: no %s sample", url, name)
}
