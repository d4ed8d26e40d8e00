package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/ferryml/ferry/internal/bench"
)

// runner runs `ferry bench` against the server, one config at a time.
type runner struct {
	o       options
	srv     *server
	configs []config
	dir     string // where each run's JSON report is written
	log     io.Writer
}

// protocol measures every level over one protocol.
func (r *runner) protocol(ctx context.Context, protocol string) ([]level, error) {
	var levels []level
	for _, c := range r.o.levels {
		l, err := r.level(ctx, protocol, c)
		if err != nil {
			return nil, err
		}
		levels = append(levels, l)
	}
	return levels, nil
}

// level runs each config once per round. Each round starts one config later than the
// one before, so that no config always runs first (after a pause) or last.
func (r *runner) level(ctx context.Context, protocol string, clients int) (level, error) {
	l := level{Concurrency: clients, Runs: map[string][]sample{}}
	before, err := r.srv.scrapeBatches(ctx)
	if err != nil {
		return l, err
	}
	for round := range r.o.rounds {
		for i := range r.configs {
			c := r.configs[(round+i)%len(r.configs)]
			s, err := r.once(ctx, protocol, c, clients)
			if err != nil {
				return l, fmt.Errorf("%s, %d clients, %s: %w", protocol, clients, c.Name, err)
			}
			fmt.Fprintf(r.log, "%s %3d clients, round %d/%d, %-13s %8.1f req/s, p50 %6.2f ms, server batch %.1f\n",
				protocol, clients, round+1, r.o.rounds, c.Name, s.PerSec, s.P50/1000, s.AvgBatch)
			l.Runs[c.Name] = append(l.Runs[c.Name], s)
		}
	}
	after, err := r.srv.scrapeBatches(ctx)
	if err != nil {
		return l, err
	}
	l.Batches = after.minus(before)
	return l, nil
}

// once runs one `ferry bench` and reads its JSON report.
func (r *runner) once(ctx context.Context, protocol string, c config, clients int) (sample, error) {
	out := filepath.Join(r.dir, "bench.json")
	args := []string{"bench", "-m", c.Name, "-u", r.srv.httpAddr, "--concurrency", strconv.Itoa(clients),
		"--duration", r.o.duration.String(), "--warmup", r.o.warmup.String(), "--json", out}
	if protocol == "grpc" {
		// -u stays the REST address: ferry bench reads the server's CPU at its /metrics.
		args = append(args, "--protocol", "grpc", "--grpc", r.srv.grpcAddr)
	}
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, r.o.ferry, args...)
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return sample{}, ctx.Err() // interrupted: the kill is no failure of the run
		}
		return sample{}, fmt.Errorf("ferry %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return readSample(out)
}

// readSample reads the one level of a `ferry bench --json` report; a run with failed
// requests is an error: the failures would skew its figures.
func readSample(path string) (sample, error) {
	text, err := os.ReadFile(path)
	if err != nil {
		return sample{}, err
	}
	var rep bench.Report
	if err := json.Unmarshal(text, &rep); err != nil {
		return sample{}, fmt.Errorf("%s: %w", path, err)
	}
	if len(rep.Levels) != 1 {
		return sample{}, fmt.Errorf("%s: %d levels, want 1", path, len(rep.Levels))
	}
	l := rep.Levels[0]
	if l.Errors > 0 {
		return sample{}, fmt.Errorf("%d of %d requests failed, the first: %s", l.Errors, l.Errors+l.Requests, l.FirstError)
	}
	if l.Requests == 0 {
		return sample{}, fmt.Errorf("%s: no request completed in the window", path)
	}
	return sample{PerSec: l.PerSecond, P50: l.P50, AvgBatch: l.ServerAvgBatch}, nil
}
