package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/ferryml/ferry/internal/backend/onnx"
	"github.com/ferryml/ferry/internal/bench"
	"github.com/ferryml/ferry/internal/platform/threadprio"
	"github.com/ferryml/ferry/internal/tensor"
	"github.com/spf13/cobra"
	"google.golang.org/grpc/metadata"
)

// benchConfig is everything `ferry bench` reads from its flags.
type benchConfig struct {
	model, version    string
	url, grpcAddr     string
	grpcConns         int
	metricsURL        string
	streaming         bool
	schedBatch        bool // the generator's threads to SCHED_BATCH (threadprio)
	protocol          string
	batch             int
	concurrency       string
	rate              string
	distribution      string
	intervals         string
	maxInFlight       int
	duration, warmup  time.Duration
	timeout           time.Duration
	shapes            []string
	headers           []string
	compression       string
	binarySearch      bool
	inputData         string
	seed              uint64
	jsonOut, csvOut   string
	engineDir         string
	maxBatch, intraOp int
	engineInstances   int
	seqLength         int
	seqIDRange        string
	seqOpen           int
	stability         float64
	maxTrials         int
	percentile        float64
	latencyLimit      time.Duration
	pa                perfAnalyzerFlags
}

// openRuntime provides the ONNX Runtime for --engine and a function that releases it.
type openRuntime func() (*onnx.Runtime, func(), error)

func benchCommand(getenv func(string) string, stdout, stderr io.Writer) *cobra.Command {
	cmd := newBenchCommand(stdout, stderr, func() (*onnx.Runtime, func(), error) {
		lib, err := ortLibrary(getenv)
		if err != nil {
			return nil, nil, err
		}
		rt, err := onnx.NewRuntime(onnx.Options{LibraryPath: lib})
		if err != nil {
			return nil, nil, err
		}
		return rt, func() { rt.Close() }, nil
	})
	// The load generator's CPU is taken from the server's machine: like the server, it
	// keeps a GC headroom, unless the environment sets GOGC. Its own CPU per unary request,
	// identity_fp32 at 64 clients, 3 rounds: 16.5-18.0 µs with it, 18.2-20.7 without.
	cmd.PersistentPreRun = func(cmd *cobra.Command, _ []string) {
		tuneGC(cmd.Context(), defaultGCHeadroom, getenv)
	}
	cmd.AddCommand(benchLLMCommand(getenv, stdout)) // bench_llm.go
	return cmd
}

func newBenchCommand(stdout, stderr io.Writer, runtime openRuntime) *cobra.Command {
	var cfg benchConfig
	cmd := &cobra.Command{
		Use:   "bench -m MODEL [flags] | bench --engine MODEL_DIR",
		Short: "Measure a model's throughput and latency over V2 HTTP or gRPC, or in process (--engine)",
		Long: `bench drives a V2 server the way Triton's perf_analyzer does: closed loop at each
--concurrency level (start:end:step, step +N or xN) or open loop at each --request-rate
(R or start:end:step; Poisson arrivals, or a fixed pace with --request-distribution
constant). Each level reports requests/s, items/s (requests x batch size),
latency percentiles, errors and the server's average batch size from its statistics
(Δinference_count / Δexecution_count over the level). Open loop also counts requests
sent more than 2 ms late (the load generator fell behind) and requests dropped because
--max-inflight were already waiting.

With --engine MODEL_DIR it runs MODEL_DIR/<version>/model.onnx in this process through
ONNX Runtime at batch sizes 1, 2, 4, ... --max-batch: the engine's limit, to compare the
server with.`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := resolveAliases(cmd.Flags(), &cfg); err != nil {
				return err
			}
			if cfg.engineDir != "" {
				rt, release, err := runtime()
				if err != nil {
					return err
				}
				defer release()
				return runEngineBench(cmd.Context(), cfg, rt, stdout, stderr)
			}
			return runServerBench(cmd.Context(), cmd, cfg, stdout, stderr)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&cfg.model, "model", "m", "", "model to benchmark")
	f.StringVarP(&cfg.version, "model-version", "x", "", "model version (default: the server's choice; with --engine, the highest)")
	f.StringVarP(&cfg.url, "url", "u", "localhost:8000", "V2 REST address (with --protocol grpc and no --grpc, the gRPC address)")
	f.StringVar(&cfg.grpcAddr, "grpc", "localhost:8001", "V2 gRPC address; setting it selects --protocol grpc")
	f.StringVar(&cfg.metricsURL, "metrics-url", "", "the server's Prometheus /metrics, read for its CPU per request (default: /metrics at --url; none: off)")
	f.BoolVar(&cfg.streaming, "streaming", false, "gRPC: send requests on ModelStreamInfer streams (one per request in flight) instead of unary calls")
	f.BoolVar(&cfg.schedBatch, "sched-batch", true, "Linux: the load generator's threads run as SCHED_BATCH, so that on the server's machine its wakeups do not preempt the server's model execution (on 2 cores, 32 clients x 8 items: 5-10% more through and a quarter less generator CPU per request)")
	f.IntVar(&cfg.grpcConns, "grpc-conns", 1, "gRPC connections the requests take turns on (one multiplexes best on few cores: 11 connections cost 64 clients 25% of their throughput on 2 cores)")
	f.StringVarP(&cfg.protocol, "protocol", "i", "", "http (JSON tensors), http-binary (binary tensor data extension) or grpc (default: http, or grpc when --grpc is set)")
	f.IntVarP(&cfg.batch, "batch-size", "b", 1, "items per request (the batch dimension)")
	f.StringVar(&cfg.concurrency, "concurrency", "1", "closed-loop levels: N or start:end[:step], step +N or xN (e.g. 1:64:x2)")
	f.StringVar(&cfg.rate, "request-rate", "", "open loop instead: arrivals at this many requests per second; R or start:end:step, step +S or xF (e.g. 500:2000:500)")
	f.StringVar(&cfg.intervals, "request-intervals", "", "open loop instead: a file of the gaps between arrivals, microseconds, one per line, replayed in turn (perf_analyzer's flag)")
	f.StringVar(&cfg.distribution, "request-distribution", bench.Poisson, "open loop: how arrivals are spaced, poisson (independent users) or constant (a fixed pace)")
	f.IntVar(&cfg.maxInFlight, "max-inflight", 1024, "open loop: most requests in flight; arrivals beyond are dropped and counted")
	f.DurationVar(&cfg.duration, "duration", 5*time.Second, "measurement window per level (per batch size with --engine)")
	f.Float64Var(&cfg.stability, "stability-percentage", 0, "measure each level in --duration windows until the last 3 agree within this percentage (throughput and mean latency), as perf_analyzer does by default with 10; 0: one window")
	f.IntVar(&cfg.maxTrials, "max-trials", bench.DefaultMaxWindows, "with --stability-percentage: most windows per level")
	f.Float64Var(&cfg.percentile, "percentile", 0, "the latency --stability-percentage and --latency-threshold judge: 50, 90, 95 or 99 (default: the mean)")
	f.BoolVar(&cfg.binarySearch, "binary-search", false, "with --latency-threshold: binary-search the sweep for the last level within it instead of measuring every level up to it (perf_analyzer's flag)")
	f.DurationVar(&cfg.latencyLimit, "latency-threshold", 0, "end a --concurrency or --request-rate sweep after the first level whose latency (see --percentile) is above this, e.g. 10ms")
	f.DurationVar(&cfg.warmup, "warmup", time.Second, "unmeasured load before each window")
	f.DurationVar(&cfg.timeout, "timeout", time.Minute, "per-request timeout")
	f.StringVar(&cfg.compression, "grpc-compression-algorithm", "none", "gRPC: compress every message with none, gzip or deflate (perf_analyzer's flag)")
	f.StringArrayVarP(&cfg.headers, "header", "H", nil, `"Name: value" sent with every request, as an HTTP header or gRPC metadata (repeatable), e.g. -H "Authorization: Bearer $TOKEN"`)
	f.StringArrayVar(&cfg.shapes, "shape", nil, "NAME:d1,d2,... the dimensions of an input's variable dims, without the batch dim (repeatable; default 1)")
	f.StringVar(&cfg.inputData, "input-data", bench.DataRandom, "random, zero, or a JSON file {\"data\":[{\"INPUT0\":[...]}, ...]} with one item per entry")
	f.Uint64Var(&cfg.seed, "seed", 1, "seed of the random data and the Poisson schedule")
	f.StringVar(&cfg.jsonOut, "json", "", "also write the report as JSON to this file")
	f.StringVar(&cfg.csvOut, "csv", "", "also write the report as CSV to this file")
	f.IntVar(&cfg.seqLength, "sequence-length", bench.DefaultSequenceLength, "stateful models: requests per sequence")
	f.StringVar(&cfg.seqIDRange, "sequence-id-range", "1", "stateful models: sequence ids start[:end], taken in turn, end excluded (without end: no limit)")
	f.IntVar(&cfg.seqOpen, "num-of-sequences", bench.DefaultOpenSequences, "stateful models, open loop: sequences the requests take turns on (closed loop: one per client)")
	f.StringVar(&cfg.engineDir, "engine", "", "measure MODEL_DIR/<version>/model.onnx in process instead of a server")
	f.IntVar(&cfg.maxBatch, "max-batch", 0, "--engine: largest batch size (default: the config's max_batch_size, else 64)")
	f.IntVar(&cfg.intraOp, "onnx-intra-op-threads", 0, "--engine: ONNX Runtime threads (0: as ferry serve picks them for the model)")
	f.IntVar(&cfg.engineInstances, "engine-instances", 0, "--engine: sessions run side by side, each by its own caller (0: the config's instance_group count, as ferry serve runs it)")
	addPerfAnalyzerFlags(f, &cfg)
	return cmd
}

func runServerBench(ctx context.Context, cmd *cobra.Command, cfg benchConfig, stdout, stderr io.Writer) (err error) {
	f := cmd.Flags()
	if cfg.model == "" {
		return errors.New("--model (-m) is required, or --engine MODEL_DIR")
	}
	concurrency, rate := changedName(f, "concurrency"), changedName(f, "request-rate")
	if concurrency != "" && rate != "" {
		return fmt.Errorf("%s and %s exclude each other", concurrency, rate)
	}
	if cfg.intervals != "" && (concurrency != "" || rate != "" || f.Changed("request-distribution")) {
		return errors.New("--request-intervals replaces --concurrency, --request-rate and --request-distribution")
	}
	if f.Changed("request-distribution") && cfg.rate == "" {
		return errors.New("--request-distribution spaces the arrivals of --request-rate, which is not set")
	}
	levels, err := bench.ParseConcurrency(cfg.concurrency)
	if err != nil {
		return fmt.Errorf("%s: %w", cmp.Or(concurrency, "--concurrency"), err)
	}
	opts, err := commonOptions(cfg)
	if err != nil {
		return err
	}
	if err := cfg.pa.apply(f, &opts, stderr); err != nil {
		return err
	}
	if cfg.schedBatch {
		// The generator measures the server; where the two share cores, the server's
		// inference should not wait for the generator's wakeups (see threadprio).
		if err := threadprio.Background(); err != nil {
			fmt.Fprintln(stderr, "bench: --sched-batch:", err)
		}
	}
	opts.Batch, opts.Concurrency, opts.MaxInFlight = cfg.batch, levels, cfg.maxInFlight
	if cfg.rate != "" {
		if opts.RequestRates, err = bench.ParseRates(cfg.rate); err != nil {
			return fmt.Errorf("%s: %w", cmp.Or(rate, "--request-rate"), err)
		}
		opts.Distribution = cfg.distribution
	}
	if cfg.intervals != "" {
		if opts.Intervals, err = readIntervals(cfg.intervals); err != nil {
			return fmt.Errorf("--request-intervals: %w", err)
		}
	}
	first, last, err := bench.ParseIDRange(cfg.seqIDRange)
	if err != nil {
		return fmt.Errorf("--sequence-id-range: %w", err)
	}
	if cfg.seqLength < 1 || cfg.seqOpen < 1 {
		return fmt.Errorf("--sequence-length %d, --num-of-sequences %d: both must be at least 1", cfg.seqLength, cfg.seqOpen)
	}
	opts.Stability, opts.MaxWindows = cfg.stability, cfg.maxTrials
	opts.Percentile, opts.LatencyLimit, opts.BinarySearch = cfg.percentile, cfg.latencyLimit, cfg.binarySearch
	opts.Sequences = bench.Sequences{Length: cfg.seqLength, FirstID: first, LastID: last, Open: cfg.seqOpen}
	if mu := metricsURL(cmd, cfg); mu != "" {
		opts.ServerCPU = bench.MetricsCPU(mu)
	}
	opts.Progress = cfg.pa.progress(stderr, serverLevelName)
	client, err := newBenchClient(cmd, cfg, levels)
	if err != nil {
		return err
	}
	defer func() { // also after an error or an interrupt: it releases shared memory regions
		err = errors.Join(err, client.Close())
	}()
	opts.Protocol = protocolOf(cmd, cfg)
	rep, runErr := bench.Run(ctx, client, opts)
	if runErr != nil {
		runErr = interrupted(ctx, rep, runErr)
		if ctx.Err() == nil || rep == nil || len(rep.Levels) == 0 {
			return runErr // a failure, or Ctrl-C before any level ended: no report
		}
	}
	if err := writeReport(rep, cfg, stdout); err != nil {
		return err
	}
	if err := cfg.pa.writeCSV(rep); err != nil {
		return err
	}
	return runErr
}

// interrupted words the error of a run that Ctrl-C cut short: the levels it finished are
// reported, as perf_analyzer does, and the unfinished one has no whole window to report.
// Other errors come back as they are.
func interrupted(ctx context.Context, rep *bench.Report, err error) error {
	switch {
	case ctx.Err() == nil:
		return err
	case rep == nil || len(rep.Levels) == 0:
		return fmt.Errorf("interrupted before a level was measured whole, nothing to report: %w", ctx.Err())
	}
	return fmt.Errorf("interrupted: %d level(s) measured (reported above), the level after them cut short: %w", len(rep.Levels), ctx.Err())
}

// metricsURL is where the server's CPU time is read: --metrics-url, else /metrics at the
// REST address (Ferry serves both on one port), unless --url names the gRPC address.
func metricsURL(cmd *cobra.Command, cfg benchConfig) string {
	switch {
	case cfg.metricsURL == "none":
		return ""
	case cfg.metricsURL != "":
		return cfg.metricsURL
	}
	if protocolOf(cmd, cfg) == "grpc" && !cmd.Flags().Changed("grpc") && cmd.Flags().Changed("url") {
		return "" // --url is the gRPC address, perf_analyzer style: the REST port is unknown
	}
	base := cfg.url
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	return strings.TrimSuffix(base, "/") + "/metrics"
}

// commonOptions reads the flags shared by server and engine runs.
func commonOptions(cfg benchConfig) (bench.Options, error) {
	o := bench.Options{Duration: cfg.duration, Warmup: cfg.warmup, Seed: cfg.seed, Shapes: map[string]tensor.Shape{}}
	for _, s := range cfg.shapes {
		name, shape, err := bench.ParseShape(s)
		if err != nil {
			return o, fmt.Errorf("--shape: %w", err)
		}
		o.Shapes[name] = shape
	}
	o.Data = bench.Data{Mode: cfg.inputData, Seed: cfg.seed}
	if cfg.inputData != bench.DataRandom && cfg.inputData != bench.DataZero {
		fh, err := os.Open(cfg.inputData)
		if err != nil {
			return o, fmt.Errorf("--input-data: want random, zero or a JSON file: %w", err)
		}
		defer fh.Close()
		if o.Data.Entries, err = bench.ReadDataFile(fh); err != nil {
			return o, fmt.Errorf("--input-data %s: %w", cfg.inputData, err)
		}
		o.Data.Mode = bench.DataFile
	}
	return o, nil
}

func protocolOf(cmd *cobra.Command, cfg benchConfig) string {
	if cfg.protocol != "" {
		return cfg.protocol
	}
	if cmd.Flags().Changed("grpc") {
		return "grpc"
	}
	return "http"
}

func readIntervals(path string) ([]time.Duration, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	gaps, err := bench.ReadIntervals(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return gaps, nil
}

// newBenchClient picks the protocol and its address: --grpc for gRPC unless only --url
// was given (perf_analyzer's `-i grpc -u host:8001`), --url for HTTP.
func newBenchClient(cmd *cobra.Command, cfg benchConfig, levels []int) (bench.Client, error) {
	conns := cfg.maxInFlight
	if cfg.rate == "" && cfg.intervals == "" {
		conns = levels[len(levels)-1]
	}
	header, err := bench.ParseHeaders(cfg.headers)
	if err != nil {
		return nil, fmt.Errorf("--header: %w", err)
	}
	shm, err := cfg.pa.sharedMemory()
	if err != nil {
		return nil, err
	}
	switch p := protocolOf(cmd, cfg); p {
	case "http", "http-binary":
		return bench.NewHTTP(bench.HTTPOptions{URL: cfg.url, Model: cfg.model, Version: cfg.version,
			Binary: p == "http-binary", MaxConns: conns, Timeout: cfg.timeout, Header: header, SharedMemory: shm})
	case "grpc":
		addr := cfg.grpcAddr
		if !cmd.Flags().Changed("grpc") && cmd.Flags().Changed("url") {
			addr = cfg.url
		}
		md := metadata.MD{}
		for k, vs := range header {
			md.Append(k, vs...) // lower-cased, as gRPC wants
		}
		return bench.NewGRPC(bench.GRPCOptions{Addr: addr, Model: cfg.model, Version: cfg.version, Timeout: cfg.timeout,
			Conns: cfg.grpcConns, Streaming: cfg.streaming, Metadata: md, Compression: cfg.compression, SharedMemory: shm})
	default:
		return nil, fmt.Errorf("--protocol %q: want http, http-binary or grpc", p)
	}
}

func serverLevelName(l bench.Level) string {
	if l.RequestRate > 0 {
		return fmt.Sprintf("request rate %g/s", l.RequestRate)
	}
	return fmt.Sprintf("concurrency %d", l.Concurrency)
}

func writeReport(rep *bench.Report, cfg benchConfig, stdout io.Writer) error {
	if err := rep.WriteTable(stdout); err != nil {
		return err
	}
	for _, out := range []struct {
		path  string
		write func(io.Writer) error
	}{{cfg.jsonOut, rep.WriteJSON}, {cfg.csvOut, rep.WriteCSV}} {
		if out.path == "" {
			continue
		}
		if err := writeFile(out.path, out.write); err != nil {
			return err
		}
	}
	return nil
}

func writeFile(path string, write func(io.Writer) error) error {
	fh, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(fh); err != nil {
		fh.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	return fh.Close()
}
