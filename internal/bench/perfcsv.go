package bench

import (
	"cmp"
	"encoding/csv"
	"errors"
	"io"
	"slices"
	"strconv"
)

// perfAnalyzerColumns follow the level's column in perf_analyzer's CSV (its -f file,
// with the server's statistics, as it writes it for a Triton server).
var perfAnalyzerColumns = []string{"Inferences/Second", "Client Send", "Network+Server Send/Recv", "Server Queue",
	"Server Compute Input", "Server Compute Infer", "Server Compute Output", "Client Recv",
	"p50 latency", "p90 latency", "p95 latency", "p99 latency"}

// WritePerfAnalyzerCSV writes the report as perf_analyzer's -f file: a header, then
// one row per level in order of increasing throughput, times in whole µs. Client Send
// and Client Recv are 0: the requests are encoded before the run and their send and
// receive are not timed apart from the wait. Network+Server Send/Recv is the mean
// latency less the server's queue and compute times, as perf_analyzer computes it.
func (r *Report) WritePerfAnalyzerCSV(w io.Writer) error {
	first := "Concurrency"
	switch r.Mode {
	case ModeRequestRate:
		first = "Request Rate"
	case ModeEngine:
		return errors.New("perf_analyzer's CSV describes a run against a server, not --engine")
	}
	cw := csv.NewWriter(w)
	if err := cw.Write(append([]string{first}, perfAnalyzerColumns...)); err != nil {
		return err
	}
	levels := slices.Clone(r.Levels)
	slices.SortStableFunc(levels, func(a, b Level) int { return cmp.Compare(a.ItemsPerSec, b.ItemsPerSec) })
	g := func(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) } // a C++ stream's default
	whole := func(v float64) string { return strconv.FormatUint(uint64(max(v, 0)), 10) }
	for _, l := range levels {
		level := strconv.Itoa(l.Concurrency)
		if r.Mode == ModeRequestRate {
			level = g(l.RequestRate)
		}
		server := l.ServerQueue + l.ServerComputeInput + l.ServerComputeInfer + l.ServerComputeOutput
		row := []string{level, g(l.ItemsPerSec), "0", whole(l.Mean - server), whole(l.ServerQueue),
			whole(l.ServerComputeInput), whole(l.ServerComputeInfer), whole(l.ServerComputeOutput), "0",
			whole(l.P50), whole(l.P90), whole(l.P95), whole(l.P99)}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
