package llmbench

import (
	"fmt"
	"io"
	"math"
	"strings"
)

// WriteText writes the result as the table `vllm bench serve` prints.
func (r *Result) WriteText(w io.Writer) {
	row := func(label string, v any) {
		if f, ok := v.(float64); ok {
			v = fmt.Sprintf("%.2f", f)
		}
		fmt.Fprintf(w, "%-40s %-10v\n", label, v)
	}
	fmt.Fprintln(w, center(" Serving Benchmark Result ", '='))
	row("Successful requests:", r.Completed)
	row("Failed requests:", r.Failed)
	if r.MaxConcurrency > 0 {
		row("Maximum request concurrency:", r.MaxConcurrency)
	}
	if r.RequestRate > 0 && !math.IsInf(r.RequestRate, 1) {
		row("Request rate configured (RPS):", r.RequestRate)
	}
	row("Benchmark duration (s):", r.Duration)
	row("Total input tokens:", r.TotalInputTokens)
	row("Total generated tokens:", r.TotalOutputTokens)
	row("Request throughput (req/s):", r.RequestThroughput)
	if r.RequestGoodput != nil {
		row("Request goodput (req/s):", *r.RequestGoodput)
	}
	row("Output token throughput (tok/s):", r.OutputThroughput)
	row("Total token throughput (tok/s):", r.TotalTokenThroughput)
	for _, m := range []struct {
		name, header string
		st           Stats
	}{
		{"TTFT", "Time to First Token", r.TTFT},
		{"TPOT", "Time per Output Token (excl. 1st token)", r.TPOT},
		{"ITL", "Inter-token Latency", r.ITL},
		{"E2EL", "End-to-end Latency", r.E2EL},
	} {
		fmt.Fprintln(w, center(m.header, '-'))
		row("Mean "+m.name+" (ms):", m.st.Mean)
		row("Median "+m.name+" (ms):", m.st.Median)
		for _, p := range m.st.Percentiles {
			row("P"+pWord(p.P)+" "+m.name+" (ms):", p.Value)
		}
	}
	fmt.Fprintln(w, strings.Repeat("=", 50))
}

// center centres s in 50 columns of fill, the extra column on the right as Python's
// str.format "^" does.
func center(s string, fill rune) string {
	pad := max(50-len(s), 0)
	return strings.Repeat(string(fill), pad/2) + s + strings.Repeat(string(fill), pad-pad/2)
}
