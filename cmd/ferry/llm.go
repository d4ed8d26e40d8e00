package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"

	"github.com/ferryml/ferry/internal/backend/onnx"
	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/llm"
	"github.com/ferryml/ferry/internal/llm/engine"
	"github.com/ferryml/ferry/internal/llm/gateway"
	"github.com/ferryml/ferry/internal/llm/native"
	"github.com/ferryml/ferry/internal/platform/periodic"
	"github.com/ferryml/ferry/internal/router"
	"github.com/ferryml/ferry/internal/transport/openai"
)

// llmConfig is the LLM lane: the repository's generative models (backend "llm") served
// natively, and with --llm-gateway a gateway to upstream LLM servers in front of them.
type llmConfig struct {
	gatewayFile string
	disable     bool
	// rescan is how often the native models' folders are rescanned for a newer default
	// version: the repository's poll interval in poll mode, else 0 (never), as V2's.
	rescan time.Duration
}

func (c *llmConfig) addFlags(f *pflag.FlagSet) {
	f.StringVar(&c.gatewayFile, "llm-gateway", "", "YAML file of the LLM gateway: upstream servers, routes, API keys, limits and budgets (docs/llm.md); without it /v1/* serves the repository's generative models alone")
	f.BoolVar(&c.disable, "no-llm", false, "do not serve the OpenAI-compatible API (/v1/*) nor load the repository's generative models")
}

// llmLane is the wired lane: what /v1/* calls, and the engines' step loops.
type llmLane struct {
	native  *native.Server
	gw      *gateway.Gateway
	router  *llmRouter   // routes the native models' requests (llmroute.go)
	handler http.Handler // nil when disabled
	// gatewayKeys: the gateway has API keys, so it authenticates /v1 itself.
	gatewayKeys bool
	metrics     *engine.Metrics
	rescan      time.Duration // llmConfig.rescan
}

// llmWiring is what the lane shares with the rest of the server.
type llmWiring struct {
	routes *router.Table // the endpoints' routing policies, core's too
	// monitor are the monitoring taps (the inference log, feedback, drift): they see
	// every exchange, the gateway's included.
	monitor []core.Tap
	// routed are the taps that count per version (the metrics, a rollout's Meter):
	// they see the native models' exchanges.
	routed []core.Tap
}

// newLLM opens the native models found in the repository root and the gateway. Native
// requests naming no version are routed by w.routes: directly from /v1, or from the
// gateway's native upstreams.
func newLLM(c llmConfig, root string, rt *onnx.Runtime, w llmWiring, log *slog.Logger) (*llmLane, error) {
	l := &llmLane{metrics: engine.NewMetrics(), rescan: c.rescan}
	if c.disable {
		return l, nil
	}
	var err error
	if l.native, err = openNative(root, engine.Config{Runtime: rt, Metrics: l.metrics, Logger: log}, log); err != nil {
		return nil, err
	}
	l.router = newLLMRouter(w.routes, log.With("component", "llm-router"))
	if c.gatewayFile == "" {
		l.handler = openaiHandler(&loggedLLM{Backend: l.native, taps: slices.Concat(w.routed, w.monitor), router: l.router, defaults: l.native.DefaultVersion}, log)
		return l, nil
	}
	cfg, err := gateway.Load(c.gatewayFile)
	if err == nil {
		routed := &loggedLLM{Backend: l.native, taps: w.routed, router: l.router, defaults: l.native.DefaultVersion}
		l.gw, err = gateway.New(cfg, gateway.Options{Logger: log.With("component", "gateway"), Native: routed})
	}
	if err != nil {
		l.native.Close()
		return nil, fmt.Errorf("--llm-gateway: %w", err)
	}
	l.gatewayKeys = len(cfg.Keys) > 0
	l.handler = openaiHandler(&loggedLLM{Backend: l.gw, taps: w.monitor}, log)
	return l, nil
}

func openaiHandler(b llm.Backend, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	openai.New(b, openai.Options{Logger: log.With("component", "openai")}).Mount(mux)
	return mux
}

// openNative opens every generative model of the repository folder root (none when
// root is not a local folder). A model that fails to open is an error: the operator
// put it there to serve.
func openNative(root string, base engine.Config, log *slog.Logger) (*native.Server, error) {
	if _, err := os.Stat(root); root == "" || err != nil {
		return native.NewServer(base), nil
	}
	specs, err := native.Discover(root)
	if err != nil {
		return nil, err
	}
	var models []*native.Model
	for _, s := range specs {
		m, err := native.Open(s, base)
		if err != nil {
			native.NewServer(base, models...).Close()
			return nil, err
		}
		log.Info("llm model ready", "model", s.Name, "version", s.Version, "context_length", s.ContextLength)
		models = append(models, m)
	}
	return native.NewServer(base, models...), nil
}

// laneAuth is what the server's authentication leaves to a lane (auth.Config's
// LaneBearers and LaneOpen).
type laneAuth struct{ bearers, open []string }

// auth: OpenAI clients always send a bearer ("sk-...", "EMPTY"), which is the lane's
// business, not a Ferry key; with gateway keys, the gateway authenticates every /v1
// request itself. Ferry keys (fk_...) and JWTs on /v1 are still judged as anywhere.
func (l *llmLane) auth() laneAuth {
	if l.handler == nil {
		return laneAuth{}
	}
	a := laneAuth{bearers: []string{"/v1/"}}
	if l.gatewayKeys {
		a.open = []string{"/v1/"}
	}
	return a
}

func (l *llmLane) register(reg prometheus.Registerer) {
	reg.MustRegister(l.metrics)
	if l.router != nil {
		reg.MustRegister(l.router.dropped)
	}
	if l.gw != nil {
		reg.MustRegister(l.gw.Collector())
	}
}

// routes adds /v1/ to the HTTP root's extra routes.
func (l *llmLane) routes(more map[string]http.Handler) map[string]http.Handler {
	if l.handler == nil {
		return more
	}
	out := map[string]http.Handler{"/v1/": l.handler}
	for k, v := range more {
		out[k] = v
	}
	return out
}

// runners are the engines' step loops and the gateway's background work.
func (l *llmLane) runners() []func(context.Context) error {
	var rs []func(context.Context) error
	if l.native != nil && l.native.Len() > 0 {
		rs = append(rs, l.native.Run)
		if l.rescan > 0 {
			rs = append(rs, func(ctx context.Context) error { periodic.Run(ctx, l.rescan, l.native.Rescan); return nil })
		}
	}
	if l.gw != nil {
		rs = append(rs, l.gw.Run)
	}
	return rs
}

func (l *llmLane) close() {
	if l == nil {
		return
	}
	if l.gw != nil {
		l.gw.Close() // shadow copies still in flight end first
	}
	l.router.close() // and the routed native models' copies
	if l.native != nil {
		l.native.Close()
	}
}

// nativeServer is the lane's native models (nil before the lane is built, or without it).
func (l *llmLane) nativeServer() *native.Server {
	if l == nil {
		return nil
	}
	return l.native
}

// llmRepository is the repository as core sees it, with the repository extension's
// load and unload answering for the native LLM models too. Loading one moves its
// default to its newest version folder (native.Server.Reload), as loading a V2 model
// picks up its new versions; unloading one is refused, naming why. Before, loading
// tinygpt answered that backend "llm" was not available in this server.
type llmRepository struct {
	core.Repository
	explicit bool                  // load and unload are allowed (explicit and on-demand modes)
	native   func() *native.Server // nil until the lane is built
}

func (r llmRepository) serves(model string) *native.Server {
	if n := r.native(); n != nil && n.Has(model) {
		return n
	}
	return nil
}

func (r llmRepository) Load(ctx context.Context, model string, opts core.LoadOptions) error {
	n := r.serves(model)
	if n == nil || !r.explicit { // in none and poll modes the repository's refusal names the mode
		return r.Repository.Load(ctx, model, opts)
	}
	if err := n.Reload(ctx, model); err != nil {
		return core.Invalidf("failed to load '%s': %v", model, err)
	}
	return nil
}

func (r llmRepository) Unload(ctx context.Context, model string) error {
	if r.serves(model) == nil || !r.explicit {
		return r.Repository.Unload(ctx, model)
	}
	return core.Invalidf("'%s' is an LLM model served at /v1; it is not unloaded while the server runs (route its traffic away with a policy, or remove its folder and restart)", model)
}
