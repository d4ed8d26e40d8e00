package main

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ferryml/ferry/internal/bench"
	"github.com/spf13/pflag"
)

// perfAnalyzerFlags are perf_analyzer's flag forms where ours differ, and its shared
// memory flags.
type perfAnalyzerFlags struct {
	intervalMs   int    // -p, --measurement-interval
	mode         string // --measurement-mode
	requestCount int    // --measurement-request-count
	csv          string // -f
	verbose      bool   // -v
	shm          string // --shared-memory
	outShmBytes  int    // --output-shared-memory-size
	tty          bool   // stderr is a terminal: live progress rewrites one line
}

// The measurement modes of perf_analyzer's --measurement-mode.
const (
	timeWindows  = "time_windows"
	countWindows = "count_windows"
)

// liveEvery is how often a terminal's progress line is rewritten.
const liveEvery = 250 * time.Millisecond

// aliases maps each perf_analyzer flag to the flag of ours it is another name for.
var aliases = map[string]string{"concurrency-range": "concurrency", "request-rate-range": "request-rate",
	"measurement-interval": "duration"}

func addPerfAnalyzerFlags(f *pflag.FlagSet, cfg *benchConfig) {
	pa := &cfg.pa
	f.StringVar(&cfg.concurrency, "concurrency-range", "1", "perf_analyzer's name of --concurrency: start[:end[:step]]")
	f.StringVar(&cfg.rate, "request-rate-range", "", "perf_analyzer's name of --request-rate: start[:end[:step]]")
	f.IntVarP(&pa.intervalMs, "measurement-interval", "p", 5000, "perf_analyzer's form of --duration: the measurement window in milliseconds")
	f.StringVar(&pa.mode, "measurement-mode", timeWindows, "time_windows (each window lasts --duration) or count_windows (each window ends after --measurement-request-count requests)")
	f.IntVar(&pa.requestCount, "measurement-request-count", 50, "count_windows: the requests that end a window")
	f.StringVarP(&pa.csv, "perf-analyzer-csv", "f", "", "also write the report to this file as perf_analyzer's -f CSV (its columns; the client's send and receive are not timed apart: 0)")
	f.BoolVarP(&pa.verbose, "verbose", "v", false, "print each measurement window as a line of its own, and the server's queue and compute times per level")
	f.StringVar(&pa.shm, "shared-memory", bench.ShmNone, "none, or system: every request in flight gets its own /dev/shm regions for its inputs (filled once) and outputs, registered with the server, and requests name them instead of carrying data; cuda is refused (no GPU)")
	f.IntVar(&pa.outShmBytes, "output-shared-memory-size", bench.DefaultOutputShmBytes, "--shared-memory system: bytes of each output's region; an output larger than this fails, so large outputs need it raised (e.g. 16777216 for a 16 MiB tensor)")
	if fi, err := os.Stderr.Stat(); err == nil {
		pa.tty = fi.Mode()&os.ModeCharDevice != 0
	}
}

// changedName is the name a flag was given by, its own or its perf_analyzer alias,
// with dashes; "" when neither was given.
func changedName(f *pflag.FlagSet, name string) string {
	if f.Changed(name) {
		return "--" + name
	}
	for alias, of := range aliases {
		if of == name && f.Changed(alias) {
			return "--" + alias
		}
	}
	return ""
}

// resolveAliases refuses a flag given together with its perf_analyzer alias, and
// sets --duration from -p.
func resolveAliases(f *pflag.FlagSet, cfg *benchConfig) error {
	for _, alias := range slices.Sorted(maps.Keys(aliases)) {
		if of := aliases[alias]; f.Changed(alias) && f.Changed(of) {
			return fmt.Errorf("--%s and --%s are two names of one setting; give one", alias, of)
		}
	}
	if f.Changed("measurement-interval") {
		if cfg.pa.intervalMs < 1 {
			return fmt.Errorf("--measurement-interval %d: want milliseconds, at least 1", cfg.pa.intervalMs)
		}
		cfg.duration = time.Duration(cfg.pa.intervalMs) * time.Millisecond
	}
	return nil
}

// apply sets the options the flags change.
func (pa perfAnalyzerFlags) apply(f *pflag.FlagSet, o *bench.Options, stderr io.Writer) error {
	switch pa.mode {
	case timeWindows:
		if f.Changed("measurement-request-count") {
			return errors.New("--measurement-request-count sizes count windows: it needs --measurement-mode count_windows")
		}
	case countWindows:
		if pa.requestCount < 1 {
			return fmt.Errorf("--measurement-request-count %d: must be at least 1", pa.requestCount)
		}
		o.WindowRequests = pa.requestCount
	default:
		return fmt.Errorf("--measurement-mode %q: want time_windows or count_windows", pa.mode)
	}
	if pa.shm == bench.ShmSystem {
		o.SharedMemory = bench.ShmSystem
	}
	live := &liveLine{w: stderr, tty: pa.tty && !pa.verbose}
	o.Live = live.print
	if live.tty {
		o.LiveEvery = liveEvery
	}
	return nil
}

// sharedMemory is what --shared-memory asks of the client.
func (pa perfAnalyzerFlags) sharedMemory() (*bench.SharedMemory, error) {
	switch pa.shm {
	case bench.ShmNone, "":
		if pa.outShmBytes != bench.DefaultOutputShmBytes {
			return nil, errors.New("--output-shared-memory-size sizes shared memory regions: it needs --shared-memory system")
		}
		return nil, nil
	case bench.ShmSystem:
		if pa.outShmBytes < 1 {
			return nil, fmt.Errorf("--output-shared-memory-size %d: must be at least 1 byte", pa.outShmBytes)
		}
		return &bench.SharedMemory{OutputBytes: pa.outShmBytes}, nil
	case bench.ShmCUDA:
		return nil, errors.New("--shared-memory cuda: CUDA shared memory needs a GPU, and ferry serves without one; use --shared-memory system")
	}
	return nil, fmt.Errorf("--shared-memory %q: want none, system or cuda", pa.shm)
}

// writeCSV writes -f, if given.
func (pa perfAnalyzerFlags) writeCSV(rep *bench.Report) error {
	if pa.csv == "" {
		return nil
	}
	return writeFile(pa.csv, rep.WritePerfAnalyzerCSV)
}

// progress prints a level as soon as it is measured, so a long sweep shows life; on a
// terminal it first clears the live line. With -v it adds the server's phases.
func (pa perfAnalyzerFlags) progress(w io.Writer, what func(bench.Level) string) func(bench.Level) {
	return func(l bench.Level) {
		if pa.tty && !pa.verbose {
			fmt.Fprint(w, "\r\033[K")
		}
		fmt.Fprintf(w, "%s: %.1f req/s, %.1f items/s, p50 %.3f ms, p99 %.3f ms, %d errors\n",
			what(l), l.PerSecond, l.ItemsPerSec, l.P50/1000, l.P99/1000, l.Errors)
		if pa.verbose {
			fmt.Fprintf(w, "  server per request: queue %.1f µs, compute input %.1f µs, infer %.1f µs, output %.1f µs\n",
				l.ServerQueue, l.ServerComputeInput, l.ServerComputeInfer, l.ServerComputeOutput)
		}
	}
}

// liveLine prints the window being measured: on a terminal as one line rewritten in
// place, otherwise as a line per window when it ends.
type liveLine struct {
	w   io.Writer
	tty bool
	mu  sync.Mutex
}

func (ll *liveLine) print(l bench.Live) {
	if !ll.tty && !l.Done {
		return
	}
	var b strings.Builder
	if ll.tty {
		b.WriteString("\r")
	}
	fmt.Fprintf(&b, "%s: window %d/%d", serverLevelName(l.Level), l.Window, l.Windows)
	if l.Count > 0 {
		fmt.Fprintf(&b, " (%d/%d requests)", l.Requests+l.Errors, l.Count)
	}
	fmt.Fprintf(&b, ": %.1fs, %d requests, %d errors, %.1f req/s, mean %.3f ms",
		l.Elapsed.Seconds(), l.Requests, l.Errors, l.PerSecond, l.Mean/1000)
	if ll.tty {
		b.WriteString("\033[K") // clears what a longer line left
	} else {
		b.WriteString("\n")
	}
	ll.mu.Lock()
	defer ll.mu.Unlock()
	io.WriteString(ll.w, b.String())
}
