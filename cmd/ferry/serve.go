package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/ferryml/ferry/internal/backend/onnx"
	"github.com/ferryml/ferry/internal/backend/remote"
	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/llm/native"
	"github.com/ferryml/ferry/internal/monitor/metrics"
	"github.com/ferryml/ferry/internal/monitor/reqlog"
	"github.com/ferryml/ferry/internal/monitor/tracing"
	"github.com/ferryml/ferry/internal/platform/gctune"
	"github.com/ferryml/ferry/internal/platform/threadprio"
	"github.com/ferryml/ferry/internal/repository"
	"github.com/ferryml/ferry/internal/router"
	"github.com/ferryml/ferry/internal/settings"
	"github.com/ferryml/ferry/internal/shm"
	"github.com/ferryml/ferry/internal/transport/mgmt"
	"github.com/ferryml/ferry/internal/transport/v2grpc"
	"github.com/ferryml/ferry/internal/transport/v2http"
	oklog "github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"
)

// serveConfig is everything `ferry serve` reads from its flags.
type serveConfig struct {
	repository   string
	host         string
	httpAddr     string // --http-address; "" is --host
	grpcAddr     string // --grpc-address; "" is --host
	httpPort     int
	grpcPort     int
	metricsAddr  string // --metrics-address; "" is the HTTP listener's
	metricsPort  int    // port of a separate /metrics listener, when metricsOn (tritonflags.go)
	metricsOn    bool
	exitOnError  bool // fail at start when a startup model fails to load
	noAutoFill   bool // --disable-auto-complete-config
	mode         string
	loadModels   []string
	pollInterval time.Duration
	logFormat    string
	logLevel     string
	limits       core.Limits
	drain        time.Duration
	drainGrace   time.Duration // part of drain: REST keeps accepting, answering with Connection: close (drain.go)
	intraOp      int
	onnxMaxBatch int      // --onnx-default-max-batch-size; 0 measures each model (backends.go)
	python       string   // --python-interpreter: python3 for the python backend (python.go)
	cacheSize    byteSize // response cache budget; 0: no cache (cache.go)
	gcHeadroom   byteSize // see gcHeadroom
	// moreBackends are added to the backend table; tests use it for engines they control.
	moreBackends repository.Backends
	// moreRoutes are mounted on the HTTP root beside V2 (pattern -> handler); tests use
	// it for routes they control.
	moreRoutes  map[string]http.Handler
	strictReady bool
	pprofAddr   string
	onDemand    onDemandConfig   // ondemand.go
	platform    platformConfig   // platform.go: the registry, endpoints and rollouts
	admission   admissionConfig  // admission.go: rate limits, quotas, load shedding
	security    securityConfig   // security.go: auth and TLS
	hardening   hardeningConfig  // hardening.go: uploads, interpreters, outbound addresses, body limits
	monitoring  monitoringConfig // monitoring.go: inference log, drift, feedback, alerts
	lanes       lanesConfig      // lanes.go: server-side batch jobs, streaming consumers
	llm         llmConfig        // llm.go: the OpenAI-compatible API, native LLMs, the gateway
	accessLog   accessLogConfig  // accesslog.go: --access-log
	// inferenceFirst moves request handling to SCHED_BATCH (see threadprio).
	inferenceFirst bool

	// modelCacheDir and store serve an s3:// repository (objstore.go).
	modelCacheDir string
	storeStall    time.Duration // how long a store download may wait for its next bytes
	store         storeEnv

	// testLog, when set, is the log a test server writes to (harness_test.go).
	testLog *slog.Logger

	// level is the level the log's handler reads (newLogger); the logging extension
	// changes it (logging.go). nil: a level no handler reads (tests with their own logger).
	level *slog.LevelVar
}

func serveCommand(getenv func(string) string, stderr io.Writer) *cobra.Command {
	cfg := serveConfig{limits: core.DefaultLimits(), gcHeadroom: defaultGCHeadroom}
	cfg.store = storeEnvFrom(getenv)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the models of a Triton-style model repository over V2 REST and gRPC",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, level, err := newLogger(cfg.logFormat, cfg.logLevel, stderr)
			if err != nil {
				return err
			}
			cfg.level = level
			stopTracing, err := startTracing(cmd.Context(), log) // tracing.go
			if err != nil {
				return err
			}
			defer stopTracing() // after Run: the server has drained
			if cfg.inferenceFirst {
				// Before the runtime and its sessions exist: threads started later inherit
				// the class, and inference threads are put in front explicitly.
				if err := threadprio.Background(); err != nil {
					log.Warn("request handling keeps its scheduling class", "err", err)
				}
			}
			rt, err := loadRuntime(getenv, log)
			if err != nil {
				return err
			}
			defer rt.Close()
			s, err := newServer(cfg, rt, log)
			if err != nil {
				return err
			}
			ctx, stop := context.WithCancel(cmd.Context())
			defer stop()
			tuneGC(ctx, cfg.gcHeadroom, getenv)
			return s.Run(ctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.repository, "model-repository", "", "model repository: a folder (Triton layout) or s3://bucket/prefix (credentials and endpoint from the AWS_* environment)")
	f.DurationVar(&cfg.storeStall, "model-store-stall-timeout", time.Minute, "s3:// repository: how long a request to the store may wait for its answer or its next bytes before it fails (and is retried at the next poll)")
	f.StringVar(&cfg.modelCacheDir, "model-cache-dir", "", "where an s3:// repository is mirrored (default: a folder per store under $XDG_CACHE_HOME/ferry or ~/.cache/ferry)")
	f.StringVar(&cfg.host, "host", "127.0.0.1", "address to listen on (the default of --http-address and --grpc-address)")
	f.IntVar(&cfg.httpPort, "http-port", 8000, "port for V2 REST and /metrics (0 picks a free port)")
	f.IntVar(&cfg.grpcPort, "grpc-port", 8001, "port for V2 gRPC (0 picks a free port)")
	f.StringVar(&cfg.mode, "model-control-mode", "none", "none (load all at start), explicit (--load-model and the repository API), poll (rescan) or on-demand (load on first request)")
	f.StringArrayVar(&cfg.loadModels, "load-model", nil, "model to load at start in explicit mode (repeatable)")
	f.StringVar(&cfg.logFormat, "log-format", "", "json or text (default: text on a terminal, else json)")
	f.StringVar(&cfg.logLevel, "log-level", "info", "debug, info, warn or error")
	f.Int64Var(&cfg.limits.MaxBodyBytes, "max-body-bytes", cfg.limits.MaxBodyBytes, "largest HTTP request body; larger is refused with 413")
	f.Int64Var(&cfg.limits.MaxTensorElements, "max-tensor-elements", cfg.limits.MaxTensorElements, "most elements in one tensor")
	f.IntVar(&cfg.limits.MaxRank, "max-tensor-rank", cfg.limits.MaxRank, "most dimensions of one tensor")
	f.IntVar(&cfg.limits.MaxGRPCMessageSize, "grpc-max-message-bytes", cfg.limits.MaxGRPCMessageSize, "largest gRPC message, either direction")
	f.BoolVar(&cfg.strictReady, "strict-readiness", true, "ready only while every loaded model is READY (as Triton); false: ready once startup loading is done")
	f.StringVar(&cfg.pprofAddr, "pprof-addr", "", "serve Go's profiler on this loopback address (off by default)")
	f.DurationVar(&cfg.drain, "drain-timeout", 30*time.Second, "on SIGTERM, how long in-flight requests may take to finish")
	f.DurationVar(&cfg.drainGrace, "drain-grace", 5*time.Second, "on SIGTERM, how long REST keeps accepting connections, answering each request with Connection: close, before it stops (part of --drain-timeout)")
	f.IntVar(&cfg.intraOp, "onnx-intra-op-threads", 0, "ONNX Runtime threads per instance (0: cores divided among the model's instances)")
	f.IntVar(&cfg.onnxMaxBatch, "onnx-default-max-batch-size", 0, "max_batch_size given to an ONNX model whose config sets none when the model can batch (0: measured at load, the largest size up to 128 whose rows/s beat half its size's by 1.1x; 4: Triton's fixed default)")
	f.StringVar(&cfg.python, "python-interpreter", "python3", "interpreter for python-backend models, a path or a name on PATH (a model's python_interpreter parameter overrides it)")
	f.Var(&cfg.gcHeadroom, "gc-headroom", "memory Go may allocate between garbage collections while the live heap is smaller (0: Go's default, GOGC=100; ignored when GOGC is set)")
	f.Var(&cfg.cacheSize, "cache-size", "response cache budget shared by models with response_cache enabled, e.g. 64MiB (0: no cache)")
	f.BoolVar(&cfg.inferenceFirst, "inference-first", true, "Linux: request-handling threads run as SCHED_BATCH, so that their wakeups do not preempt model execution when the cores are busy")
	cfg.onDemand.addFlags(f)
	cfg.platform.addFlags(f)
	cfg.admission.addFlags(f)
	cfg.security.addFlags(f)
	cfg.hardening.addFlags(f)
	cfg.monitoring.addFlags(f)
	cfg.lanes.addFlags(f)
	cfg.llm.addFlags(f)
	cfg.accessLog.addFlags(f)
	cfg.addTritonFlags(f)
	_ = cmd.MarkFlagRequired("model-repository")
	return cmd
}

func (c *serveConfig) validate() error {
	var errs []error
	if c.limits.MaxBodyBytes <= 0 {
		errs = append(errs, fmt.Errorf("--max-body-bytes: must be > 0, got %d", c.limits.MaxBodyBytes))
	}
	if c.limits.MaxTensorElements <= 0 {
		errs = append(errs, fmt.Errorf("--max-tensor-elements: must be > 0, got %d", c.limits.MaxTensorElements))
	}
	if c.limits.MaxRank <= 0 {
		errs = append(errs, fmt.Errorf("--max-tensor-rank: must be > 0, got %d", c.limits.MaxRank))
	}
	if c.limits.MaxGRPCMessageSize <= 0 {
		errs = append(errs, fmt.Errorf("--grpc-max-message-bytes: must be > 0, got %d", c.limits.MaxGRPCMessageSize))
	}
	if c.intraOp < 0 {
		errs = append(errs, fmt.Errorf("--onnx-intra-op-threads: must be >= 0, got %d", c.intraOp))
	}
	if c.onnxMaxBatch < 0 || c.onnxMaxBatch > math.MaxInt32 {
		errs = append(errs, fmt.Errorf("--onnx-default-max-batch-size: must be 0 (measure) to %d, got %d", math.MaxInt32, c.onnxMaxBatch))
	}
	if c.metricsAddr != "" && !c.metricsOn {
		errs = append(errs, fmt.Errorf("--metrics-address needs --metrics-port"))
	}
	if len(c.loadModels) > 0 && c.mode != string(repository.ModeExplicit) {
		errs = append(errs, fmt.Errorf("--load-model needs --model-control-mode explicit"))
	}
	errs = append(errs, c.onDemand.validate(c.mode)...)
	errs = append(errs, c.admission.validate()...)
	errs = append(errs, c.hardening.validate()...)
	return errors.Join(errs...)
}

// newLogger builds the server's logger; its handler reads the returned level, which
// starts at --log-level and which the logging extension changes (logging.go).
func newLogger(format, level string, w io.Writer) (*slog.Logger, *slog.LevelVar, error) {
	lv := new(slog.LevelVar)
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lv, ReplaceAttr: readableDurations}
	if format == "" {
		format = "json"
		if f, ok := w.(*os.File); ok {
			if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
				format = "text"
			}
		}
	}
	switch format {
	case "json":
		return slog.New(reqlog.Handler(slog.NewJSONHandler(w, opts))), lv, nil // a request's lines carry its ids
	case "text":
		return slog.New(reqlog.Handler(slog.NewTextHandler(w, opts))), lv, nil
	}
	return nil, nil, fmt.Errorf("--log-format %q: want json or text", format)
}

// server is one wired Ferry instance. newServer opens the listeners (so their addresses
// are known) and builds every part; Run loads the startup models and serves.
type server struct {
	cfg     serveConfig
	log     *slog.Logger
	core    *core.Server
	repo    *repository.Repository
	routes  *router.Table // the endpoints' routing policies, read by core on every request
	plat    *platform     // nil without --data-dir or --registry-url (platform.go)
	mon     *monitoring   // the inference log, drift, feedback and alerts (monitoring.go)
	lanes   *lanes        // batch jobs and streaming consumers (lanes.go)
	llm     *llmLane      // /v1/*: native LLMs and the gateway (llm.go)
	ready   chan struct{} // closed once the startup models are loaded
	grpcAPI *v2grpc.Server
	trace   *settings.Trace // the trace extension's settings; a tracer asks its Sample
	shm     *shm.Registry   // system shared memory regions, both transports' (shm.go)
	http    *http.Server
	grpc    *grpc.Server
	httpLn  net.Listener
	grpcLn  net.Listener
	// metricsLn and metricsSrv serve /metrics alone when --metrics-port is set (tritonflags.go).
	metricsLn  net.Listener
	metricsSrv *http.Server
	access     *accessLog // --access-log (accesslog.go); off when its log is nil
}

func newServer(cfg serveConfig, rt *onnx.Runtime, log *slog.Logger) (*server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	mode, err := repository.ParseMode(cfg.mode)
	if err != nil {
		return nil, fmt.Errorf("--model-control-mode: %w", err)
	}
	s := &server{cfg: cfg, log: log}
	store, err := openModelStore(cfg, log) // nil unless the repository is s3://
	if err != nil {
		return nil, err
	}
	m := metrics.New(func() []core.ModelStats { return s.core.StatsSnapshot() })
	rb := remote.New(log.With("backend", "remote")) // also a metrics collector
	rb.SetGuard(cfg.hardening.guard)
	s.repo, err = repository.New(repository.Options{
		Root: repositoryRoot(cfg, store), Source: storeSource(store, log.With("component", "objstore")), Mode: mode, Startup: cfg.loadModels, PollInterval: cfg.pollInterval,
		Backends: withBackends(backends(rt, rb, cfg, log), cfg.moreBackends), Logger: log.With("component", "repository"),
		Hooks: repository.Hooks{Loaded: m.Loaded, State: m.State, Unloaded: m.Unloaded, Resident: m.Resident}, SchedulerObserver: m.Scheduler,
		ExitOnError: cfg.exitOnError, DisableAutoComplete: cfg.noAutoFill,
		AllowLoadFiles: cfg.hardening.allowLoadFiles, LoadFilesDir: cfg.hardening.loadFilesDir, AllowCodeUploads: cfg.hardening.allowPythonUploads,
		LoadTimeout: cfg.onDemand.loadTimeout, MemoryBudget: int64(cfg.onDemand.budget), IdleUnload: cfg.onDemand.idleUnload, NativeHeapInUse: onnx.HeapInUse,
	})
	if err != nil {
		return nil, err
	}
	rc := newResponseCache(cfg.cacheSize)
	s.trace = settings.NewTrace(traceDefaults()) // tracing.go
	s.routes = new(router.Table)
	taps := []core.Tap{m}
	if cfg.platform.enabled() {
		if s.plat, err = newPlatform(context.Background(), cfg, s.repo, s.routes, log); err != nil {
			return nil, err
		}
		taps = append(taps, s.plat.meter) // what a rollout's analysis reads
	}
	if s.mon, err = newMonitoring(cfg.monitoring, s.plat.aborter(), s.baseURL, log); err != nil {
		return nil, err
	}
	taps = append(taps, s.mon.taps()...)
	adm := cfg.admission.build(log.With("component", "admission")) // admission.go
	coreRepo := llmRepository{Repository: s.repo, explicit: mode == repository.ModeExplicit || mode == repository.ModeOnDemand,
		native: func() *native.Server { return s.llm.nativeServer() }} // llm.go: the lane is built below
	s.core = core.New(core.Options{Name: "ferry", Version: version, Repository: coreRepo, Limits: cfg.limits, Routes: s.routes,
		Logger: log.With("component", "core"), Observer: m, Taps: taps, StrictReadiness: cfg.strictReady, Cache: coreCache(rc),
		Trace: s.trace, Log: logSettings(cfg.level), Admission: adm.core(), CallerOf: callerOf, Tracer: tracing.Tracer()})

	reg := prometheus.NewRegistry()
	reg.MustRegister(m, metrics.Upstreams(upstreamStats(rb)), metrics.ShadowsDropped(s.core.ShadowsDropped), collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	registerCache(reg, rc)
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "ferry_trace_spans_dropped_total",
		Help: "Sampled spans dropped because the export buffer was full (OTEL_BSP_MAX_QUEUE_SIZE)."}, func() float64 { return float64(tracing.SpansDropped()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "ferry_trace_spans_failed_total",
			Help: "Sampled spans lost because their export to the collector failed."}, func() float64 { return float64(tracing.SpansFailed()) }))
	adm.register(reg)
	registerResident(reg, cfg.onDemand, s.repo)
	registerStore(reg, store)
	if s.access, err = openAccessLog(cfg.accessLog); err != nil {
		return nil, err
	}
	s.access.register(reg) // accesslog.go
	if s.plat != nil {
		s.plat.register(reg)
	}
	s.mon.register(reg)
	if s.lanes, err = newLanes(cfg.lanes, s.core, cfg.store.batchS3(), log.With("component", "lanes")); err != nil {
		return nil, err
	}
	s.lanes.register(reg)
	llmw := llmWiring{routes: s.routes, monitor: s.mon.taps(), routed: append([]core.Tap{llmMetrics{m}}, s.plat.llmTaps()...)}
	if mode == repository.ModePoll {
		cfg.llm.rescan = cfg.pollInterval // a newer version folder becomes the default, as for V2 models
	}
	if s.llm, err = newLLM(cfg.llm, repositoryRoot(cfg, store), rt, llmw, log.With("component", "llm")); err != nil {
		return nil, err
	}
	s.plat.serveLLM(s.llm.native) // llm.go, platform.go: rollouts of LLM models
	built := false
	defer func() {
		if !built {
			s.llm.close() // the engines hold ONNX Runtime sessions
		}
	}()
	s.llm.register(reg)
	s.ready = make(chan struct{})
	metricsHandler := promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
	s.shm = shm.New()
	httpLog, grpcLog := log.With("component", "http"), log.With("component", "grpc")
	v2 := v2http.New(s.core, v2http.Options{Logger: httpLog, Limits: cfg.limits, SharedMemory: s.shm})
	var api *mgmt.Handler
	if s.plat != nil || s.mon.enabled() || s.lanes.enabled() {
		mo := mgmt.Options{Logger: log.With("component", "mgmt")}
		s.mon.mgmtOptions(&mo)
		s.lanes.mgmtOptions(&mo)
		api = mgmt.New(s.plat.service(), mo)
	}
	sec, err := newSecurity(context.Background(), cfg, s.plat.registry(), s.llm.auth(), log) // security.go
	if err != nil {
		return nil, err
	}
	root := httpRoot(v2, metricsHandler, api, s.llm.routes(cfg.moreRoutes), cfg.limits, httpLog, s.access, sec.httpLayers()...) // routes.go
	s.http = cfg.hardening.httpServer(newHTTPServer(cfg.hardening.wrapHTTP(root)))                                              // hardening.go
	s.grpcAPI = v2grpc.New(s.core, v2grpc.Options{Logger: grpcLog, Limits: cfg.limits, SharedMemory: s.shm})
	s.grpc = newGRPCServer(s.grpcAPI, grpcLog, s.access, append(cfg.hardening.grpcOptions(), sec.grpcOptions()...)...)
	if s.httpLn, err = net.Listen("tcp", cfg.bindAddr(cfg.httpAddr, cfg.httpPort)); err != nil {
		return nil, fmt.Errorf("http listener: %w", err)
	}
	if s.grpcLn, err = net.Listen("tcp", cfg.bindAddr(cfg.grpcAddr, cfg.grpcPort)); err != nil {
		s.httpLn.Close()
		return nil, fmt.Errorf("grpc listener: %w", err)
	}
	if err := s.listenMetrics(metricsHandler); err != nil {
		s.httpLn.Close()
		s.grpcLn.Close()
		return nil, err
	}
	sec.secureListeners(s)
	built = true
	return s, nil
}

// Run serves until ctx ends (SIGTERM), then stops accepting (REST after its grace period,
// drain.go), drains in-flight requests within the drain timeout, and unloads the models.
// Readiness turns true only once the startup models are loaded.
func (s *server) Run(ctx context.Context) error {
	s.log.Info("listening", "http", s.httpLn.Addr().String(), "grpc", s.grpcLn.Addr().String(), "metrics", s.metricsAddr(), "repository", s.cfg.repository)
	gctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.access.start() // accesslog.go: finished below, once the transports have drained
	var g oklog.Group
	g.Add(func() error { <-gctx.Done(); return nil }, func(error) { cancel() })
	if s.cfg.pprofAddr != "" {
		g.Add(func() error { return servePprof(gctx, s.cfg.pprofAddr) }, func(error) { cancel() })
	}
	g.Add(func() error {
		if err := s.repo.Start(gctx); err != nil {
			return err
		}
		if s.plat != nil {
			if err := s.plat.start(gctx); err != nil {
				return err
			}
		}
		s.core.SetReady(true)
		s.grpcAPI.SetServing(true)
		close(s.ready) // the streaming consumers start (lanes.go)
		s.log.Info("ready")
		return s.repo.Run(gctx)
	}, func(error) { cancel() })
	rest := newHTTPDrain(s.http, s.httpLn)
	g.Add(rest.Serve, func(error) {
		// Load balancers saw readiness only if it was ever true; then they need the grace
		// to notice the 503 and stop sending.
		grace := min(s.cfg.drainGrace, s.cfg.drain)
		if !s.core.Started() {
			grace = 0
		}
		s.core.SetReady(false) // /v2/health/ready answers 503 while draining
		s.grpcAPI.SetServing(false)
		dctx, done := context.WithTimeout(context.Background(), s.cfg.drain)
		defer done()
		if err := rest.drain(dctx, grace); err != nil {
			s.log.Warn("http drain incomplete", "err", err)
		}
	})
	g.Add(func() error { return s.grpc.Serve(s.grpcLn) }, func(error) {
		stopped := make(chan struct{})
		go func() { s.grpc.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-time.After(s.cfg.drain):
			s.log.Warn("grpc drain incomplete")
			s.grpc.Stop()
		}
	})
	s.addMetrics(&g)
	if s.plat != nil {
		g.Add(func() error { return s.plat.run(gctx) }, func(error) { cancel() })
	}
	for _, run := range s.mon.runners() {
		g.Add(func() error { return run(gctx) }, func(error) { cancel() })
	}
	for _, run := range s.lanes.runners(s.core, s.ready) {
		g.Add(func() error { return run(gctx) }, func(error) { cancel() })
	}
	for _, run := range s.llm.runners() {
		g.Add(func() error { return run(gctx) }, func(error) { cancel() })
	}
	err := g.Run()
	s.llm.close()
	s.lanes.close() // running jobs stop; their committed chunks stay for a resubmission
	// The transports have drained: every request the inference log sampled is queued.
	mctx, mdone := context.WithTimeout(context.Background(), s.cfg.drain)
	if merr := s.mon.close(mctx); merr != nil {
		s.log.Warn("monitoring did not close cleanly", "err", merr)
	}
	mdone()
	if aerr := s.access.finish(); aerr != nil {
		s.log.Warn("access log incomplete", "err", aerr)
	}
	closeSharedMemory(s.shm, s.log) // the transports have stopped: no request holds a region
	if cerr := s.repo.Close(); cerr != nil {
		s.log.Warn("unload failed", "err", cerr)
	}
	s.log.Info("stopped")
	return err
}

// defaultGCHeadroom is --gc-headroom's default; ferry bench keeps it too.
const defaultGCHeadroom byteSize = gctune.DefaultHeadroom

// gcHeadroom is what gctune keeps allocatable between collections: headroom, or nothing
// when the environment sets GOGC. A server's live heap is small (models live in ONNX
// Runtime's memory), so GOGC=100 collects dozens of times a second under load: at 64
// clients of identity_fp32 the server spent 22-30 µs of CPU per request with a 64 MiB
// headroom against 28-41 µs without.
func gcHeadroom(headroom byteSize, getenv func(string) string) uint64 {
	if getenv("GOGC") != "" {
		return 0
	}
	return uint64(headroom)
}

// tuneGC runs gctune until ctx ends, unless gcHeadroom says not to.
func tuneGC(ctx context.Context, headroom byteSize, getenv func(string) string) {
	if h := gcHeadroom(headroom, getenv); h > 0 {
		go gctune.Run(ctx, h, time.Second)
	}
}

// Both transports take core through interfaces they declare; these guards keep them in step.
var (
	_ v2http.Core = (*core.Server)(nil)
	_ v2grpc.Core = (*core.Server)(nil)
)

func withBackends(table, more repository.Backends) repository.Backends {
	for name, b := range more {
		table[name] = b
	}
	return table
}
