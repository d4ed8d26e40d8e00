package v2http

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/shm"
	"github.com/ferryml/ferry/internal/transport/middleware"
)

// Core is the serving API this transport calls: core's one API, which every transport
// shares.
type Core = core.API

// Options configure a Handler.
type Options struct {
	// Logger receives server-side failures (5xx); nil discards them.
	Logger *slog.Logger
	// Limits bound request bodies and tensors; the zero value means core's Limits().
	Limits core.Limits
	// SharedMemory holds the regions of the shared memory extension (shm.go); nil
	// refuses to register any. The caller owns it and closes it after the server stops.
	SharedMemory *shm.Registry
}

// Handler serves the V2 REST API on the routes it mounts on the server's one HTTP root
// (Mount). It holds no per-request state and is safe for concurrent use. What every
// route shares (request log, panic recovery, JSON answers for unknown routes) wraps the
// root, not this handler: see package middleware.
type Handler struct {
	core   Core
	log    *slog.Logger
	limits core.Limits
	shm    *shm.Registry
}

// New builds a Handler over c. It starts nothing and mounts nothing; see Mount.
func New(c Core, opts Options) *Handler {
	h := &Handler{core: c, log: opts.Logger, limits: opts.Limits, shm: opts.SharedMemory}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.limits == (core.Limits{}) {
		h.limits = c.Limits()
	}
	return h
}

// Mount registers the V2 REST routes on m, all under /v2: health, metadata, inference,
// and Triton's statistics, repository, trace, logging and shared memory extensions.
func (h *Handler) Mount(m *http.ServeMux) {
	m.HandleFunc("GET /v2/health/live", h.live)
	m.HandleFunc("GET /v2/health/ready", h.ready)
	m.HandleFunc("GET /v2", h.serverMetadata)
	m.HandleFunc("GET /v2/models/stats", h.stats)
	for _, prefix := range []string{"/v2/models/{model}", "/v2/models/{model}/versions/{version}"} {
		m.HandleFunc("GET "+prefix, h.modelMetadata)
		m.HandleFunc("GET "+prefix+"/ready", h.modelReady)
		m.HandleFunc("GET "+prefix+"/config", h.modelConfig)
		m.HandleFunc("GET "+prefix+"/stats", h.stats)
		m.HandleFunc("POST "+prefix+"/infer", h.infer)
		m.HandleFunc("POST "+prefix+"/explain", h.explain) // explain.go
	}
	m.HandleFunc("POST /v2/repository/index", h.repositoryIndex)
	m.HandleFunc("POST /v2/repository/models/{model}/load", h.load)
	m.HandleFunc("POST /v2/repository/models/{model}/unload", h.unload)
	// The trace and logging extensions (trace.go, logging.go).
	for _, method := range []string{"GET ", "POST "} {
		m.HandleFunc(method+"/v2/trace/setting", h.traceSetting)
		m.HandleFunc(method+"/v2/models/{model}/trace/setting", h.traceSetting)
		m.HandleFunc(method+"/v2/logging", h.logging)
	}
	h.sharedMemoryRoutes(m)
}

// modelPath returns the validated {model} and optional {version} path values.
func modelPath(r *http.Request) (model, version string, err error) {
	model, version = r.PathValue("model"), r.PathValue("version")
	if err := core.CheckName("model", model); err != nil {
		return "", "", err
	}
	if version != "" || strings.Contains(r.Pattern, "{version}") {
		if err := core.CheckName("version", version); err != nil {
			return "", "", err
		}
	}
	return model, version, nil
}

// writeJSON answers with v as JSON.
func (h *Handler) writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	body, err := middleware.MarshalJSON(v)
	if err != nil {
		h.writeError(w, r, fmt.Errorf("encoding response: %w", err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
