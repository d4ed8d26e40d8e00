package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"sigs.k8s.io/yaml"

	"github.com/ferryml/ferry/internal/backend/onnx"
	"github.com/ferryml/ferry/internal/backend/remote"
	"github.com/ferryml/ferry/internal/batch"
	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/internal/lane"
	"github.com/ferryml/ferry/internal/platform/threadprio"
	"github.com/ferryml/ferry/internal/repository"
	"github.com/ferryml/ferry/internal/v2client"
)

// batchConfig is what `ferry batch` reads from its flags.
type batchConfig struct {
	serve   serveConfig // the repository, its store and the engines, as `ferry serve` builds them
	opts    batch.Options
	mapping string // --mapping FILE
	shard   string
	server  string // --server: score through a running server over gRPC
}

func batchCommand(getenv func(string) string, stderr io.Writer) *cobra.Command {
	cfg := batchConfig{serve: serveConfig{limits: core.DefaultLimits(), gcHeadroom: defaultGCHeadroom}}
	cfg.serve.store = storeEnvFrom(getenv)
	cmd := &cobra.Command{
		Use:   "batch",
		Short: "Score a Parquet, CSV or JSON-lines file (local or s3://) with a model, resumably",
		Long: "Score every row of --input with --model into --output, beside the rows' id columns. Rows that\n" +
			"fail go to the rejects file with their error. Killed, the same command continues from its\n" +
			"last committed chunk. --shard I/N scores the I-th of N disjoint parts of the input.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cfg.prepare(); err != nil {
				return err
			}
			return runBatch(cmd.Context(), cfg, getenv, stderr)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.serve.repository, "model-repository", "", "model repository: a folder or s3://bucket/prefix (as ferry serve); only --model is loaded")
	f.StringVar(&cfg.serve.modelCacheDir, "model-cache-dir", "", "where an s3:// repository is mirrored (as ferry serve)")
	f.DurationVar(&cfg.serve.storeStall, "model-store-stall-timeout", time.Minute, "s3:// repository: how long a store request may wait for its next bytes")
	f.IntVar(&cfg.serve.intraOp, "onnx-intra-op-threads", 0, "ONNX Runtime threads per instance (0: cores divided among the model's instances)")
	f.StringVar(&cfg.server, "server", "", "score through a running Ferry (or any V2) server's gRPC endpoint, host:port or grpc://host:port, instead of loading the model here")
	f.StringVar(&cfg.opts.Model, "model", "", "model to score with")
	f.StringVar(&cfg.opts.Version, "model-version", "", "model version (default: the one the server would pick)")
	f.StringVar(&cfg.opts.Input, "input", "", "input file: .parquet, .csv, .jsonl or .ndjson, a path or s3://bucket/key")
	f.StringVar(&cfg.opts.Output, "output", "", "output file (format from its extension); {shard} is replaced by the shard's index")
	f.StringVar(&cfg.opts.Rejects, "rejects", "", "rejects file, one JSON line per failed row (default: OUTPUT.rejects.jsonl)")
	f.StringSliceVar(&cfg.opts.IDColumns, "id-column", nil, "column copied beside the outputs (repeatable or a comma list; default: a \"row\" column with the row's index)")
	f.StringVar(&cfg.mapping, "mapping", "", "YAML or JSON file: model input -> the columns that fill it, in order (default: columns named as the inputs)")
	f.Var(&cfg.serve.gcHeadroom, "gc-headroom", "memory Go may allocate between garbage collections while the live heap is smaller (as ferry serve; 0: Go's default, GOGC=100; ignored when GOGC is set)")
	f.StringVar(&cfg.shard, "shard", "", "score the I-th of N disjoint parts of the input, I/N (Parquet: by row group; CSV, JSON lines: by byte range)")
	f.IntVar(&cfg.opts.ChunkRows, "chunk-rows", 0, "rows per committed chunk (default: 64 x the model's max batch size)")
	f.IntVar(&cfg.opts.Concurrency, "concurrency", 0, "requests in flight (default: 8)")
	f.IntVar(&cfg.opts.Priority, "priority", 0, "V2 priority parameter on every request (0: the model's default)")
	f.StringVar(&cfg.opts.WorkDir, "work-dir", "", "folder for part files and the checkpoint (default: OUTPUT.ferry-batch, or a temporary folder for s3://)")
	for _, name := range []string{"model", "input", "output"} {
		_ = cmd.MarkFlagRequired(name)
	}
	return cmd
}

// prepare reads the flags that need reading: the mapping file, the shard, S3.
func (c *batchConfig) prepare() error {
	if (c.serve.repository == "") == (c.server == "") {
		return errors.New("give exactly one of --model-repository (load the model here) and --server (score through a running server)")
	}
	sh, err := optionalShard(c.shard)
	if err != nil {
		return fmt.Errorf("--shard: %w", err)
	}
	c.opts.Shard = sh
	if c.mapping != "" {
		b, err := os.ReadFile(c.mapping)
		if err != nil {
			return fmt.Errorf("--mapping: %w", err)
		}
		var m lane.Mapping
		if err := yaml.UnmarshalStrict(b, &m); err != nil {
			return fmt.Errorf("--mapping %s: want input: [column, ...]: %w", c.mapping, err)
		}
		c.opts.Mapping = m
	}
	c.opts.S3 = c.serve.store.batchS3()
	return nil
}

func runBatch(ctx context.Context, cfg batchConfig, getenv func(string) string, stderr io.Writer) error {
	log, _, err := newLogger("", "warn", stderr)
	if err != nil {
		return err
	}
	// A job's live heap is small and it allocates per row: tune the collector as serve
	// does, or GOGC=100 collects many times a second.
	tuneGC(ctx, cfg.serve.gcHeadroom, getenv)
	var c lane.Core
	if cfg.server != "" {
		cl, err := grpcClient(cfg.server)
		if err != nil {
			return err
		}
		defer cl.Close()
		c = remoteCore{cl}
	} else {
		// As ferry serve does (--inference-first): the job's reading and writing run as
		// SCHED_BATCH, so that their wakeups do not preempt the model (see threadprio).
		// Before the runtime exists: inference threads are put in front explicitly.
		if err := threadprio.Background(); err != nil {
			log.Warn("the job's threads keep their scheduling class", "err", err)
		}
		rt, err := loadRuntime(getenv, log)
		if err != nil {
			return err
		}
		defer rt.Close()
		sc, closeCore, err := batchCore(ctx, cfg, rt, log)
		if err != nil {
			return err
		}
		defer closeCore()
		c = sc
	}
	pr := newBatchProgress(stderr)
	cfg.opts.Progress = pr.update
	p, err := batch.Run(ctx, c, cfg.opts)
	pr.done(p, err)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "ferry batch: %d rows scored, %d rejected, in %s\n", p.Rows, p.Rejected, p.Elapsed.Round(time.Millisecond))
	return nil
}

// batchCore loads the job's model here, as ferry serve loads it, and serves it through
// core.
func batchCore(ctx context.Context, cfg batchConfig, rt *onnx.Runtime, log *slog.Logger) (*core.Server, func(), error) {
	st, err := openModelStore(cfg.serve, log)
	if err != nil {
		return nil, nil, err
	}
	rb := remote.New(log.With("backend", "remote"))
	repo, err := repository.New(repository.Options{Root: repositoryRoot(cfg.serve, st), Source: storeSource(st, log), Mode: repository.ModeExplicit,
		Startup: []string{cfg.opts.Model}, ExitOnError: true, Backends: backends(rt, rb, cfg.serve, log), Logger: log.With("component", "repository")})
	if err != nil {
		return nil, nil, err
	}
	if err := repo.Start(ctx); err != nil {
		repo.Close()
		return nil, nil, fmt.Errorf("loading model %q: %w", cfg.opts.Model, err)
	}
	c := core.New(core.Options{Name: "ferry", Version: version, Repository: repo, Limits: cfg.serve.limits, Logger: log.With("component", "core")})
	return c, func() { repo.Close() }, nil
}

// grpcClient is a V2 gRPC client of --server.
func grpcClient(server string) (*v2client.GRPC, error) {
	addr := server
	if u, err := url.Parse(server); err == nil && u.Host != "" {
		if u.Scheme != "grpc" {
			return nil, fmt.Errorf("--server %q: want host:port or grpc://host:port (the gRPC endpoint)", server)
		}
		addr = u.Host
	}
	c, err := v2client.NewGRPC(v2client.GRPCOptions{Addr: addr})
	if err != nil {
		return nil, fmt.Errorf("--server: %w", err)
	}
	return c, nil
}

// remoteCore adapts a V2 gRPC server to lane.Core.
type remoteCore struct{ c *v2client.GRPC }

func (r remoteCore) ModelMetadata(ctx context.Context, model, version string) (*core.ModelMetadata, error) {
	m, err := r.c.Model(model, version).Metadata(ctx)
	if err != nil {
		return nil, coreError(err)
	}
	md := &core.ModelMetadata{Name: m.Name, Versions: m.Versions, Platform: m.Platform}
	for _, t := range m.Inputs {
		md.Inputs = append(md.Inputs, core.TensorMetadata{Name: t.Name, DataType: t.DType.String(), Shape: t.Shape})
	}
	for _, t := range m.Outputs {
		md.Outputs = append(md.Outputs, core.TensorMetadata{Name: t.Name, DataType: t.DType.String(), Shape: t.Shape})
	}
	return md, nil
}

func (r remoteCore) ModelConfig(ctx context.Context, model, version string) (*inference.ModelConfig, error) {
	cfg, err := r.c.Model(model, version).Config(ctx)
	if err != nil {
		return nil, coreError(err)
	}
	return &inference.ModelConfig{Name: model, MaxBatchSize: cfg.MaxBatchSize}, nil
}

func (r remoteCore) Infer(ctx context.Context, req *core.InferRequest) (*core.InferResponse, error) {
	vr := &v2client.Request{ID: req.ID, Inputs: req.Inputs}
	for k, v := range req.Parameters {
		vr.Parameters = append(vr.Parameters, v2client.Param{Key: k, Value: v})
	}
	resp, err := r.c.Model(req.Model, req.Version).Infer(ctx, vr)
	if err != nil {
		return nil, coreError(err)
	}
	return &core.InferResponse{Model: resp.ModelName, Version: resp.ModelVersion, ID: resp.ID, Outputs: resp.Outputs}, nil
}

// coreError gives a server's refusal core's meaning, so the job waits out an
// overloaded server and rejects the rows of an invalid request.
func coreError(err error) error {
	var e *v2client.Error
	if !errors.As(err, &e) {
		return fmt.Errorf("%w: %v", core.ErrUnavailable, err) // the server cannot be reached
	}
	switch e.Code {
	case codes.Unavailable, codes.ResourceExhausted, codes.Aborted:
		return fmt.Errorf("%w: %v", core.ErrUnavailable, err)
	case codes.NotFound:
		return fmt.Errorf("%w: %v", core.ErrNotFound, err)
	case codes.InvalidArgument, codes.OutOfRange, codes.FailedPrecondition:
		return fmt.Errorf("%w: %v", core.ErrInvalid, err)
	}
	return err
}

// batchProgress shows a job's progress: a bar on a terminal, else a line at most every
// ten seconds (and after the last chunk).
type batchProgress struct {
	w     io.Writer
	bar   *progressbar.ProgressBar // nil when w is no terminal
	last  time.Time
	first *batch.Progress // the first update: a resumed job's rate counts from there
	shown int64           // rows in the last line printed
}

func newBatchProgress(w io.Writer) *batchProgress {
	p := &batchProgress{w: w}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.bar = progressbar.NewOptions64(-1, progressbar.OptionSetWriter(f), progressbar.OptionShowCount(), progressbar.OptionShowIts(),
				progressbar.OptionSetItsString("rows"), progressbar.OptionSetPredictTime(true), progressbar.OptionThrottle(100*time.Millisecond),
				progressbar.OptionSetDescription("scoring"), progressbar.OptionFullWidth())
		}
	}
	return p
}

func (p *batchProgress) update(pr batch.Progress) {
	done := pr.Rows + pr.Rejected
	if p.first == nil {
		p.first = &pr
	}
	if p.bar != nil {
		if pr.Total >= 0 && p.bar.GetMax64() != pr.Total {
			p.bar.ChangeMax64(pr.Total)
		}
		p.bar.Set64(done)
		return
	}
	if time.Since(p.last) < 10*time.Second {
		return
	}
	p.last = time.Now()
	p.line(pr)
}

func (p *batchProgress) line(pr batch.Progress) {
	done := pr.Rows + pr.Rejected
	rate := float64(done) / max(pr.Elapsed.Seconds(), 1e-9)
	if pr.Resumed && p.first != nil { // rows committed before this run took no time of it
		f := *p.first
		rate = float64(done-f.Rows-f.Rejected) / max((pr.Elapsed-f.Elapsed).Seconds(), 1e-9)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "ferry batch: %d rows", done)
	if pr.Total >= 0 {
		fmt.Fprintf(&b, " of %d (%.1f%%)", pr.Total, 100*float64(done)/max(float64(pr.Total), 1))
	}
	fmt.Fprintf(&b, ", %d rejected, %.0f rows/s", pr.Rejected, rate)
	if pr.Total > done && rate > 0 {
		fmt.Fprintf(&b, ", ETA %s", time.Duration(float64(pr.Total-done)/rate*float64(time.Second)).Round(time.Second))
	}
	if pr.Resumed {
		b.WriteString(" (resumed)")
	}
	fmt.Fprintln(p.w, b.String())
	p.shown = done
}

func (p *batchProgress) done(pr batch.Progress, err error) {
	if p.bar != nil {
		if err == nil {
			p.bar.Finish()
		}
		fmt.Fprintln(p.w)
		return
	}
	if err == nil && (p.shown != pr.Rows+pr.Rejected || p.last.IsZero()) {
		p.line(pr)
	}
}
