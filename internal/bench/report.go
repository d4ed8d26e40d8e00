package bench

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ferryml/ferry/internal/tensor"
)

// The kinds of run a Report holds.
const (
	ModeConcurrency = "concurrency"  // closed loop: a fixed number of requests in flight
	ModeRequestRate = "request_rate" // open loop: arrivals at a rate (Distribution)
	ModeEngine      = "engine"       // in-process engine, one caller
)

// Report is the result of one benchmark run, one Level per load level (or batch size).
type Report struct {
	Mode     string `json:"mode"`
	Model    string `json:"model"`
	Version  string `json:"version,omitempty"`
	Protocol string `json:"protocol"` // http, http-binary, grpc, or the engine's name
	// SharedMemory is "system" when the tensors travelled in shared memory regions.
	SharedMemory string        `json:"shared_memory,omitempty"`
	Inputs       []InputReport `json:"inputs"` // as sent in the first level
	Duration     float64       `json:"duration_s"`
	// WindowRequests is the requests that ended each window (count windows); 0: each
	// window lasted Duration.
	WindowRequests int `json:"window_requests,omitempty"`
	// Stability is the percentage within which a level's last three windows had to
	// agree; 0: each level is one window.
	Stability float64 `json:"stability_percent,omitempty"`
	// Percentile names the latency that stability and the latency limit judged: 50, 90,
	// 95 or 99; 0 is the mean.
	Percentile float64 `json:"percentile,omitempty"`
	// LatencyLimit, in µs, is set when a level's latency was above it: a sweep stopped
	// there, or a binary search turned back.
	LatencyLimit float64 `json:"latency_limit_us,omitempty"`
	// BinarySearch: the levels are those a binary search for the last one within the
	// latency limit measured, not a sweep.
	BinarySearch bool `json:"binary_search,omitempty"`
	// Distribution spaces an open loop's arrivals: Poisson or Constant.
	Distribution string `json:"distribution,omitempty"`
	// SequenceLength is the requests per sequence of a stateful model; 0 for others.
	SequenceLength int     `json:"sequence_length,omitempty"`
	Levels         []Level `json:"levels"`
}

// InputReport is one input as the requests carry it.
type InputReport struct {
	Name     string  `json:"name"`
	DataType string  `json:"datatype"`
	Shape    []int64 `json:"shape"`
}

// Level is one measured load level. Latencies are in microseconds; the requests
// counted are those that completed inside the measurement window.
type Level struct {
	Concurrency int     `json:"concurrency,omitempty"`
	RequestRate float64 `json:"request_rate,omitempty"`
	BatchSize   int     `json:"batch_size"`
	Requests    int     `json:"requests"`
	Errors      int     `json:"errors"`
	Late        int     `json:"late"`    // open loop: sent more than 2 ms after their time
	Dropped     int     `json:"dropped"` // open loop: not sent, the in-flight limit was reached
	Seconds     float64 `json:"seconds"`
	PerSecond   float64 `json:"requests_per_second"`
	ItemsPerSec float64 `json:"items_per_second"`
	P50         float64 `json:"p50_us"`
	P90         float64 `json:"p90_us"`
	P95         float64 `json:"p95_us"`
	P99         float64 `json:"p99_us"`
	Mean        float64 `json:"mean_us"`
	// ServerAvgBatch is Δinference_count / Δexecution_count from the server's statistics
	// over the window; 0 when the statistics were unavailable.
	ServerAvgBatch float64 `json:"server_avg_batch"`
	// ServerCPUPerRequest is the server process's CPU time over the window per request
	// answered in it, in µs (0: unknown, see Options.ServerCPU); ClientCPUPerRequest is
	// the same for this process, the load generator.
	ServerCPUPerRequest float64 `json:"server_cpu_us_per_request,omitempty"`
	// The server's mean time per request in each phase its statistics time (queue,
	// compute input, infer and output), µs; 0 when unknown.
	ServerQueue         float64 `json:"server_queue_us,omitempty"`
	ServerComputeInput  float64 `json:"server_compute_input_us,omitempty"`
	ServerComputeInfer  float64 `json:"server_compute_infer_us,omitempty"`
	ServerComputeOutput float64 `json:"server_compute_output_us,omitempty"`
	ClientCPUPerRequest float64 `json:"client_cpu_us_per_request,omitempty"`
	FirstError          string  `json:"first_error,omitempty"`
	// Windows is how many windows were measured when stability was asked for; the level
	// reports the last three. Unstable means they never agreed.
	Windows  int  `json:"windows,omitempty"`
	Unstable bool `json:"unstable,omitempty"`
}

// latency is the level's latency percentile p (50, 90, 95 or 99) in µs, or its mean
// when p is 0.
func (l Level) latency(p float64) float64 {
	switch p {
	case 50:
		return l.P50
	case 90:
		return l.P90
	case 95:
		return l.P95
	case 99:
		return l.P99
	}
	return l.Mean
}

// measure fills the throughput and latency figures of l from the latencies of the
// successful requests of a window of length window.
func (l *Level) measure(lat []time.Duration, window time.Duration) {
	l.Requests = len(lat)
	l.Seconds = window.Seconds()
	if l.Seconds > 0 {
		l.PerSecond = float64(len(lat)) / l.Seconds
		l.ItemsPerSec = l.PerSecond * float64(l.BatchSize)
	}
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	l.Mean = us(sum / time.Duration(len(lat)))
	l.P50, l.P90, l.P95, l.P99 = us(percentile(lat, 50)), us(percentile(lat, 90)), us(percentile(lat, 95)), us(percentile(lat, 99))
}

// percentile is the nearest-rank percentile of sorted latencies, so it is always one of
// the measured values and grows with p.
func percentile(sorted []time.Duration, p float64) time.Duration {
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func us(d time.Duration) float64 { return math.Round(float64(d)/float64(time.Microsecond)*10) / 10 }

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

var csvHeader = []string{"mode", "model", "protocol", "concurrency", "request_rate", "batch_size", "requests", "errors",
	"late", "dropped", "seconds", "requests_per_second", "items_per_second", "p50_us", "p90_us", "p95_us", "p99_us",
	"mean_us", "server_avg_batch", "server_cpu_us_per_request", "client_cpu_us_per_request", "windows", "unstable"}

// WriteCSV writes one row per level under a header row.
func (r *Report) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(csvHeader); err != nil {
		return err
	}
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	for _, l := range r.Levels {
		row := []string{r.Mode, r.Model, r.Protocol, strconv.Itoa(l.Concurrency), f(l.RequestRate), strconv.Itoa(l.BatchSize),
			strconv.Itoa(l.Requests), strconv.Itoa(l.Errors), strconv.Itoa(l.Late), strconv.Itoa(l.Dropped), f(l.Seconds),
			f(round(l.PerSecond, 2)), f(round(l.ItemsPerSec, 2)), f(l.P50), f(l.P90), f(l.P95), f(l.P99), f(l.Mean),
			f(round(l.ServerAvgBatch, 3)), f(l.ServerCPUPerRequest), f(l.ClientCPUPerRequest), strconv.Itoa(l.Windows),
			strconv.FormatBool(l.Unstable)}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

// WriteTable writes a title line and an aligned table, then a line per level that
// had errors, naming the first.
func (r *Report) WriteTable(w io.Writer) error {
	fmt.Fprintln(w, r.title())
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	cols := r.columns()
	for _, c := range cols {
		fmt.Fprintf(tw, "%s\t", c.name)
	}
	fmt.Fprintln(tw)
	for _, l := range r.Levels {
		for _, c := range cols {
			fmt.Fprintf(tw, "%s\t", c.value(l))
		}
		fmt.Fprintln(tw)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, l := range r.Levels {
		if l.Errors > 0 {
			fmt.Fprintf(w, "%s: %d errors, first: %s\n", r.levelName(l), l.Errors, l.FirstError)
		}
		if l.Unstable {
			fmt.Fprintf(w, "%s: not stable within ±%g%% after %d windows; the last %d are reported\n",
				r.levelName(l), r.Stability, l.Windows, stableWindows)
		}
	}
	switch {
	case r.BinarySearch:
		r.writeSearchResult(w)
	case r.LatencyLimit > 0 && len(r.Levels) > 0:
		l := r.Levels[len(r.Levels)-1]
		fmt.Fprintf(w, "%s: %s latency %.3f ms is over the %.3f ms limit; the sweep stopped there\n",
			r.levelName(l), r.latencyName(), l.latency(r.Percentile)/1000, r.LatencyLimit/1000)
	}
	return nil
}

// writeSearchResult names the last level a binary search found within the limit.
func (r *Report) writeSearchResult(w io.Writer) {
	var best *Level
	for i, l := range r.Levels {
		if r.LatencyLimit == 0 || l.latency(r.Percentile) <= r.LatencyLimit {
			best = &r.Levels[i]
		}
	}
	if best == nil {
		fmt.Fprintf(w, "binary search: no level measured is within the latency limit\n")
		return
	}
	fmt.Fprintf(w, "binary search: %s is the last level within the latency limit (%s latency %.3f ms)\n",
		r.levelName(*best), r.latencyName(), best.latency(r.Percentile)/1000)
}

func (r *Report) latencyName() string {
	if r.Percentile == 0 {
		return "mean"
	}
	return fmt.Sprintf("p%g", r.Percentile)
}

func (r *Report) title() string {
	var b strings.Builder
	fmt.Fprintf(&b, "model %s", r.Model)
	if r.Version != "" {
		fmt.Fprintf(&b, " version %s", r.Version)
	}
	protocol := r.Protocol
	if r.SharedMemory != "" {
		protocol += " with " + r.SharedMemory + " shared memory"
	}
	window := fmt.Sprintf("%gs", r.Duration)
	if r.WindowRequests > 0 {
		window = fmt.Sprintf("%d-request", r.WindowRequests)
	}
	if r.Stability > 0 {
		fmt.Fprintf(&b, ", %s, %s windows until %d agree within ±%g%% (throughput, %s latency)", protocol, window,
			stableWindows, r.Stability, r.latencyName())
	} else {
		fmt.Fprintf(&b, ", %s, %s per level", protocol, window)
	}
	if len(r.Levels) > 0 && r.Mode != ModeEngine {
		fmt.Fprintf(&b, ", batch size %d", r.Levels[0].BatchSize)
	}
	switch r.Distribution {
	case "":
	case Intervals:
		b.WriteString(", arrivals at the given intervals")
	default:
		fmt.Fprintf(&b, ", %s arrivals", r.Distribution)
	}
	if r.SequenceLength > 0 {
		fmt.Fprintf(&b, ", sequences of %d requests", r.SequenceLength)
	}
	for i, in := range r.Inputs {
		sep := ", "
		if i == 0 {
			sep = "; inputs: "
		}
		fmt.Fprintf(&b, "%s%s %s%v", sep, in.Name, in.DataType, tensor.Shape(in.Shape))
	}
	return b.String()
}

func (r *Report) levelName(l Level) string {
	switch r.Mode {
	case ModeRequestRate:
		return fmt.Sprintf("request rate %g", l.RequestRate)
	case ModeEngine:
		return fmt.Sprintf("batch size %d", l.BatchSize)
	}
	return fmt.Sprintf("concurrency %d", l.Concurrency)
}

type column struct {
	name  string
	value func(Level) string
}

func (r *Report) columns() []column {
	ms := func(v float64) string { return strconv.FormatFloat(v/1000, 'f', 3, 64) }
	num := func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }
	latency := []column{
		{"p50 ms", func(l Level) string { return ms(l.P50) }},
		{"p90 ms", func(l Level) string { return ms(l.P90) }},
		{"p95 ms", func(l Level) string { return ms(l.P95) }},
		{"p99 ms", func(l Level) string { return ms(l.P99) }},
		{"mean ms", func(l Level) string { return ms(l.Mean) }},
	}
	if r.Mode == ModeEngine {
		return append([]column{
			{"batch", func(l Level) string { return strconv.Itoa(l.BatchSize) }},
			{"runs/s", func(l Level) string { return num(l.PerSecond) }},
			{"items/s", func(l Level) string { return num(l.ItemsPerSec) }},
		}, latency...)
	}
	cols := []column{{"concurrency", func(l Level) string { return strconv.Itoa(l.Concurrency) }}}
	if r.Mode == ModeRequestRate {
		cols = []column{{"rate/s", func(l Level) string { return num(l.RequestRate) }}}
	}
	cols = append(cols,
		column{"req/s", func(l Level) string { return num(l.PerSecond) }},
		column{"items/s", func(l Level) string { return num(l.ItemsPerSec) }})
	cols = append(cols, latency...)
	cols = append(cols, column{"errors", func(l Level) string { return strconv.Itoa(l.Errors) }})
	if r.Mode == ModeRequestRate {
		cols = append(cols,
			column{"late", func(l Level) string { return strconv.Itoa(l.Late) }},
			column{"dropped", func(l Level) string { return strconv.Itoa(l.Dropped) }})
	}
	orDash := func(v float64, digits int) string {
		if v == 0 {
			return "-"
		}
		return strconv.FormatFloat(v, 'f', digits, 64)
	}
	cols = append(cols,
		column{"avg batch", func(l Level) string { return orDash(l.ServerAvgBatch, 2) }},
		column{"server µs/req", func(l Level) string { return orDash(l.ServerCPUPerRequest, 1) }},
		column{"client µs/req", func(l Level) string { return orDash(l.ClientCPUPerRequest, 1) }})
	if r.Stability > 0 {
		cols = append(cols, column{"windows", func(l Level) string { return strconv.Itoa(l.Windows) }})
	}
	return cols
}
