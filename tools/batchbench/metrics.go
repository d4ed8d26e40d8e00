package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// delayMetric counts the dynamic batches each model version ran, by why they ran.
const delayMetric = "ferry_batch_queue_delay_seconds_count"

// The reasons a batch ran, in the order the tables show them (scheduler.Reason*).
var reasons = []string{"full", "preferred", "delay", "idle"}

// batchCounts is the batches run per model and reason.
type batchCounts map[string]map[string]float64

// minus is what c counted since before.
func (c batchCounts) minus(before batchCounts) batchCounts {
	d := batchCounts{}
	for model, byReason := range c {
		d[model] = map[string]float64{}
		for reason, n := range byReason {
			d[model][reason] = n - before[model][reason]
		}
	}
	return d
}

// scrapeBatches reads the batch counts from the server's /metrics.
func (s *server) scrapeBatches(ctx context.Context) (batchCounts, error) {
	url := "http://" + s.httpAddr + "/metrics"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	counts, err := parseBatchCounts(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	return counts, nil
}

// parseBatchCounts reads the delayMetric samples of a Prometheus text exposition,
// summed over versions.
func parseBatchCounts(r io.Reader) (batchCounts, error) {
	counts := batchCounts{}
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), delayMetric+"{")
		if !ok {
			continue
		}
		labels, value, ok := strings.Cut(rest, "} ")
		if !ok {
			return nil, fmt.Errorf("%s: no value in %q", delayMetric, sc.Text())
		}
		fields := strings.Fields(value) // the value, maybe a timestamp
		if len(fields) == 0 {
			return nil, fmt.Errorf("%s: no value in %q", delayMetric, sc.Text())
		}
		n, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return nil, fmt.Errorf("%s: bad value in %q", delayMetric, sc.Text())
		}
		l := parseLabels(labels)
		if counts[l["model"]] == nil {
			counts[l["model"]] = map[string]float64{}
		}
		counts[l["model"]][l["reason"]] += n
	}
	return counts, sc.Err()
}

// parseLabels reads `a="x",b="y"`; the values here (model names, versions, reasons)
// hold no quotes or commas to escape.
func parseLabels(s string) map[string]string {
	labels := map[string]string{}
	for pair := range strings.SplitSeq(s, ",") {
		k, v, ok := strings.Cut(pair, "=")
		if ok {
			labels[strings.TrimSpace(k)] = strings.Trim(v, `"`)
		}
	}
	return labels
}
