package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
)

// sample is one `ferry bench` run's figures: requests/s, p50 in µs, and the server's
// average batch (Δinference_count / Δexecution_count).
type sample struct{ PerSec, P50, AvgBatch float64 }

// level is one protocol at one concurrency: every config's runs, by config name, and
// the batches the server ran over the whole level (warmups included).
type level struct {
	Concurrency int
	Runs        map[string][]sample
	Batches     batchCounts
}

// cell is a config's figures at a level: the medians over its rounds, each figure on
// its own, and Spread, the rounds' (max - min) / median requests/s.
type cell struct{ PerSec, P50, AvgBatch, Spread float64 }

func summarize(runs []sample) cell {
	pick := func(f func(sample) float64) []float64 {
		xs := make([]float64, len(runs))
		for i, r := range runs {
			xs[i] = f(r)
		}
		return xs
	}
	perSec := pick(func(s sample) float64 { return s.PerSec })
	c := cell{PerSec: median(perSec), P50: median(pick(func(s sample) float64 { return s.P50 })),
		AvgBatch: median(pick(func(s sample) float64 { return s.AvgBatch }))}
	if c.PerSec > 0 {
		c.Spread = (slices.Max(perSec) - slices.Min(perSec)) / c.PerSec
	}
	return c
}

// median is the middle value, or the mean of the middle two; 0 for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(xs))
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}

// table is a titled grid, printed aligned or as Markdown.
type table struct {
	Title  string
	Header []string
	Rows   [][]string
}

// perfTable compares the configs at each level: requests/s and p50 per config, adaptive's
// requests/s over the best of the others issue 14 names (no batching and the fixed
// delays; greedy is for reference only), adaptive's p50 over fixed 5 ms's, adaptive's
// average batch, and the largest spread of any config's rounds (the noise).
func perfTable(protocol string, cs []config, levels []level, rounds int) table {
	t := table{Title: fmt.Sprintf("%s: median of %d round(s) per config", protocol, rounds), Header: []string{"clients"}}
	for _, c := range cs {
		t.Header = append(t.Header, c.Label+" req/s", c.Label+" p50ms")
	}
	t.Header = append(t.Header, "adaptive/best req/s", "adaptive/fixed5 p50", "adaptive batch", "spread")
	for _, l := range levels {
		cells := map[string]cell{}
		row := []string{fmt.Sprint(l.Concurrency)}
		var best, spread float64
		for _, c := range cs {
			cl := summarize(l.Runs[c.Name])
			cells[c.Name] = cl
			row = append(row, fmt.Sprintf("%.0f", cl.PerSec), fmt.Sprintf("%.2f", cl.P50/1000))
			if c != cfgAdaptive && c != cfgGreedy {
				best = max(best, cl.PerSec)
			}
			spread = max(spread, cl.Spread)
		}
		a := cells[cfgAdaptive.Name]
		row = append(row, ratio(a.PerSec, best), ratio(a.P50, cells[cfgFixed5.Name].P50),
			fmt.Sprintf("%.1f", a.AvgBatch), "-")
		if rounds > 1 {
			row[len(row)-1] = fmt.Sprintf("%.0f%%", 100*spread)
		}
		t.Rows = append(t.Rows, row)
	}
	return t
}

// reasonsTable shows why each batching config's batches ran at each level, counted
// over the level's rounds and warmups.
func reasonsTable(protocol string, cs []config, levels []level) table {
	t := table{Title: protocol + ": batches run, by reason (" + strings.Join(reasons, "/") + "), over each level",
		Header: []string{"clients"}}
	var batching []config
	for _, c := range cs {
		if c.Batching {
			batching = append(batching, c)
			t.Header = append(t.Header, c.Label)
		}
	}
	for _, l := range levels {
		row := []string{fmt.Sprint(l.Concurrency)}
		for _, c := range batching {
			counts := make([]string, len(reasons))
			for i, r := range reasons {
				counts[i] = fmt.Sprintf("%.0f", l.Batches[c.Name][r])
			}
			row = append(row, strings.Join(counts, "/"))
		}
		t.Rows = append(t.Rows, row)
	}
	return t
}

// ratio is a/b to two places, or "-" when b is 0.
func ratio(a, b float64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", a/b)
}

func (t table) writeText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, t.Title)
	for _, r := range append([][]string{t.Header}, t.Rows...) {
		fmt.Fprintln(tw, strings.Join(r, "\t")+"\t")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintln(w)
	return err
}

func (t table) writeMarkdown(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "### %s\n\n", t.Title)
	line := func(cells []string) { fmt.Fprintf(&b, "| %s |\n", strings.Join(cells, " | ")) }
	line(t.Header)
	sep := make([]string, len(t.Header))
	for i := range sep {
		sep[i] = "---:"
	}
	line(sep)
	for _, r := range t.Rows {
		line(r)
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}
