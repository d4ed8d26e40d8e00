package main

import (
	"bytes"
	"flag"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferryml/ferry/internal/goldentest"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// twoLevels is two rounds at 1 and 16 clients, with round-to-round noise.
func twoLevels() []level {
	return []level{{
		Concurrency: 1,
		Runs: map[string][]sample{
			"mlp_none":      {{1000, 600, 1}, {1100, 640, 1}},
			"mlp_fixed5":    {{110, 8000, 1}, {112, 7900, 1}},
			"mlp_fixed2":    {{230, 3800, 1}, {234, 3820, 1}},
			"mlp_adaptive5": {{1800, 450, 1}, {1900, 440, 1}},
		},
		Batches: batchCounts{"mlp_fixed5": {"delay": 147}, "mlp_fixed2": {"delay": 310},
			"mlp_adaptive5": {"delay": 11, "idle": 2349}},
	}, {
		Concurrency: 16,
		Runs: map[string][]sample{
			"mlp_none":      {{3600, 3900, 1}, {3700, 4000, 1}},
			"mlp_fixed5":    {{1400, 9800, 15.9}, {1420, 9700, 16}},
			"mlp_fixed2":    {{2500, 5600, 14.8}, {2600, 5700, 15}},
			"mlp_adaptive5": {{9000, 1300, 15.8}, {9400, 1200, 15.6}},
		},
		Batches: batchCounts{"mlp_fixed5": {"delay": 119}, "mlp_fixed2": {"delay": 234},
			"mlp_adaptive5": {"full": 2, "delay": 15, "idle": 219}},
	}}
}

func TestTablesMatchGolden(t *testing.T) {
	cs := configs(false)
	tables := []table{perfTable("grpc", cs, twoLevels(), 2), reasonsTable("grpc", cs, twoLevels())}
	var text, md bytes.Buffer
	for _, tb := range tables {
		if err := tb.writeText(&text); err != nil {
			t.Fatal(err)
		}
		if err := tb.writeMarkdown(&md); err != nil {
			t.Fatal(err)
		}
	}
	golden(t, "tables.txt.golden", text.String())
	golden(t, "tables.md.golden", md.String())
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	goldentest.Compare(t, filepath.Join("testdata", name), []byte(got), *update)
}

func TestPerfTableRatios(t *testing.T) {
	row := perfTable("http", configs(false), twoLevels(), 2).Rows[1]
	// The medians at 16 clients: none 3650 req/s (the best of the others), adaptive
	// 9200 req/s at p50 1250 µs, fixed5 p50 9750 µs; spread: adaptive's 400/9200.
	got := strings.Join(row[len(row)-4:], " ")
	if want := "2.52 0.13 15.7 4%"; got != want {
		t.Errorf("adaptive/best, adaptive/fixed5 p50, adaptive batch, spread = %q, want %q", got, want)
	}
}

func TestPerfTableSpreadNeedsRounds(t *testing.T) {
	l := []level{{Concurrency: 4, Runs: map[string][]sample{"mlp_adaptive5": {{100, 1000, 2}}}}}
	row := perfTable("http", configs(false), l, 1).Rows[0]
	// No other config ran: the ratios have nothing to divide by.
	if got := strings.Join(row[len(row)-4:], " "); got != "- - 2.0 -" {
		t.Errorf("one round, adaptive alone: last columns %q, want \"- - 2.0 -\"", got)
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		xs   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{4, 2}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{9, 1, 2, 4}, 3}} {
		if got := median(tc.xs); got != tc.want {
			t.Errorf("median(%v) = %g, want %g", tc.xs, got, tc.want)
		}
	}
}
